"""The built-in engine's log records become `log` events at the requested level."""

from __future__ import annotations

import io
import logging

from custom_components.sip_endpoint.protocol import wire
from custom_components.sip_endpoint.worker.builtin.logs import (
    EventLogHandler,
    protocol_level,
)
from custom_components.sip_endpoint.worker.builtin.stack import BuiltinStack
from custom_components.sip_endpoint.worker.core.channel import ProtocolWriter


def test_python_levels_map_onto_pjlibs_scale() -> None:
    """ERROR 1, WARNING 2, INFO 3, DEBUG 4 (SIP messages are 5)."""
    assert [
        protocol_level(level)
        for level in (
            logging.CRITICAL,
            logging.ERROR,
            logging.WARNING,
            logging.INFO,
            logging.DEBUG,
        )
    ] == [1, 1, 2, 3, 4]


def test_records_at_or_below_the_level_are_sent_redacted() -> None:
    """A record past `log_level` is dropped; secrets never leave."""
    sink = io.BytesIO()
    writer = ProtocolWriter(sink)
    writer.start()
    stack = BuiltinStack(writer)
    stack.add_secret("s3cret-pw")
    stack.log_level = 3
    logger = logging.getLogger("tests.builtin.logs")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = EventLogHandler(stack)
    logger.addHandler(handler)
    try:
        logger.info("registered with s3cret-pw")
        logger.debug("a detail")
        logger.warning("Authorization: Digest response=abc")
    finally:
        logger.removeHandler(handler)
    writer.close()
    events = [wire.decode(line) for line in sink.getvalue().splitlines()]
    data = [event.data for event in events if isinstance(event, wire.Event)]
    assert data == [
        {"level": 3, "message": "tests.builtin.logs: registered with <redacted>"},
        {"level": 2, "message": "tests.builtin.logs: Authorization: <redacted>"},
    ]
