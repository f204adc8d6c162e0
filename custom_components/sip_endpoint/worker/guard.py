"""Keep Python exceptions from escaping into pjsua2's C++ callbacks."""

from collections.abc import Callable
import functools
import logging
from typing import Any

_LOGGER = logging.getLogger(__name__)


def guarded[**P](func: Callable[P, None]) -> Callable[P, None]:
    """Log and swallow any exception raised by a pjsua2 callback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            func(*args, **kwargs)
        except Exception:
            _LOGGER.exception("Error in SIP callback %s", func.__qualname__)

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
