"""Button of SIP Endpoint: register an extension again now."""

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .engine import EngineError
from .entity import SipEndpointEntity, async_setup_extension_entities
from .helpers import sip_exception_handler
from .runtime import SipEndpointConfigEntry

PARALLEL_UPDATES = 0

RE_REGISTER = ButtonEntityDescription(
    key="re_register",
    translation_key="re_register",
    entity_category=EntityCategory.CONFIG,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SipEndpointConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the re-register button of every extension."""
    async_setup_extension_entities(
        hass,
        entry,
        async_add_entities,
        lambda runtime, status: [SipReRegisterButton(runtime, status, RE_REGISTER)],
    )


def _extension(entity: SipEndpointEntity, _err: EngineError) -> dict[str, str]:
    return {"extension": entity.status.extension}


class SipReRegisterButton(SipEndpointEntity, ButtonEntity):
    """Sends a fresh REGISTER for the extension."""

    @sip_exception_handler("re_register_failed", _extension)
    async def async_press(self) -> None:
        """Register again now."""
        await self.runtime.engine.reregister(self.status.account_id)
