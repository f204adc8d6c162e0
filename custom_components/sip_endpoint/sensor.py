"""Sensors of SIP Endpoint: registration status, last failure code and call state."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .const import CallState
from .entity import SipEndpointEntity, async_setup_extension_entities
from .protocol.payloads import RegistrationState
from .protocol.status import RegistrationStatus
from .runtime import ExtensionStatus, SipEndpointConfigEntry, SipEndpointRuntime

PARALLEL_UPDATES = 0


def _timestamp(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat()


def _registration_attributes(status: ExtensionStatus) -> dict[str, Any]:
    state = status.registration
    if state is None:
        return {}
    return {
        "sip_code": state.code,
        "reason": state.reason,
        "last_success": _timestamp(state.last_success),
        "expires": state.expires,
        "registrar": state.registrar,
    }


def _failure_attributes(failure: RegistrationState | None) -> dict[str, Any]:
    if failure is None:
        return {}
    return {
        "reason": failure.reason,
        "status": failure.status,
        "time": _timestamp(failure.changed_at),
    }


@dataclass(frozen=True, kw_only=True)
class SipSensorEntityDescription(SensorEntityDescription):
    """Describes a SIP Endpoint sensor."""

    value_fn: Callable[[ExtensionStatus], StateType]
    attributes_fn: Callable[[ExtensionStatus], dict[str, Any]] = lambda _: {}


REGISTRATION = SipSensorEntityDescription(
    key="registration",
    translation_key="registration",
    device_class=SensorDeviceClass.ENUM,
    options=[status.value for status in RegistrationStatus],
    value_fn=lambda status: (
        status.registration.status
        if status.registration is not None
        else RegistrationStatus.REGISTERING
    ),
    attributes_fn=_registration_attributes,
)
CALL_STATE = SipSensorEntityDescription(
    key="call_state",
    translation_key="call_state",
    device_class=SensorDeviceClass.ENUM,
    options=[state.value for state in CallState],
    value_fn=lambda status: status.call_state,
)
FAILURE_CODE = SipSensorEntityDescription(
    key="failure_code",
    translation_key="failure_code",
    entity_category=EntityCategory.DIAGNOSTIC,
    value_fn=lambda status: (
        status.last_failure.code if status.last_failure is not None else None
    ),
    attributes_fn=lambda status: _failure_attributes(status.last_failure),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SipEndpointConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the sensors of every extension."""

    def build(
        runtime: SipEndpointRuntime, status: ExtensionStatus
    ) -> list[SensorEntity]:
        return [
            SipSensor(runtime, status, REGISTRATION),
            SipSensor(runtime, status, CALL_STATE),
            SipFailureCodeSensor(runtime, status, FAILURE_CODE),
        ]

    async_setup_extension_entities(hass, entry, async_add_entities, build)


class SipSensor(SipEndpointEntity, SensorEntity):
    """A sensor reading an extension's status."""

    entity_description: SipSensorEntityDescription

    @property
    def native_value(self) -> StateType:
        """Return the sensor's value."""
        return self.entity_description.value_fn(self.status)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Return details such as the SIP code and reason."""
        return self.entity_description.attributes_fn(self.status)


class SipFailureCodeSensor(SipSensor, RestoreSensor):
    """The last failure's SIP code, kept across re-registrations and restarts."""

    _restored_attributes: dict[str, Any] | None = None

    async def async_added_to_hass(self) -> None:
        """Restore the last failure after a restart, until a new one happens."""
        await super().async_added_to_hass()
        if self.status.last_failure is not None:
            return
        if (last := await self.async_get_last_state()) is None:
            return
        if (data := await self.async_get_last_sensor_data()) is not None:
            self._attr_native_value = data.native_value
            self._restored_attributes = dict(last.attributes)

    @property
    def native_value(self) -> StateType:
        """Return the last failure's code, or the one restored from before a restart."""
        if self.status.last_failure is None and self._restored_attributes is not None:
            return self._attr_native_value  # type: ignore[return-value]
        return super().native_value

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Return the last failure's reason, status and time."""
        if self.status.last_failure is None and self._restored_attributes is not None:
            return {
                key: self._restored_attributes.get(key)
                for key in ("reason", "status", "time")
            }
        return super().extra_state_attributes
