"""The built-in engine's Python log records as `log` events, like pjlib's log lines.

pjsua2 forwards pjlib's log at the requested ``log_level`` (1 errors ... 6 everything).
The built-in engine maps Python's levels onto that scale, ERROR 1, WARNING 2, INFO 3,
DEBUG 4 (whole SIP messages are 5, `BuiltinStack.trace`), and sends the records at or
below ``log_level`` as `log` events, with credentials removed.
"""

import logging
from typing import Final, Protocol

PACKAGE_LOGGER: Final = __name__.rpartition(".")[0].rpartition(".")[0]  # ...worker


def protocol_level(levelno: int) -> int:
    """Return the protocol's log level (1-4) for a Python logging level."""
    if levelno >= logging.ERROR:
        return 1
    if levelno >= logging.WARNING:
        return 2
    if levelno >= logging.INFO:
        return 3
    return 4


class LogSink(Protocol):
    """Where `log` events go: the stack, which knows the level and the secrets."""

    @property
    def log_level(self) -> int:
        """Return the requested ``log_level`` (records past it are dropped)."""

    def scrub(self, text: str) -> str:
        """Return ``text`` without any credential."""

    def log(self, level: int, message: str) -> None:
        """Send a `log` event."""


class EventLogHandler(logging.Handler):
    """Sends the worker's log records as `log` events (any thread)."""

    def __init__(self, sink: LogSink) -> None:
        """Send through ``sink``."""
        super().__init__(logging.DEBUG)
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        """Send one record when the requested level includes it."""
        level = protocol_level(record.levelno)
        if level > self._sink.log_level:
            return
        try:
            # Scrubbed before the prefix: header rules match at the start of a line.
            message = f"{record.name}: {self._sink.scrub(self.format(record))}"
            self._sink.log(level, message)
        except Exception:  # noqa: BLE001 - a log line never takes the worker down
            self.handleError(record)


def forward_logs(sink: LogSink) -> None:
    """Forward the worker package's log records to Home Assistant as `log` events."""
    logger = logging.getLogger(PACKAGE_LOGGER)
    logger.addHandler(EventLogHandler(sink))
    apply_level(sink.log_level)


def apply_level(log_level: int) -> None:
    """Create debug records only when ``log_level`` asks for them (4 and up)."""
    logging.getLogger(PACKAGE_LOGGER).setLevel(
        logging.DEBUG if log_level >= 4 else logging.INFO
    )
