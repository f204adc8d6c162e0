"""Choosing the engine: configured, found or missing pjsua2, for auto, builtin, pjsua2."""

from pathlib import Path
import sys

import pytest

from custom_components.sip_endpoint.engine.errors import WorkerPythonNotFoundError
from custom_components.sip_endpoint.engine.models import (
    EngineChoice,
    EngineOptions,
    ServerSettings,
)
from custom_components.sip_endpoint.engine.selection import select_engine
from custom_components.sip_endpoint.engine.sip_engine import SipEngine
from custom_components.sip_endpoint.protocol.engines import ENGINE_LIMITS, EngineName

from .conftest import EventRecorder, FakePythonFactory

# Where pjsua2 is: "configured" (the option names a good interpreter), "broken" (the
# option names one without pjsua2), "found" (a search candidate has it), "missing".
type Where = str

# (where, choice) -> the engine chosen, or None for WorkerPythonNotFoundError.
EXPECTED: dict[tuple[Where, EngineChoice], EngineName | None] = {
    ("configured", EngineChoice.AUTO): EngineName.PJSUA2,
    ("configured", EngineChoice.BUILTIN): EngineName.BUILTIN,
    ("configured", EngineChoice.PJSUA2): EngineName.PJSUA2,
    ("broken", EngineChoice.AUTO): EngineName.BUILTIN,
    ("broken", EngineChoice.BUILTIN): EngineName.BUILTIN,
    ("broken", EngineChoice.PJSUA2): None,
    ("found", EngineChoice.AUTO): EngineName.PJSUA2,
    ("found", EngineChoice.BUILTIN): EngineName.BUILTIN,
    ("found", EngineChoice.PJSUA2): EngineName.PJSUA2,
    ("missing", EngineChoice.AUTO): EngineName.BUILTIN,
    ("missing", EngineChoice.BUILTIN): EngineName.BUILTIN,
    ("missing", EngineChoice.PJSUA2): None,
}


def _counting_python(fake_python: FakePythonFactory, tmp_path: Path, name: str) -> str:
    """Return a fake interpreter that notes every run in a file, then runs the fake."""
    inner = fake_python()
    runs = tmp_path / f"{name}.runs"
    script = tmp_path / name
    script.write_text(f'#!/bin/sh\necho run >> "{runs}"\nexec "{inner}" "$@"\n')
    script.chmod(0o755)
    return str(script)


def _runs(tmp_path: Path, name: str) -> int:
    runs = tmp_path / f"{name}.runs"
    return len(runs.read_text().splitlines()) if runs.exists() else 0


@pytest.mark.parametrize(("where", "choice"), list(EXPECTED))
async def test_selection_matrix(
    fake_python: FakePythonFactory,
    empty_path: Path,
    tmp_path: Path,
    where: Where,
    choice: EngineChoice,
) -> None:
    """Each choice picks the engine the option's description promises."""
    good = _counting_python(fake_python, tmp_path, "good-python")
    configured = {
        "configured": good,
        "broken": fake_python("--no-pjsua2"),
    }.get(where)
    candidates = (good,) if where == "found" else ("/nonexistent/bin/python",)
    expected = EXPECTED[where, choice]

    if expected is None:
        with pytest.raises(WorkerPythonNotFoundError) as caught:
            await select_engine(choice, configured, candidates)
        assert "pip install pjsua2-python==2.15.1.post1" in str(caught.value)
        return
    selected = await select_engine(choice, configured, candidates)

    assert selected.name is expected
    assert selected.limits == ENGINE_LIMITS[expected]
    if expected is EngineName.BUILTIN:
        assert selected.python == sys.executable
        assert selected.python_version == ".".join(map(str, sys.version_info[:3]))
    else:
        assert selected.python == good
        assert (selected.python_version, selected.engine_version) == (
            "3.12.99",
            "0.0-fake",
        )
    if choice is EngineChoice.BUILTIN:
        assert _runs(tmp_path, "good-python") == 0  # builtin probes nothing


async def test_auto_with_a_broken_configured_interpreter_warns(
    fake_python: FakePythonFactory, empty_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With auto, a configured interpreter without pjsua2 means builtin, and a warning."""
    broken = fake_python("--no-pjsua2")
    selected = await select_engine(EngineChoice.AUTO, broken)
    assert selected.name is EngineName.BUILTIN
    assert f"The configured worker interpreter {broken} cannot run pjsua2" in (
        caplog.text
    )


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (EngineChoice.AUTO, EngineName.BUILTIN),
        (EngineChoice.BUILTIN, EngineName.BUILTIN),
    ],
)
async def test_engine_start_without_pjsua2(
    empty_path: Path,
    recorder: EventRecorder,
    choice: EngineChoice,
    expected: EngineName,
) -> None:
    """Without pjsua2 anywhere, auto and builtin start; limits are the table's."""
    engine = SipEngine(
        ServerSettings(host="127.0.0.1"),
        EngineOptions(engine=choice, bind_host="127.0.0.1"),
        recorder,
        worker_python_candidates=("/nonexistent/bin/python",),
    )
    await engine.start()
    selected = engine.selected_engine
    assert selected is not None and selected.name is expected
    assert engine.limits == ENGINE_LIMITS[expected]
    await engine.stop()


async def test_engine_start_pjsua2_without_pjsua2_fails(
    empty_path: Path, recorder: EventRecorder
) -> None:
    """The pjsua2 engine without an interpreter for it fails as before."""
    engine = SipEngine(
        ServerSettings(host="127.0.0.1"),
        EngineOptions(engine=EngineChoice.PJSUA2, bind_host="127.0.0.1"),
        recorder,
        worker_python_candidates=("/nonexistent/bin/python",),
    )
    with pytest.raises(WorkerPythonNotFoundError):
        await engine.start()
    assert engine.selected_engine is None
