"""Start a SIP worker process.

Run as ``<python> -I <integration dir>/worker/launch.py [--engine builtin|pjsua2]``.
The integration's own ``__init__.py`` imports Home Assistant, which the worker's
interpreter does not have, so this script registers bare package modules for the two
parent packages (named after their directories) and then runs ``<package>.worker`` as
``__main__``; its arguments stay in ``sys.argv`` (``worker/__main__.py`` reads them).
"""

import importlib.machinery
import os
from pathlib import Path
import runpy
import sys
import types


def install_parent_packages() -> str:
    """Register stub parent packages and return the integration package's name."""
    integration_dir = Path(__file__).resolve().parent.parent
    root_dir = integration_dir.parent
    root_name = root_dir.name
    integration_name = f"{root_name}.{integration_dir.name}"
    for name, path in ((root_name, root_dir), (integration_name, integration_dir)):
        if name in sys.modules:
            continue
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(path)]
        module = types.ModuleType(name)
        module.__spec__ = spec
        module.__path__ = [str(path)]
        module.__package__ = name
        sys.modules[name] = module
    return integration_name


def start_coverage() -> None:
    """Measure the worker's code when the test suite asks for it (coverage.py)."""
    if not os.environ.get("COVERAGE_PROCESS_START"):
        return
    try:
        import coverage
    except ImportError:
        return
    coverage.process_startup()


if __name__ == "__main__":
    start_coverage()
    runpy.run_module(
        f"{install_parent_packages()}.worker", run_name="__main__", alter_sys=True
    )
