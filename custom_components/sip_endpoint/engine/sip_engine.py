"""SipEngine: registers one SIP server's extensions through pjsua2 worker processes.

CONTRACT STUB written by the lead: the signatures and docstrings are the agreed API that
the Home Assistant side codes against. The engine helper replaces the bodies.
"""

from collections.abc import Callable

from ..protocol.payloads import CallEnded, RegistrationExchange, RegistrationState
from .models import EngineEvent, EngineOptions, ExtensionSettings, ServerSettings, WorkerInfo


class SipEngine:
    """Shards extensions over workers (at most 8 each), supervises and restarts them.

    Events (registration changes, incoming calls, DTMF, call ends, audio frames, ...) are
    delivered to `on_event`, always from the event loop the engine was started on, as
    they happen. On a worker crash the engine restarts it with backoff, reports its
    extensions as `unregistered` (reason "SIP worker restarting") meanwhile, ends its
    calls with cause `failed`, and registers them again once the worker is back.
    """

    def __init__(
        self,
        server: ServerSettings,
        options: EngineOptions,
        on_event: Callable[[EngineEvent], None],
        *,
        worker_python_candidates: tuple[str, ...] = (),
    ) -> None:
        """Prepare an engine; nothing runs until `start`."""
        raise NotImplementedError

    async def start(self) -> None:
        """Find the worker interpreter and get ready to add extensions.

        Raises WorkerPythonNotFoundError when no interpreter with pjsua2 exists.
        """
        raise NotImplementedError

    async def stop(self) -> None:
        """Unregister everything (Expires: 0), end all workers; nothing lingers."""
        raise NotImplementedError

    async def add_extension(self, extension: ExtensionSettings) -> None:
        """Register an extension (status events follow). ExtensionLimitError past the cap."""
        raise NotImplementedError

    async def update_extension(self, extension: ExtensionSettings) -> None:
        """Replace an extension's credentials and register again."""
        raise NotImplementedError

    async def remove_extension(self, ext_id: str) -> None:
        """Unregister an extension and forget it."""
        raise NotImplementedError

    async def reregister(self, ext_id: str) -> None:
        """Send a fresh REGISTER now."""
        raise NotImplementedError

    def registration(self, ext_id: str) -> RegistrationState | None:
        """Return the last known registration state of an extension."""
        raise NotImplementedError

    async def ring(self, call_id: str) -> None:
        """Answer 180 Ringing and keep the call unanswered."""
        raise NotImplementedError

    async def answer(self, call_id: str, tone: str | None = None) -> None:
        """Answer 200 OK, optionally playing a WAV tone once."""
        raise NotImplementedError

    async def play(self, call_id: str, path: str, *, loop: bool = False) -> None:
        """Play a WAV file into a call."""
        raise NotImplementedError

    async def stop_playing(self, call_id: str) -> None:
        """Stop what `play` started."""
        raise NotImplementedError

    async def record(self, call_id: str, path: str) -> None:
        """Record the caller to a WAV file until the call ends."""
        raise NotImplementedError

    async def stream(self, call_id: str, *, enable: bool) -> None:
        """Start or stop AudioFrame events with the caller's audio."""
        raise NotImplementedError

    async def hangup(self, call_id: str, code: int = 603) -> None:
        """End a call."""
        raise NotImplementedError

    async def make_call(
        self, ext_id: str, target: str, play: str | None = None, timeout: int = 30
    ) -> CallEnded:
        """Call a number or SIP URI, play a file once answered, hang up; return how it ended."""
        raise NotImplementedError

    def workers(self) -> list[WorkerInfo]:
        """Describe the worker processes (for diagnostics)."""
        raise NotImplementedError

    async def registration_exchanges(self) -> list[RegistrationExchange]:
        """Recent REGISTER answers of all workers, without secrets (for diagnostics)."""
        raise NotImplementedError


async def probe_registration(
    server: ServerSettings,
    options: EngineOptions,
    extension: ExtensionSettings,
    *,
    timeout: float = 40.0,
    worker_python_candidates: tuple[str, ...] = (),
) -> RegistrationState:
    """Register once in a short-lived worker, unregister, and return the final state.

    Used by the config flow's test-before-configure and by scripts/sip-check. Raises
    WorkerPythonNotFoundError or WorkerStartError; a SIP failure is a returned state.
    """
    raise NotImplementedError
