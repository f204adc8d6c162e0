"""Import the integration's engine, protocol and worker modules without Home Assistant.

`custom_components/sip_endpoint/__init__.py` imports Home Assistant, which the
benchmarks do not need: both packages are registered as bare namespace modules
before anything below them is imported.
"""

from pathlib import Path
import sys
import types

REPO = Path(__file__).resolve().parent.parent


def load_integration_modules() -> None:
    """Make ``custom_components.sip_endpoint.*`` importable without its ``__init__``."""
    for name, path in (
        ("custom_components", REPO / "custom_components"),
        ("custom_components.sip_endpoint", REPO / "custom_components" / "sip_endpoint"),
    ):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(path)]
            sys.modules[name] = module
