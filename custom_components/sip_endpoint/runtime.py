"""Runtime of one SIP server's config entry: the engine and what each extension is doing."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_call_later

from .const import (
    ATTR_EXTENSION,
    ATTR_TYPE,
    DOMAIN,
    EVENT_ALERT,
    EVENT_CALL,
    EVENT_REGISTRATION,
    LOGGER,
    SUBENTRY_TYPE_EXTENSION,
    CallState,
    ExtensionRole,
)
from .device_lookup import async_get_entry_device
from .engine.models import EngineEvent
from .engine.sip_engine import SipEngine
from .protocol.payloads import (
    CallDirection,
    CallEnded,
    CallPhase,
    CallStateChanged,
    DtmfDigit,
    IncomingCall,
    RegistrationState,
)
from .protocol.status import FAILURE_STATUSES, RegistrationStatus

if TYPE_CHECKING:
    from .calls.router import CallRouter

UNREACHABLE_REPAIR_DELAY = 600  # seconds without a reply before a repair issue appears


class CallEventType(StrEnum):
    """Event types of the `call` event entity."""

    INCOMING = "incoming"
    ANSWERED = "answered"
    ENDED = "ended"
    MISSED = "missed"
    DTMF = "dtmf"


@dataclass(slots=True)
class ExtensionStatus:
    """What one extension is doing right now."""

    ext_id: str
    extension: str
    role: ExtensionRole
    registration: RegistrationState | None = None
    last_failure: RegistrationState | None = None
    call_state: CallState = CallState.IDLE
    call_id: str | None = None
    answered: bool = False
    alerting: bool = False  # an emergency alert plays on the media players
    lost: bool = False  # a lost registration was logged, its return not yet


def signal_extension_updated(entry_id: str, ext_id: str) -> str:
    """Dispatcher signal sent when an extension's status changes."""
    return f"{DOMAIN}_{entry_id}_{ext_id}_updated"


def signal_server_updated(entry_id: str) -> str:
    """Dispatcher signal sent when a registration changes or an extension goes."""
    return f"{DOMAIN}_{entry_id}_server_updated"


def signal_call_event(entry_id: str, ext_id: str) -> str:
    """Dispatcher signal carrying (CallEventType, data) for an extension."""
    return f"{DOMAIN}_{entry_id}_{ext_id}_call_event"


@dataclass(frozen=True, slots=True)
class AppliedConfig:
    """The configuration the running engine was set up with."""

    # Not in the repr: subentry data holds passwords, and a repr ends up in tracebacks.
    data: Mapping[str, Any] = field(repr=False)
    options: Mapping[str, Any] = field(repr=False)
    extensions: dict[str, Mapping[str, Any]] = field(repr=False)


def applied_config(entry: ConfigEntry[Any]) -> AppliedConfig:
    """Snapshot what a config entry asks for, to compare with what runs."""
    return AppliedConfig(
        data=entry.data,
        options=entry.options,
        extensions={
            subentry_id: subentry.data
            for subentry_id, subentry in entry.subentries.items()
            if subentry.subentry_type == SUBENTRY_TYPE_EXTENSION
        },
    )


@dataclass
class SipEndpointRuntime:
    """Ties the engine's events to entities, repairs and logs for one config entry."""

    hass: HomeAssistant
    entry_id: str
    applied: AppliedConfig
    engine: SipEngine = field(init=False)
    router: "CallRouter" = field(init=False)
    extensions: dict[str, ExtensionStatus] = field(default_factory=dict)
    on_rejected: Callable[[ExtensionStatus], None] | None = None
    on_registered: Callable[[ExtensionStatus], None] | None = None
    on_unreachable: Callable[[bool], None] | None = None
    _calls: dict[str, str] = field(default_factory=dict)  # call_id -> ext_id
    _unreachable_timer: CALLBACK_TYPE | None = None
    _unreachable_reported: bool = False
    _stopping: bool = False

    @callback
    def handle_event(self, event: EngineEvent) -> None:
        """Take an engine event (on the event loop)."""
        if self._stopping:
            return  # unregistering on unload is not news
        match event:
            case RegistrationState():
                self._registration_changed(event)
            case IncomingCall():
                self._incoming_call(event)
            case CallStateChanged(state=CallPhase.CONFIRMED):
                self._call_answered(event)
            case CallEnded():
                self._call_ended(event)
            case DtmfDigit():
                self._dtmf(event)

    @property
    def stopping(self) -> bool:
        """Whether the entry is unloading (events are ignored then)."""
        return self._stopping

    @callback
    def shutdown(self) -> None:
        """Ignore further events and cancel timers; the caller stops the engine."""
        self._stopping = True
        if self._unreachable_timer is not None:
            self._unreachable_timer()
            self._unreachable_timer = None

    # --- registration ---------------------------------------------------------------

    @callback
    def _registration_changed(self, state: RegistrationState) -> None:
        if (status := self.extensions.get(state.ext_id)) is None:
            return
        previous = status.registration
        status.registration = state
        if state.status in FAILURE_STATUSES:
            status.last_failure = state
            if previous is None or previous.status is not state.status:
                self._fire_bus(
                    EVENT_REGISTRATION,
                    state.ext_id,
                    "failed",
                    {
                        "status": state.status,
                        "sip_code": state.code,
                        "reason": state.reason,
                    },
                )
        if state.status is RegistrationStatus.SUCCESSFUL:
            if status.lost:
                status.lost = False
                LOGGER.info("Extension %s is registered again", status.extension)
            if self.on_registered is not None:
                self.on_registered(status)
        elif state.status is not RegistrationStatus.REGISTERING and not status.lost:
            status.lost = True
            LOGGER.warning(
                "Extension %s is not registered: %s (%s %s)",
                status.extension,
                state.status,
                state.code,
                state.reason,
            )
        if (
            state.status is RegistrationStatus.REJECTED_BY_SERVER
            and self.on_rejected is not None
        ):
            self.on_rejected(status)
        self._track_reachability()
        self._notify(state.ext_id)
        async_dispatcher_send(self.hass, signal_server_updated(self.entry_id))

    @callback
    def forget_extension(self, ext_id: str) -> None:
        """Drop a removed extension's status (the server's entities count without it)."""
        if self.extensions.pop(ext_id, None) is not None:
            async_dispatcher_send(self.hass, signal_server_updated(self.entry_id))

    @callback
    def _track_reachability(self) -> None:
        """Raise a repair when the server has not replied for a long time."""
        statuses = [
            ext.registration.status
            for ext in self.extensions.values()
            if ext.registration is not None
        ]
        unreachable = bool(statuses) and all(
            status is RegistrationStatus.NO_REPLY_FROM_SERVER for status in statuses
        )
        if unreachable:
            if self._unreachable_timer is None and not self._unreachable_reported:
                self._unreachable_timer = async_call_later(
                    self.hass, UNREACHABLE_REPAIR_DELAY, self._report_unreachable
                )
            return
        if self._unreachable_timer is not None:
            self._unreachable_timer()
            self._unreachable_timer = None
        if self._unreachable_reported:
            self._unreachable_reported = False
            if self.on_unreachable is not None:
                self.on_unreachable(False)

    @callback
    def _report_unreachable(self, _now: Any) -> None:
        self._unreachable_timer = None
        self._unreachable_reported = True
        if self.on_unreachable is not None:
            self.on_unreachable(True)

    # --- calls ----------------------------------------------------------------------

    @callback
    def _incoming_call(self, call: IncomingCall) -> None:
        if (status := self.extensions.get(call.ext_id)) is None:
            return
        self._calls[call.call_id] = call.ext_id
        status.call_id = call.call_id
        status.answered = False
        self._refresh_call_state(status)
        self._fire(
            call.ext_id,
            CallEventType.INCOMING,
            {
                "call_id": call.call_id,
                "caller": call.remote_uri,
                "caller_name": call.display_name,
            },
        )
        self._notify(call.ext_id)

    @callback
    def _call_answered(self, event: CallStateChanged) -> None:
        if (status := self.extensions.get(event.ext_id)) is None:
            return
        if status.call_id is None:
            status.call_id = event.call_id  # an outbound call (the page action)
        status.answered = True
        self._refresh_call_state(status)
        self._fire(event.ext_id, CallEventType.ANSWERED, {"call_id": event.call_id})
        self._notify(event.ext_id)

    @callback
    def _call_ended(self, event: CallEnded) -> None:
        self._calls.pop(event.call_id, None)
        if (status := self.extensions.get(event.ext_id)) is None:
            return
        missed = event.direction is CallDirection.INBOUND and not event.answered
        self._fire(
            event.ext_id,
            CallEventType.MISSED if missed else CallEventType.ENDED,
            {
                "call_id": event.call_id,
                "cause": event.cause,
                "sip_code": event.code,
                "reason": event.reason,
                "duration": round(event.duration, 1),
            },
        )
        if status.call_id == event.call_id:
            status.call_id = None
            status.answered = False
            self._refresh_call_state(status)
        self._notify(event.ext_id)

    @callback
    def _dtmf(self, event: DtmfDigit) -> None:
        if event.ext_id in self.extensions:
            self._fire(
                event.ext_id,
                CallEventType.DTMF,
                {"call_id": event.call_id, "digit": event.digit},
            )

    @callback
    def _refresh_call_state(self, status: ExtensionStatus) -> None:
        """Derive the call state: an alert shows over an unanswered or ended call."""
        if status.call_id is not None and status.answered:
            status.call_state = (
                CallState.PAGING
                if status.role is ExtensionRole.PAGE
                else CallState.ALERTING
                if status.alerting
                else CallState.IN_CALL
            )
        elif status.alerting:
            status.call_state = CallState.ALERTING
        elif status.call_id is not None:
            status.call_state = CallState.RINGING
        else:
            status.call_state = CallState.IDLE

    # --- alerts ---------------------------------------------------------------------

    @callback
    def alert_changed(self, ext_id: str, active: bool, data: dict[str, Any]) -> None:
        """Show that an emergency alert started or stopped (from its controller)."""
        if (status := self.extensions.get(ext_id)) is None:
            return
        status.alerting = active
        self._refresh_call_state(status)
        self._fire_bus(EVENT_ALERT, ext_id, "started" if active else "stopped", data)
        self._notify(ext_id)

    # --- fan-out --------------------------------------------------------------------

    @callback
    def _notify(self, ext_id: str) -> None:
        async_dispatcher_send(
            self.hass, signal_extension_updated(self.entry_id, ext_id)
        )

    @callback
    def _fire(
        self, ext_id: str, event_type: CallEventType, data: dict[str, Any]
    ) -> None:
        async_dispatcher_send(
            self.hass, signal_call_event(self.entry_id, ext_id), event_type, data
        )
        self._fire_bus(EVENT_CALL, ext_id, event_type, data)

    @callback
    def _fire_bus(
        self, event: str, ext_id: str, event_type: str, data: dict[str, Any]
    ) -> None:
        """Fire a bus event for automations, device triggers and the logbook."""
        status = self.extensions[ext_id]
        device = async_get_entry_device(self.hass, self.entry_id, ext_id)
        self.hass.bus.async_fire(
            event,
            {
                "device_id": device.id if device else None,
                ATTR_EXTENSION: status.extension,
                ATTR_TYPE: str(event_type),
                **data,
            },
        )


type SipEndpointConfigEntry = ConfigEntry[SipEndpointRuntime]
