"""The pjsua2 package is pinned once; pip's requirements file says the same."""

from pathlib import Path

from custom_components.sip_endpoint.engine.errors import WORKER_VENV_HINT
from custom_components.sip_endpoint.protocol.engines import PJSUA2_REQUIREMENT

ROOT = Path(__file__).resolve().parents[2]


def test_requirements_file_pins_the_same_pjsua2() -> None:
    """requirements_worker.txt installs exactly the pinned pjsua2 package."""
    lines = (ROOT / "requirements_worker.txt").read_text(encoding="utf-8").splitlines()
    pjsua2 = [line.strip() for line in lines if line.strip().startswith("pjsua2")]
    assert pjsua2 == [PJSUA2_REQUIREMENT]


def test_the_venv_hint_installs_the_pin() -> None:
    """The error text tells users to install the pinned package."""
    assert WORKER_VENV_HINT.endswith(f"pip install {PJSUA2_REQUIREMENT}")
