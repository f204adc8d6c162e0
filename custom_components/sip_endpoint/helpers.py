"""Helpers of SIP Endpoint: its errors, translated in one place.

The button, the siren and the actions raise only errors that name a translation
(translations/en.json, "exceptions"): `validation_error` for what the user asked
wrongly, and the decorator `sip_exception_handler` for what the SIP engine or a media
lookup raises while they work.
"""

from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, Protocol

from homeassistant.components.media_source import MediaSourceError
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .const import DOMAIN
from .engine import EngineError

MEDIA_NOT_FOUND = "media_not_found"

# The placeholders of an engine error, from the decorated function's first argument.
type Placeholders = Callable[[Any, EngineError], dict[str, str]]
type Action[T, **P, R] = Callable[Concatenate[T, P], Coroutine[Any, Any, R]]


class ErrorTranslator(Protocol):
    """What `sip_exception_handler` returns: a decorator that keeps the signature."""

    def __call__[T, **P, R](self, func: Action[T, P, R], /) -> Action[T, P, R]:
        """Return ``func`` with its errors translated."""


def validation_error(
    translation_key: str, **placeholders: str
) -> ServiceValidationError:
    """Return the translated error of an action asked for something it cannot do."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=translation_key,
        translation_placeholders=placeholders or None,
    )


def sip_exception_handler(
    engine_failure: str | None = None, placeholders: Placeholders | None = None
) -> ErrorTranslator:
    """Decorate an entity method or an action so that its errors are translated.

    - An `EngineError` becomes a `HomeAssistantError` with the translation key
      ``engine_failure`` and the placeholders ``placeholders`` makes from the decorated
      function's first argument (the entity, or what the action works on) and the
      error. Without ``engine_failure`` the function asks nothing of the engine, and an
      engine error would pass unchanged.
    - A media source that cannot be resolved (`MediaSourceError`, untranslated in Home
      Assistant) becomes `media_not_found`, with its reason as ``error``.

    Errors that are translated already, such as `validation_error`'s, pass unchanged.
    """
    engine_errors: tuple[type[EngineError], ...] = (
        (EngineError,) if engine_failure else ()
    )

    def decorator[T, **P, R](func: Action[T, P, R], /) -> Action[T, P, R]:
        async def handler(first: T, /, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await func(first, *args, **kwargs)
            except engine_errors as err:
                raise HomeAssistantError(
                    translation_domain=DOMAIN,
                    translation_key=engine_failure,
                    translation_placeholders=(
                        placeholders(first, err) if placeholders else None
                    ),
                ) from err
            except MediaSourceError as err:
                raise HomeAssistantError(
                    translation_domain=DOMAIN,
                    translation_key=MEDIA_NOT_FOUND,
                    translation_placeholders={"error": str(err)},
                ) from err

        return handler

    return decorator
