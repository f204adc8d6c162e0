"""Errors the SIP engine raises. Messages never contain secrets."""

from ..protocol.engines import PJSUA2_REQUIREMENT


class EngineError(Exception):
    """Base class of the engine's errors."""


WORKER_VENV_HINT = (
    "create one with: python3.12 -m venv <dir> && "
    f"<dir>/bin/pip install {PJSUA2_REQUIREMENT}"
)


class WorkerPythonNotFoundError(EngineError):
    """No interpreter that can import pjsua2 was found."""

    def __init__(self, searched: list[str]) -> None:
        """Remember where we looked."""
        super().__init__(
            "No Python interpreter with pjsua2 found; looked at: "
            + (", ".join(searched) or "nothing")
            + "; "
            + WORKER_VENV_HINT
        )
        self.searched = searched


class WorkerStartError(EngineError):
    """A worker did not start or did not complete the handshake."""


class RequestFailedError(EngineError):
    """A worker answered a request with an error."""

    def __init__(self, code: str, message: str) -> None:
        """Keep the protocol's error code."""
        super().__init__(f"{code}: {message}")
        self.code = code


class EngineNotRunningError(EngineError):
    """The engine is stopped, or the worker for this request is down."""


class ExtensionLimitError(EngineError):
    """The engine cannot hold another extension."""
