"""SIP Endpoint: Home Assistant as a SIP paging and alerting endpoint."""

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.typing import ConfigType

from .calls.audio_views import async_register_views
from .calls.sounds import async_ensure_sounds
from .const import DOMAIN
from .engine import EngineError, WorkerPythonNotFoundError
from .entity import MANUFACTURER
from .flow_validation import worker_python_candidates
from .runtime import SipEndpointConfigEntry, SipEndpointRuntime
from .services import async_setup_services

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
    runtime = SipEndpointRuntime(
        hass, entry, await async_ensure_sounds(hass), worker_python_candidates(hass)
    )
    try:
        await runtime.async_start_engine()
    except WorkerPythonNotFoundError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN, translation_key="no_worker_python"
        ) from err
    except EngineError as err:
        raise _engine_start_failed(err) from err

    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, entry.entry_id)},
        name=entry.title,
        manufacturer=MANUFACTURER,
        model="SIP server",
        entry_type=dr.DeviceEntryType.SERVICE,
    )
    try:
        await runtime.async_add_extensions()
    except EngineError as err:
        raise _engine_start_failed(err) from err
    entry.runtime_data = runtime
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_on_unload(entry.add_update_listener(_async_update_listener))

    async def _async_stop(_event: Event) -> None:
        """Home Assistant stops (entries are not unloaded): unregister, end workers."""
        await runtime.async_stop()

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
        await entry.runtime_data.async_unload()
    return unload_ok


async def _async_update_listener(
    hass: HomeAssistant, entry: SipEndpointConfigEntry
) -> None:
    """Apply a changed configuration without disturbing the other extensions."""
    if not await entry.runtime_data.async_apply_config():
        hass.config_entries.async_schedule_reload(entry.entry_id)


def _engine_start_failed(err: EngineError) -> ConfigEntryNotReady:
    return ConfigEntryNotReady(
        translation_domain=DOMAIN,
        translation_key="engine_start_failed",
        translation_placeholders={"error": str(err)},
    )
