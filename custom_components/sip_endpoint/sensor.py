"""Sensors of SIP Endpoint.

Per extension: registration status, last failure and call state. Per server: how many
extensions are registered, and which SIP engine runs (diagnostic).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .const import CallState, ExtensionRole
from .entity import SipEndpointEntity, SipServerEntity, async_setup_extension_entities
from .protocol.engines import EngineName
from .protocol.payloads import RegistrationState
from .protocol.status import FAILURE_STATUSES, RegistrationStatus
from .runtime import ExtensionStatus, SipEndpointConfigEntry, SipEndpointRuntime

PARALLEL_UPDATES = 0

NO_FAILURE = "none"  # the last failure sensor's state until something fails


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
        # What the server granted: the registration lasts this long after the last
        # success unless it is refreshed (it is, before it runs out).
        "expiry_seconds": state.expires,
        "registrar": state.registrar,
    }


def _failure_attributes(failure: RegistrationState | None) -> dict[str, Any]:
    if failure is None:
        return {}
    return {
        "sip_code": failure.code,
        "reason": failure.reason,
        "time": _timestamp(failure.changed_at),
    }


@dataclass(frozen=True, kw_only=True)
class SipSensorEntityDescription(SensorEntityDescription):
    """Describes a sensor of one extension."""

    value_fn: Callable[[ExtensionStatus], StateType]
    attributes_fn: Callable[[ExtensionStatus], dict[str, Any]] = lambda _: {}


@dataclass(frozen=True, kw_only=True)
class SipServerSensorEntityDescription(SensorEntityDescription):
    """Describes a sensor of the server, read from its runtime."""

    value_fn: Callable[[SipEndpointRuntime], StateType]
    attributes_fn: Callable[[SipEndpointRuntime], dict[str, Any]] = lambda _: {}


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


def _call_state(key: str, states: list[CallState]) -> SipSensorEntityDescription:
    return SipSensorEntityDescription(
        key=key,
        translation_key="call_state",
        device_class=SensorDeviceClass.ENUM,
        options=[state.value for state in states],
        value_fn=lambda status: status.call_state,
    )


# The call states each role can reach (ExtensionStatus.refresh_call_state): an
# answered call is paging on a page extension and in a call elsewhere (the page action
# calls out from any extension); only emergency alert extensions alert.
CALL_STATE = {
    ExtensionRole.PAGE: _call_state(
        "call_state", [CallState.IDLE, CallState.RINGING, CallState.PAGING]
    ),
    ExtensionRole.RING: _call_state(
        "call_state", [CallState.IDLE, CallState.RINGING, CallState.IN_CALL]
    ),
    ExtensionRole.EMERGENCY_ALERT: _call_state(
        "call_state",
        [CallState.IDLE, CallState.RINGING, CallState.ALERTING, CallState.IN_CALL],
    ),
    ExtensionRole.CALL_TO_CANCEL: _call_state(
        "call_state", [CallState.IDLE, CallState.RINGING, CallState.IN_CALL]
    ),
}

# The last failure's status (its code is an attribute): a status reads better than a bare
# SIP code, and an enum state can say that nothing has failed yet.
LAST_FAILURE = SipSensorEntityDescription(
    key="last_failure",
    translation_key="last_failure",
    device_class=SensorDeviceClass.ENUM,
    entity_category=EntityCategory.DIAGNOSTIC,
    options=[
        NO_FAILURE,
        *(status.value for status in RegistrationStatus if status in FAILURE_STATUSES),
    ],
    value_fn=lambda status: (
        status.last_failure.status if status.last_failure is not None else NO_FAILURE
    ),
    attributes_fn=lambda status: _failure_attributes(status.last_failure),
)

REGISTERED_EXTENSIONS = SipServerSensorEntityDescription(
    key="registered_extensions",
    translation_key="registered_extensions",
    state_class=SensorStateClass.MEASUREMENT,
    value_fn=lambda runtime: sum(
        status.registration is not None
        and status.registration.status is RegistrationStatus.SUCCESSFUL
        for status in runtime.extensions.values()
    ),
)


def _engine_name(runtime: SipEndpointRuntime) -> str | None:
    selected = runtime.engine.selected_engine
    return str(selected.name) if selected is not None else None


def _engine_attributes(runtime: SipEndpointRuntime) -> dict[str, Any]:
    """Return the engine's version (from a worker's hello) and its interpreter."""
    selected = runtime.engine.selected_engine
    if selected is None:
        return {}
    versions = [info.engine_version for info in runtime.engine.workers()]
    return {
        "engine_version": next(filter(None, versions), selected.engine_version) or None,
        "python": selected.python,
        "python_version": selected.python_version,
    }


# Which engine the *Auto* option chose, and on which interpreter.
ENGINE = SipServerSensorEntityDescription(
    key="engine",
    translation_key="engine",
    device_class=SensorDeviceClass.ENUM,
    entity_category=EntityCategory.DIAGNOSTIC,
    options=[name.value for name in EngineName],
    value_fn=_engine_name,
    attributes_fn=_engine_attributes,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SipEndpointConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the server's sensors and the sensors of every extension."""
    async_add_entities(
        SipServerSensor(entry.runtime_data, description)
        for description in (REGISTERED_EXTENSIONS, ENGINE)
    )

    def build(
        runtime: SipEndpointRuntime, status: ExtensionStatus
    ) -> list[SensorEntity]:
        return [
            SipSensor(runtime, status, REGISTRATION),
            SipSensor(runtime, status, CALL_STATE[status.role]),
            SipLastFailureSensor(runtime, status, LAST_FAILURE),
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


class SipLastFailureSensor(SipSensor, RestoreSensor):
    """The last failure, kept across re-registrations and restarts."""

    _restored: tuple[str, dict[str, Any]] | None = None

    async def async_added_to_hass(self) -> None:
        """Restore the last failure after a restart, until a new one happens."""
        await super().async_added_to_hass()
        if self.status.last_failure is not None:
            return
        if (last := await self.async_get_last_state()) is None:
            return
        data = await self.async_get_last_sensor_data()
        value = data.native_value if data is not None else None
        options = self.entity_description.options or []
        if isinstance(value, str) and value in options and value != NO_FAILURE:
            attributes = {
                key: last.attributes.get(key) for key in ("sip_code", "reason", "time")
            }
            self._restored = (value, attributes)

    @property
    def native_value(self) -> StateType:
        """Return the last failure's status, or the one from before a restart."""
        if self.status.last_failure is None and self._restored is not None:
            return self._restored[0]
        return super().native_value

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Return the last failure's SIP code, reason and time."""
        if self.status.last_failure is None and self._restored is not None:
            return self._restored[1]
        return super().extra_state_attributes


class SipServerSensor(SipServerEntity, SensorEntity):
    """A sensor of the server, read from its runtime on every registration change."""

    entity_description: SipServerSensorEntityDescription

    @callback
    def _update_from_runtime(self) -> None:
        self._attr_native_value = self.entity_description.value_fn(self.runtime)
        self._attr_extra_state_attributes = self.entity_description.attributes_fn(
            self.runtime
        )
