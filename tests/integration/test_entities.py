"""Entities and devices of the server and its extensions.

Snapshots, adding and removing extensions, the server's entities following the real
registrar, the last failure, and the call states each role offers.
"""

from collections.abc import Callable
import itertools
from types import MappingProxyType
from unittest.mock import patch

from homeassistant.components.sensor import ATTR_OPTIONS
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_PASSWORD, STATE_UNKNOWN, EntityCategory
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    mock_restore_cache_with_extra_data,
)
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.sip_endpoint.binary_sensor import server_answers
from custom_components.sip_endpoint.const import (
    CONF_AUTH_ID,
    CONF_EXTENSION,
    CONF_KEEPALIVE,
    CONF_KEEPALIVE_INTERVAL,
    CONF_ROLE,
    CONF_VOLUME,
    SUBENTRY_TYPE_EXTENSION,
    ExtensionRole,
)
from custom_components.sip_endpoint.protocol.payloads import RegistrationState
from custom_components.sip_endpoint.protocol.status import RegistrationStatus
from custom_components.sip_endpoint.runtime import ExtensionStatus
from tests.sipbed.kamailio import Kamailio

from .devices import device_subentries, entry_device
from .helpers import async_wait_for_state, state_of
from .roles import RoleEntryFactory, RoleSpec, entity_prefix

# Values that differ from run to run or machine to machine: times, the registrar's free
# port, and the interpreter the engine runs on.
DYNAMIC = props(
    "registrar", "last_success", "time", "python", "python_version", "engine_version"
)
# The server's entities: the device is named after the entry's title ("Test PBX").
REACHABLE = "binary_sensor.test_pbx_reachable"
REGISTERED_EXTENSIONS = "sensor.test_pbx_registered_extensions"
ENGINE = "sensor.test_pbx_sip_engine"


async def test_entities_and_devices(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Each extension is a device under the server with its entities."""
    await async_wait_for_state(hass, "sensor.page_2001_registration", "successful")
    await async_wait_for_state(hass, "sensor.ring_2002_registration", "successful")

    server = entry_device(hass, loaded_entry.entry_id)
    assert server is not None
    assert server == snapshot(name="device-server")
    for subentry_id, subentry in loaded_entry.subentries.items():
        device = entry_device(hass, subentry_id)
        assert device is not None
        assert device.via_device_id == server.id
        assert device_subentries(device) == {loaded_entry.entry_id: {subentry_id}}
        assert device.model == f"{subentry.data[CONF_ROLE].title()} extension"
        # The number is in the (translated) name, not posing as a serial number.
        extension = subentry.data[CONF_EXTENSION]
        assert device.name == f"{subentry.data[CONF_ROLE].title()} {extension}"
        assert device.serial_number is None
        assert device == snapshot(name=f"device-{extension}")

    entries = sorted(
        er.async_entries_for_config_entry(entity_registry, loaded_entry.entry_id),
        key=lambda entry: entry.entity_id,
    )
    assert [entry.entity_id for entry in entries] == snapshot(name="entity_ids")
    for entry in entries:
        assert entry == snapshot(name=f"{entry.entity_id}-entry")
        state = state_of(hass, entry.entity_id)
        assert state == snapshot(name=f"{entry.entity_id}-state", exclude=DYNAMIC)


async def test_add_and_remove_extension(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Adding a subentry registers a new extension; removing it unregisters it."""
    await async_wait_for_state(hass, "sensor.page_2001_registration", "successful")
    subentry = ConfigSubentry(
        data=MappingProxyType(
            {
                CONF_ROLE: ExtensionRole.PAGE,
                CONF_EXTENSION: "2003",
                CONF_AUTH_ID: "2003",
                CONF_PASSWORD: "pw-2003",
            }
        ),
        subentry_type=SUBENTRY_TYPE_EXTENSION,
        title="Page 2003",
        unique_id="2003",
    )
    hass.config_entries.async_add_subentry(loaded_entry, subentry)
    await hass.async_block_till_done()

    await async_wait_for_state(hass, "sensor.page_2003_registration", "successful")
    device = entry_device(hass, subentry.subentry_id)
    assert device is not None
    runtime = loaded_entry.runtime_data
    assert subentry.subentry_id in runtime.extensions
    await async_wait_for_state(hass, REGISTERED_EXTENSIONS, "3")

    hass.config_entries.async_remove_subentry(loaded_entry, subentry.subentry_id)
    await hass.async_block_till_done()

    assert subentry.subentry_id not in runtime.extensions
    assert state_of(hass, REGISTERED_EXTENSIONS).state == "2"
    assert not any(
        subentry.subentry_id in worker.account_ids
        for worker in runtime.engine.workers()
    )
    assert entry_device(hass, subentry.subentry_id) is None
    assert entity_registry.async_get("sensor.page_2003_registration") is None
    assert hass.states.get("sensor.page_2003_registration") is None
    # The others were not disturbed.
    assert state_of(hass, "sensor.page_2001_registration").state == "successful"


async def test_last_failure_survives_restart(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
) -> None:
    """The last failure from before a restart is still shown after it."""
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(
                    "sensor.page_2001_last_failure",
                    "no_reply_from_server",
                    {"sip_code": 408, "reason": "Request Timeout", "time": "earlier"},
                ),
                {
                    "native_value": "no_reply_from_server",
                    "native_unit_of_measurement": None,
                },
            )
        ],
    )
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    await async_wait_for_state(hass, "sensor.page_2001_registration", "successful")
    failure = state_of(hass, "sensor.page_2001_last_failure")
    assert failure.state == "no_reply_from_server"
    assert failure.attributes["sip_code"] == 408
    assert failure.attributes["reason"] == "Request Timeout"
    assert failure.attributes["time"] == "earlier"


async def test_no_failure_yet(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """A healthy new extension says that nothing has failed, not 'unknown'."""
    await async_wait_for_state(hass, "sensor.page_2001_registration", "successful")
    failure = state_of(hass, "sensor.page_2001_last_failure")
    assert failure.state == "none"
    assert failure.attributes[ATTR_OPTIONS][0] == "none"
    assert "successful" not in failure.attributes[ATTR_OPTIONS]


async def test_server_entities_follow_the_registrar(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
) -> None:
    """The server's device shows whether the registrar answers and who is registered.

    A stopped registrar turns "Reachable" off; when it runs again the liveness probe
    notices and registers again by itself (no button pressed), and it turns on.
    """
    entry = make_entry(
        kamailio,
        [
            (ExtensionRole.PAGE, "2001", "pw-2001"),
            (ExtensionRole.RING, "2002", "pw-2002"),
        ],
        transport="tcp",
    )
    hass.config_entries.async_update_entry(
        entry,
        options={
            **entry.options,
            CONF_KEEPALIVE: "sip_options",
            CONF_KEEPALIVE_INTERVAL: 5,
        },
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    server = entry_device(hass, entry.entry_id)
    assert server is not None
    entity_registry = er.async_get(hass)
    for entity_id in (REACHABLE, REGISTERED_EXTENSIONS):
        registry_entry = entity_registry.async_get(entity_id)
        assert registry_entry is not None
        assert registry_entry.device_id == server.id

    await async_wait_for_state(hass, REACHABLE, "on")
    await async_wait_for_state(hass, REGISTERED_EXTENSIONS, "2")

    kamailio.stop()
    await async_wait_for_state(hass, REACHABLE, "off")
    await async_wait_for_state(hass, REGISTERED_EXTENSIONS, "0")
    assert state_of(hass, "sensor.page_2001_registration").state == (
        "no_reply_from_server"
    )

    kamailio.start()
    await async_wait_for_state(hass, REACHABLE, "on")
    await async_wait_for_state(hass, REGISTERED_EXTENSIONS, "2")
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_reachable_is_unknown_without_extensions(
    hass: HomeAssistant,
    kamailio: Kamailio,
    make_entry: Callable[..., MockConfigEntry],
) -> None:
    """With its last extension removed, the server's reachability is not known."""
    entry = make_entry(kamailio, [(ExtensionRole.PAGE, "2001", "pw-2001")])
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await async_wait_for_state(hass, REACHABLE, "on")

    hass.config_entries.async_remove_subentry(entry, "subentry_2001")
    await hass.async_block_till_done()

    assert state_of(hass, REACHABLE).state == STATE_UNKNOWN
    assert state_of(hass, REGISTERED_EXTENSIONS).state == "0"
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def _with_status(status: RegistrationStatus | None) -> ExtensionStatus:
    extension = ExtensionStatus("ext", "2001", ExtensionRole.PAGE)
    if status is not None:
        extension.registration = RegistrationState(
            account_id="ext",
            status=status,
            code=None,
            reason="",
            changed_at=0.0,
            last_success=None,
            expires=0,
            registrar="sip:127.0.0.1",
        )
    return extension


@pytest.mark.parametrize(
    ("statuses", "answers"),
    [
        ([], None),
        ([None], None),
        (["registering", "unregistered", "tls_certificate_invalid"], None),
        (["no_reply_from_server"], False),
        (["no_reply_from_server", "registering"], False),
        (["no_reply_from_server", "successful"], True),
        (["no_reply_from_server", "rejected_by_server"], True),
        (["not_found"], True),
        (["server_error"], True),
    ],
)
def test_server_answers(statuses: list[str | None], answers: bool | None) -> None:
    """Any status only the server gives means it answers; no reply only without one."""
    extensions = [
        _with_status(RegistrationStatus(status) if status else None)
        for status in statuses
    ]
    assert server_answers(extensions) is answers


async def test_engine_sensor_names_the_engine(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """The server's diagnostic sensor says which engine runs, on which interpreter."""
    await async_wait_for_state(hass, "sensor.page_2001_registration", "successful")
    engine = loaded_entry.runtime_data.engine
    selected = engine.selected_engine
    assert selected is not None
    state = state_of(hass, ENGINE)
    assert state.state == "builtin"  # the suite's entry options choose it
    assert state.attributes["python"] == selected.python
    assert state.attributes["python_version"] == selected.python_version
    # The version comes from a running worker's hello.
    assert state.attributes["engine_version"]
    assert state.attributes["engine_version"] in {
        info.engine_version for info in engine.workers()
    }
    entry = er.async_get(hass).async_get(ENGINE)
    assert entry is not None
    assert entry.entity_category is EntityCategory.DIAGNOSTIC


async def test_call_state_offers_what_the_role_reaches(
    hass: HomeAssistant, create_entry: RoleEntryFactory
) -> None:
    """Each role's call state sensor lists only the states that role can reach."""
    specs: list[RoleSpec] = [
        (ExtensionRole.PAGE, "2001", {}),
        (ExtensionRole.RING, "2002", {}),
        (ExtensionRole.EMERGENCY_ALERT, "2003", {}),
        (ExtensionRole.CALL_TO_CANCEL, "2004", {}),
    ]
    await create_entry(specs)

    for role, extension, _options in specs:
        state = state_of(hass, f"sensor.{entity_prefix(role, extension)}_call_state")
        assert state.state == "idle"
        # Every situation the runtime derives a call state from: a call or none, answered
        # or not; only emergency alert extensions have an alert that plays.
        reachable: set[str] = set()
        for has_call, answered, alerting in itertools.product(
            (False, True), (False, True), (False, True)
        ):
            if alerting and role is not ExtensionRole.EMERGENCY_ALERT:
                continue
            status = ExtensionStatus("ext", extension, role)
            status.call_id = "call" if has_call else None
            status.answered = answered and has_call
            status.alerting = alerting
            status.refresh_call_state()
            reachable.add(status.call_state.value)
        assert sorted(state.attributes[ATTR_OPTIONS]) == sorted(reachable), role


async def test_changed_options_do_not_re_register(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Changing a role option keeps the registration; new credentials renew it."""
    await async_wait_for_state(hass, "sensor.page_2001_registration", "successful")
    engine = loaded_entry.runtime_data.engine
    subentry = loaded_entry.subentries["subentry_2001"]

    with patch.object(
        engine, "update_extension", wraps=engine.update_extension
    ) as update_extension:
        hass.config_entries.async_update_subentry(
            loaded_entry, subentry, data={**subentry.data, CONF_VOLUME: 80}
        )
        await hass.async_block_till_done()
        assert update_extension.call_count == 0

        hass.config_entries.async_update_subentry(
            loaded_entry,
            subentry,
            data={**subentry.data, CONF_PASSWORD: "wrong"},
        )
        await hass.async_block_till_done()
        assert update_extension.call_count == 1
    await async_wait_for_state(
        hass, "sensor.page_2001_registration", "rejected_by_server"
    )
