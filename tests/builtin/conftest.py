"""Fixtures for every built-in engine test."""

from collections.abc import Iterator
import logging

import pytest

from custom_components.sip_endpoint.worker.builtin.logs import PACKAGE_LOGGER


@pytest.fixture(autouse=True)
def _restore_worker_logger() -> Iterator[None]:
    """Give the worker package's logger back its level and handlers after a test.

    A stack started in the test process sets that logger's level from its
    ``log_level`` and adds a handler forwarding records as `log` events; left in
    place, a later test's ``caplog`` misses the debug records it looks for.
    """
    logger = logging.getLogger(PACKAGE_LOGGER)
    level, handlers = logger.level, list(logger.handlers)
    yield
    logger.setLevel(level)
    logger.handlers[:] = handlers
