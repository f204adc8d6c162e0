"""Runtime of one SIP server's config entry: the engine and what each extension is doing.

`SipEndpointRuntime` owns the extensions' lifecycle (add, remove, update), the repairs
their states raise and the dispatcher signals the entities listen to. `__init__.py`
only sets it up, unloads it and hands it configuration changes.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_call_later

from .calls.alert import AlertController, AlertStopReason
from .calls.router import CallRouter
from .calls.sounds import Sound
from .const import (
    ATTR_EXTENSION,
    ATTR_TYPE,
    CONF_ROLE,
    DOMAIN,
    EVENT_ALERT,
    EVENT_CALL,
    EVENT_REGISTRATION,
    LOGGER,
    REGISTRATION_FAILED,
    SUBENTRY_TYPE_EXTENSION,
    AlertEventType,
    CallEventType,
    CallState,
    ExtensionRole,
)
from .device_lookup import async_get_entry_device
from .engine import EngineError, EngineEvent, SipEngine, WorkerPythonNotFoundError
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
from .repairs import (
    async_create_no_worker_python_issue,
    async_create_rejected_credentials_issue,
    async_create_unreachable_issue,
    async_delete_media_unavailable_issues,
    async_delete_no_worker_python_issue,
    async_delete_rejected_credentials_issue,
    async_delete_tls_certificate_issue,
    async_delete_unreachable_issue,
    async_update_tls_certificate_issue,
)
from .settings import (
    async_warn_unverified_tls,
    engine_options,
    extension_settings,
    server_settings,
)

UNREACHABLE_REPAIR_DELAY = 600  # seconds without a reply before a repair issue appears
# The longest caller address or name an event carries (a From header may hold 60 kB).
MAX_CALLER_LENGTH = 256


@dataclass(slots=True)
class ExtensionStatus:
    """What one extension is doing right now."""

    account_id: str
    extension: str
    role: ExtensionRole
    registration: RegistrationState | None = None
    last_failure: RegistrationState | None = None
    call_state: CallState = CallState.IDLE
    call_id: str | None = None
    answered: bool = False
    alerting: bool = False  # an emergency alert plays on the media players
    lost: bool = False  # a lost registration was logged, its return not yet

    def refresh_call_state(self) -> None:
        """Derive the call state: an alert shows over an unanswered or ended call."""
        if self.call_id is not None and self.answered:
            self.call_state = (
                CallState.PAGING
                if self.role is ExtensionRole.PAGE
                else CallState.ALERTING
                if self.alerting
                else CallState.IN_CALL
            )
        elif self.alerting:
            self.call_state = CallState.ALERTING
        elif self.call_id is not None:
            self.call_state = CallState.RINGING
        else:
            self.call_state = CallState.IDLE


def signal_extension_updated(entry_id: str, account_id: str) -> str:
    """Dispatcher signal sent when an extension's status changes."""
    return f"{DOMAIN}_{entry_id}_{account_id}_updated"


def signal_server_updated(entry_id: str) -> str:
    """Dispatcher signal sent when a registration changes or an extension goes."""
    return f"{DOMAIN}_{entry_id}_server_updated"


def signal_call_event(entry_id: str, account_id: str) -> str:
    """Dispatcher signal carrying (CallEventType, data) for an extension."""
    return f"{DOMAIN}_{entry_id}_{account_id}_call_event"


def signal_extension_added(entry_id: str) -> str:
    """Dispatcher signal carrying the subentry id of an extension added at runtime."""
    return f"{DOMAIN}_{entry_id}_extension_added"


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


class SipEndpointRuntime:
    """Ties the engine's events to entities, calls, repairs and logs for one entry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: "SipEndpointConfigEntry",
        sounds: Mapping[Sound, Path],
        worker_python_candidates: tuple[str, ...],
    ) -> None:
        """Build the runtime of ``entry`` whole; nothing runs until it is started."""
        self.hass = hass
        self.entry = entry
        self.entry_id = entry.entry_id
        self.applied = applied_config(entry)
        self.sounds = sounds
        self.extensions: dict[str, ExtensionStatus] = {}
        self.alerts: dict[str, AlertController] = {}  # emergency alert extensions
        self._engine_options = engine_options(entry.options)
        self.engine = SipEngine(
            server_settings(entry.data),
            self._engine_options,
            self.handle_event,
            worker_python_candidates=worker_python_candidates,
        )
        self.router = CallRouter(hass, entry, self.engine, sounds, self.alerts)
        self._unreachable_timer: CALLBACK_TYPE | None = None
        self._unreachable_reported = False
        self._stopping = False

    # --- lifecycle ------------------------------------------------------------------

    async def async_start_engine(self) -> None:
        """Start the workers (raises `EngineError`; a missing interpreter: a repair)."""
        entry = self.entry
        async_warn_unverified_tls(
            self.hass, self.entry_id, entry.title, self._engine_options
        )
        try:
            await self.engine.start()
        except WorkerPythonNotFoundError:
            # Only the pjsua2 engine option gets here; auto runs the built-in engine.
            async_create_no_worker_python_issue(self.hass, entry)
            raise
        async_delete_no_worker_python_issue(self.hass, entry)

    async def async_add_extensions(self) -> None:
        """Add every configured extension; on an engine error stop all and raise."""
        try:
            for account_id, data in self.applied.extensions.items():
                await self.async_add_extension(account_id, data)
        except EngineError:
            await self.async_stop()
            raise

    async def async_add_extension(
        self, account_id: str, data: Mapping[str, Any]
    ) -> None:
        """Register one extension and make its status (and alert) ready."""
        settings = extension_settings(account_id, data)
        role = ExtensionRole(data[CONF_ROLE])
        self.extensions[account_id] = ExtensionStatus(
            account_id=account_id, extension=settings.extension, role=role
        )
        if role is ExtensionRole.EMERGENCY_ALERT:
            self.alerts[account_id] = AlertController(
                self.hass,
                account_id,
                lambda: self.applied.extensions.get(account_id, {}),
                self.sounds,
                self.alert_changed,
            )
        await self.engine.add_extension(settings)

    async def async_remove_extension(self, account_id: str) -> None:
        """Stop a removed extension's alert, forget its status, unregister it."""
        if (controller := self.alerts.get(account_id)) is not None:
            controller.shutdown()
            # Stopped before it is forgotten: the siren still reads it to show the stop.
            await controller.async_stop(AlertStopReason.UNLOADED)
            self.alerts.pop(account_id, None)
        if self.extensions.pop(account_id, None) is not None:
            # The server's entities count the extensions.
            async_dispatcher_send(self.hass, signal_server_updated(self.entry_id))
        async_delete_rejected_credentials_issue(self.hass, self.entry, account_id)
        async_delete_media_unavailable_issues(self.hass, account_id)
        await self.engine.remove_extension(account_id)

    async def async_apply_config(self) -> bool:
        """Apply the entry's changed configuration; False when only a reload can."""
        applied, wanted = self.applied, applied_config(self.entry)
        if wanted.data != applied.data or wanted.options != applied.options:
            return False
        for account_id in applied.extensions.keys() - wanted.extensions.keys():
            await self.async_remove_extension(account_id)
        for account_id, data in wanted.extensions.items():
            previous = applied.extensions.get(account_id)
            if previous is None:
                await self.async_add_extension(account_id, data)
                # Every platform creates the new extension's entities.
                async_dispatcher_send(
                    self.hass, signal_extension_added(self.entry_id), account_id
                )
            elif previous[CONF_ROLE] != data[CONF_ROLE]:
                return False
            elif (
                settings := extension_settings(account_id, data)
            ) != extension_settings(account_id, previous):
                # Only new credentials need a new registration; role options do not.
                self.extensions[account_id].extension = settings.extension
                await self.engine.update_extension(settings)
        self.applied = wanted
        return True

    async def async_stop(self) -> None:
        """Stop every alert (the players would go on), then the workers."""
        for controller in list(self.alerts.values()):
            controller.shutdown()
            await controller.async_stop(AlertStopReason.UNLOADED)
        self._shutdown()
        await self.engine.stop()

    async def async_unload(self) -> None:
        """Stop, and drop the repairs the extensions' states raised (they come back)."""
        await self.async_stop()
        async_delete_tls_certificate_issue(self.hass, self.entry)

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
            case CallStateChanged(phase=CallPhase.CONFIRMED):
                self._call_answered(event)
            case CallEnded():
                self._call_ended(event)
            case DtmfDigit():
                self._dtmf(event)
        self.router.handle_event(event)
        if isinstance(event, RegistrationState):
            async_update_tls_certificate_issue(
                self.hass, self.entry, self.extensions.values()
            )

    @callback
    def _shutdown(self) -> None:
        """Ignore further events and cancel timers; the caller stops the engine."""
        self._stopping = True
        if self._unreachable_timer is not None:
            self._unreachable_timer()
            self._unreachable_timer = None

    # --- registration ---------------------------------------------------------------

    @callback
    def _registration_changed(self, state: RegistrationState) -> None:
        if (status := self.extensions.get(state.account_id)) is None:
            return
        previous = status.registration
        status.registration = state
        if state.status in FAILURE_STATUSES:
            status.last_failure = state
            if previous is None or previous.status is not state.status:
                self._fire_bus(
                    EVENT_REGISTRATION,
                    state.account_id,
                    REGISTRATION_FAILED,
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
            async_delete_rejected_credentials_issue(
                self.hass, self.entry, status.account_id
            )
        elif state.status in FAILURE_STATUSES and not status.lost:
            # Unregistered is no failure: the extension was removed, or its worker
            # restarts (the engine logs that once, not once per extension).
            status.lost = True
            LOGGER.warning(
                "Extension %s is not registered: %s%s",
                status.extension,
                state.status,
                f" (SIP {state.code} {state.reason})" if state.code else "",
            )
        if state.status is RegistrationStatus.REJECTED_BY_SERVER:
            async_create_rejected_credentials_issue(
                self.hass, self.entry, status.account_id, status.extension
            )
        self._track_reachability()
        self._notify(state.account_id)
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
            async_delete_unreachable_issue(self.hass, self.entry)

    @callback
    def _report_unreachable(self, _now: Any) -> None:
        self._unreachable_timer = None
        self._unreachable_reported = True
        async_create_unreachable_issue(self.hass, self.entry)

    # --- calls ----------------------------------------------------------------------

    @callback
    def _incoming_call(self, call: IncomingCall) -> None:
        if (status := self.extensions.get(call.account_id)) is None:
            return
        status.call_id = call.call_id
        status.answered = False
        status.refresh_call_state()
        self._fire(
            call.account_id,
            CallEventType.INCOMING,
            {
                "call_id": call.call_id,
                # From the caller's From header: whatever a caller sends, kept short.
                "caller": call.remote_uri[:MAX_CALLER_LENGTH],
                "caller_name": call.display_name[:MAX_CALLER_LENGTH],
            },
        )
        self._notify(call.account_id)
        self.router.start(
            call, status.role, self.applied.extensions.get(call.account_id, {})
        )

    @callback
    def _call_answered(self, event: CallStateChanged) -> None:
        if (status := self.extensions.get(event.account_id)) is None:
            return
        if status.call_id is None:
            status.call_id = event.call_id  # an outbound call (the page action)
        status.answered = True
        status.refresh_call_state()
        self._fire(event.account_id, CallEventType.ANSWERED, {"call_id": event.call_id})
        self._notify(event.account_id)

    @callback
    def _call_ended(self, event: CallEnded) -> None:
        if (status := self.extensions.get(event.account_id)) is None:
            return
        missed = event.direction is CallDirection.INBOUND and not event.answered
        self._fire(
            event.account_id,
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
            status.refresh_call_state()
        self._notify(event.account_id)

    @callback
    def _dtmf(self, event: DtmfDigit) -> None:
        if event.account_id in self.extensions:
            self._fire(
                event.account_id,
                CallEventType.DTMF,
                {"call_id": event.call_id, "digit": event.digit},
            )

    # --- alerts ---------------------------------------------------------------------

    @callback
    def alert_changed(
        self, account_id: str, active: bool, data: dict[str, Any]
    ) -> None:
        """Show that an emergency alert started or stopped (from its controller)."""
        if (status := self.extensions.get(account_id)) is None:
            return
        status.alerting = active
        status.refresh_call_state()
        self._fire_bus(
            EVENT_ALERT,
            account_id,
            AlertEventType.STARTED if active else AlertEventType.STOPPED,
            data,
        )
        self._notify(account_id)

    # --- fan-out --------------------------------------------------------------------

    @callback
    def _notify(self, account_id: str) -> None:
        async_dispatcher_send(
            self.hass, signal_extension_updated(self.entry_id, account_id)
        )

    @callback
    def _fire(
        self, account_id: str, event_type: CallEventType, data: dict[str, Any]
    ) -> None:
        async_dispatcher_send(
            self.hass, signal_call_event(self.entry_id, account_id), event_type, data
        )
        self._fire_bus(EVENT_CALL, account_id, event_type, data)

    @callback
    def _fire_bus(
        self, event: str, account_id: str, event_type: str, data: dict[str, Any]
    ) -> None:
        """Fire a bus event for automations, device triggers and the logbook."""
        status = self.extensions[account_id]
        device = async_get_entry_device(self.hass, self.entry_id, account_id)
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
