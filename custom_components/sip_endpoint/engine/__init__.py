"""The SIP engine as Home Assistant's process sees it.

An asyncio client and supervisor for the worker processes, which run the pjsua2 or
the built-in engine. It imports neither homeassistant nor pjsua2, so
`scripts/sip-check` runs it outside Home Assistant.

This module is the engine's surface: the Home Assistant side imports from here only.
"""

from .errors import (
    EngineError,
    RequestFailedError,
    WorkerPythonNotFoundError,
    WorkerStartError,
)
from .interpreter import find_worker_python, probe_interpreter
from .models import (
    EngineChoice,
    EngineEvent,
    EngineOptions,
    ExtensionSettings,
    ServerSettings,
    auth_id_for,
)
from .reachability import Reach, ReachabilityCheck, check_reachable
from .selection import SelectedEngine
from .sip_engine import SipEngine, probe_registration

__all__ = [
    "EngineChoice",
    "EngineError",
    "EngineEvent",
    "EngineOptions",
    "ExtensionSettings",
    "Reach",
    "ReachabilityCheck",
    "RequestFailedError",
    "SelectedEngine",
    "ServerSettings",
    "SipEngine",
    "WorkerPythonNotFoundError",
    "WorkerStartError",
    "auth_id_for",
    "check_reachable",
    "find_worker_python",
    "probe_interpreter",
    "probe_registration",
]
