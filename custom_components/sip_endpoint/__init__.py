"""SIP Endpoint: Home Assistant as a SIP paging and alerting endpoint."""

from collections.abc import Mapping
from typing import Any

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.typing import ConfigType

from .calls.alert import AlertController, AlertStopReason
from .calls.audio_views import async_register_views
from .calls.router import CallRouter
from .calls.sounds import async_ensure_sounds
from .const import CONF_ROLE, DOMAIN, ExtensionRole
from .engine.errors import EngineError, WorkerPythonNotFoundError
from .engine.models import EngineEvent
from .engine.sip_engine import SipEngine
from .entity import MANUFACTURER, async_announce_extension
from .flow_validation import worker_python_candidates
from .protocol.payloads import RegistrationState
from .repairs import (
    async_create_no_worker_python_issue,
    async_create_rejected_credentials_issue,
    async_create_unreachable_issue,
    async_delete_no_worker_python_issue,
    async_delete_rejected_credentials_issue,
    async_delete_tls_certificate_issue,
    async_delete_unreachable_issue,
    async_update_tls_certificate_issue,
)
from .runtime import (
    ExtensionStatus,
    SipEndpointConfigEntry,
    SipEndpointRuntime,
    applied_config,
)
from .services import async_setup_services
from .settings import (
    async_warn_unverified_tls,
    engine_options,
    extension_settings,
    server_settings,
)

PLATFORMS = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.EVENT,
    Platform.SENSOR,
    Platform.SIREN,
]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions and the audio views."""
    async_register_views(hass)
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: SipEndpointConfigEntry) -> bool:
    """Start the engine for one SIP server and register its extensions."""
    runtime = SipEndpointRuntime(hass, entry.entry_id, applied_config(entry))
    sounds = await async_ensure_sounds(hass)
    options = engine_options(entry.options)
    async_warn_unverified_tls(hass, entry.entry_id, entry.title, options)
    runtime.engine = SipEngine(
        server_settings(entry.data),
        options,
        _event_handler(hass, entry, runtime),
        worker_python_candidates=worker_python_candidates(hass),
    )
    try:
        await runtime.engine.start()
    except WorkerPythonNotFoundError as err:
        # Only the pjsua2 engine option gets here; auto runs the built-in engine.
        async_create_no_worker_python_issue(hass, entry)
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN, translation_key="no_worker_python"
        ) from err
    except EngineError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="engine_start_failed",
            translation_placeholders={"error": str(err)},
        ) from err
    async_delete_no_worker_python_issue(hass, entry)
    _wire_repairs(hass, entry, runtime)
    runtime.router = CallRouter(hass, entry, runtime.engine, sounds)
    runtime.router.options = lambda ext_id: runtime.applied.extensions.get(ext_id, {})

    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, entry.entry_id)},
        name=entry.title,
        manufacturer=MANUFACTURER,
        model="SIP server",
        entry_type=dr.DeviceEntryType.SERVICE,
    )
    try:
        for ext_id, data in runtime.applied.extensions.items():
            await _async_add_extension(runtime, ext_id, data)
    except EngineError as err:
        await _async_stop_alerts(runtime, AlertStopReason.UNLOADED)
        runtime.shutdown()
        await runtime.engine.stop()
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="engine_start_failed",
            translation_placeholders={"error": str(err)},
        ) from err
    entry.runtime_data = runtime
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_on_unload(entry.add_update_listener(_async_update_listener))

    async def _async_stop(_event: Event) -> None:
        """Home Assistant stops (entries are not unloaded): unregister, end workers."""
        await _async_stop_alerts(runtime, AlertStopReason.UNLOADED)
        runtime.shutdown()
        await runtime.engine.stop()

    entry.async_on_unload(
        hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _async_stop)
    )
    return True


async def async_unload_entry(
    hass: HomeAssistant, entry: SipEndpointConfigEntry
) -> bool:
    """Unregister every extension and stop the workers."""
    unload_ok = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unload_ok:
        await _async_stop_alerts(entry.runtime_data, AlertStopReason.UNLOADED)
        entry.runtime_data.shutdown()
        await entry.runtime_data.engine.stop()
        # Raised from the extensions' statuses; they come again after a reload.
        async_delete_tls_certificate_issue(hass, entry)
    return unload_ok


def _event_handler(
    hass: HomeAssistant, entry: SipEndpointConfigEntry, runtime: SipEndpointRuntime
) -> Any:
    @callback
    def handle(event: EngineEvent) -> None:
        runtime.handle_event(event)
        if not runtime.stopping:
            runtime.router.handle_event(event)
            if isinstance(event, RegistrationState):
                async_update_tls_certificate_issue(
                    hass, entry, runtime.extensions.values()
                )

    return handle


async def _async_stop_alerts(runtime: SipEndpointRuntime, reason: str) -> None:
    """Stop every running alert (the players would go on playing otherwise)."""
    for controller in list(runtime.router.alerts.values()):
        controller.shutdown()
        await controller.async_stop(reason)


def _wire_repairs(
    hass: HomeAssistant, entry: SipEndpointConfigEntry, runtime: SipEndpointRuntime
) -> None:
    @callback
    def rejected(status: ExtensionStatus) -> None:
        async_create_rejected_credentials_issue(
            hass, entry, status.ext_id, status.extension
        )

    @callback
    def registered(status: ExtensionStatus) -> None:
        async_delete_rejected_credentials_issue(hass, entry, status.ext_id)

    @callback
    def unreachable(is_unreachable: bool) -> None:
        if is_unreachable:
            async_create_unreachable_issue(hass, entry)
        else:
            async_delete_unreachable_issue(hass, entry)

    runtime.on_rejected = rejected
    runtime.on_registered = registered
    runtime.on_unreachable = unreachable


async def _async_add_extension(
    runtime: SipEndpointRuntime, ext_id: str, data: Mapping[str, Any]
) -> None:
    settings = extension_settings(ext_id, data)
    role = ExtensionRole(data[CONF_ROLE])
    runtime.extensions[ext_id] = ExtensionStatus(
        ext_id=ext_id, extension=settings.extension, role=role
    )
    router = runtime.router
    router.roles[ext_id] = role
    if role is ExtensionRole.EMERGENCY_ALERT:
        router.alerts[ext_id] = AlertController(
            runtime.hass,
            ext_id,
            lambda: runtime.applied.extensions.get(ext_id, {}),
            router.sounds,
            runtime.alert_changed,
        )
    await runtime.engine.add_extension(settings)


async def _async_update_listener(
    hass: HomeAssistant, entry: SipEndpointConfigEntry
) -> None:
    """Apply a changed configuration without disturbing the other extensions."""
    runtime = entry.runtime_data
    applied = runtime.applied
    wanted = applied_config(entry)
    if wanted.data != applied.data or wanted.options != applied.options:
        hass.config_entries.async_schedule_reload(entry.entry_id)
        return
    for ext_id in applied.extensions.keys() - wanted.extensions.keys():
        runtime.router.roles.pop(ext_id, None)
        if (controller := runtime.router.alerts.pop(ext_id, None)) is not None:
            controller.shutdown()
            await controller.async_stop(AlertStopReason.UNLOADED)
        runtime.forget_extension(ext_id)
        async_delete_rejected_credentials_issue(hass, entry, ext_id)
        await runtime.engine.remove_extension(ext_id)
    for ext_id, data in wanted.extensions.items():
        previous = applied.extensions.get(ext_id)
        if previous is None:
            await _async_add_extension(runtime, ext_id, data)
            async_announce_extension(hass, entry.entry_id, ext_id)
        elif previous[CONF_ROLE] != data[CONF_ROLE]:
            hass.config_entries.async_schedule_reload(entry.entry_id)
            return
        elif (settings := extension_settings(ext_id, data)) != extension_settings(
            ext_id, previous
        ):
            # Only new credentials need a new registration; role options do not.
            runtime.extensions[ext_id].extension = settings.extension
            await runtime.engine.update_extension(settings)
    runtime.applied = wanted
