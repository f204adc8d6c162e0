"""Keep Python exceptions from escaping into pjsua2's C++ callbacks."""

from collections.abc import Callable
import functools
import logging
import threading
from typing import Any

_LOGGER = logging.getLogger(__name__)


class _PollingThread:
    """The thread that polls pjsua2; SIP callbacks are expected there."""

    ident: int | None = None
    reported: set[str] = set()  # noqa: RUF012


def mark_polling_thread() -> None:
    """Record the calling thread as the one that polls pjsua2."""
    _PollingThread.ident = threading.get_ident()


def guarded[**P](func: Callable[P, None]) -> Callable[P, None]:
    """Log and swallow any exception raised by a pjsua2 callback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            func(*args, **kwargs)
        except Exception:
            _LOGGER.exception("Error in SIP callback %s", func.__qualname__)

    return wrapper


def sip_callback[**P](func: Callable[P, None]) -> Callable[P, None]:
    """`guarded`, for SIP callbacks: warn once if one runs off the polling thread.

    Accounts and calls are not locked; they rely on every SIP callback running
    on the thread that polls pjsua2. A pjsua2 thread that polls the SIP
    ioqueue too (the "media" thread, when media shares that ioqueue) breaks this.
    """
    inner = guarded(func)

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        name = func.__qualname__
        polling = _PollingThread.ident
        if (
            polling is not None
            and threading.get_ident() != polling
            and name not in _PollingThread.reported
        ):
            _PollingThread.reported.add(name)
            _LOGGER.warning(
                "SIP callback %s ran off the polling thread, on %s",
                name,
                threading.current_thread().name,
            )
        inner(*args, **kwargs)

    return wrapper


def describe_error(err: BaseException) -> str:
    """Return a short description of a pjsua2 or Python error."""
    info: Any = getattr(err, "info", None)
    if callable(info):
        try:
            return str(info())
        except Exception:  # noqa: BLE001
            return type(err).__name__
    return str(err) or type(err).__name__
