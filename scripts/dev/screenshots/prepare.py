"""Prepare a fresh `scripts/develop` Home Assistant for the README's screenshots.

Onboards it through the onboarding API (owner `dev` / `dev-password`), adds SIP Endpoint
through the config flow API with demo extension 100 as a page extension, adds a ring, an
emergency alert and a call-to-cancel extension through the subentry flow API, waits until
every extension is registered, switches the entry to the built-in engine (the options
flow), and saves an automation with a device trigger of the page extension. It prints
one JSON object for capture.cjs: the URL, the login, the entry and the devices and
automation to show.

Run by scripts/screenshots:
    .venv/bin/python scripts/dev/screenshots/prepare.py URL REGISTRAR_PORT
The flows are driven by their schemas (field name -> value below), so a changed flow
still works as long as the fields keep their names.
"""

import argparse
import asyncio
import json
import sys
from typing import Any

import aiohttp

USERNAME = "dev"
PASSWORD = "dev-password"  # a throwaway owner of a throwaway instance on loopback
DOMAIN = "sip_endpoint"
PLAYERS = ["media_player.lobby_speaker", "media_player.office_speaker"]
# (role, demo extension); the first is set up by the config flow, the others by
# subentry flows. The demo registrar's passwords are demo-<extension>.
EXTENSIONS = [
    ("page", "100"),
    ("ring", "101"),
    ("emergency_alert", "102"),
    ("call_to_cancel", "103"),
]
AUTOMATION_ID = "sip_endpoint_screenshot"
# The server's device is named after the entry's title, the server address.
ENGINE_SENSOR = "sensor.127_0_0_1_sip_engine"
TIMEOUT = aiohttp.ClientTimeout(total=60)


class Api:
    """The REST and WebSocket API of one Home Assistant, with a bearer token."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        """Talk to Home Assistant at `url` (no token yet)."""
        self.session = session
        self.url = url
        self.token = ""

    @property
    def client_id(self) -> str:
        """The OAuth client id the frontend would use."""
        return f"{self.url}/"

    async def request(
        self, method: str, path: str, body: Any = None, *, auth: bool = True
    ) -> Any:
        """Send a JSON request; fail with the answer's text on an error status."""
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        async with self.session.request(
            method, f"{self.url}{path}", json=body, headers=headers
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: {response.status} {text}")
            return json.loads(text) if text else None

    async def login(self, auth_code: str) -> None:
        """Exchange an authorization code for an access token."""
        async with self.session.post(
            f"{self.url}/auth/token",
            data={
                "grant_type": "authorization_code",
                "code": auth_code,
                "client_id": self.client_id,
            },
        ) as response:
            response.raise_for_status()
            self.token = (await response.json())["access_token"]

    async def websocket(self, command: dict[str, Any]) -> Any:
        """Run one WebSocket command and return its result."""
        async with self.session.ws_connect(f"{self.url}/api/websocket") as ws:
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": self.token})
            if (await ws.receive_json())["type"] != "auth_ok":
                raise RuntimeError("WebSocket authentication failed")
            await ws.send_json({"id": 1, **command})
            answer = await ws.receive_json()
        if not answer.get("success"):
            raise RuntimeError(f"{command['type']}: {answer.get('error')}")
        return answer["result"]


async def onboard(api: Api) -> None:
    """Create the owner and finish onboarding, as the onboarding pages would.

    An instance onboarded before (a second run on the same folder) is logged in to.
    """
    steps = {
        step["step"]: step["done"]
        for step in await api.request("GET", "/api/onboarding", auth=False)
    }
    if steps.get("user"):
        await login_with_password(api)
        return
    created = await api.request(
        "POST",
        "/api/onboarding/users",
        {
            "client_id": api.client_id,
            "name": "Developer",
            "username": USERNAME,
            "password": PASSWORD,
            "language": "en",
        },
        auth=False,
    )
    await api.login(created["auth_code"])
    # scripts/screenshots marks core_config and analytics done beforehand (finishing
    # them here would set up integrations that go online); any step left is done here.
    bodies = {
        "core_config": {},
        "analytics": {},
        "integration": {
            "client_id": api.client_id,
            "redirect_uri": f"{api.url}/?auth_callback=1",
        },
    }
    for step, body in bodies.items():
        if not steps.get(step):
            await api.request("POST", f"/api/onboarding/{step}", body)


async def login_with_password(api: Api) -> None:
    """Log in as the owner through the login flow, as the login page would."""
    redirect_uri = f"{api.url}/?auth_callback=1"
    flow = await api.request(
        "POST",
        "/auth/login_flow",
        {
            "client_id": api.client_id,
            "handler": ["homeassistant", None],
            "redirect_uri": redirect_uri,
        },
        auth=False,
    )
    done = await api.request(
        "POST",
        f"/auth/login_flow/{flow['flow_id']}",
        {"client_id": api.client_id, "username": USERNAME, "password": PASSWORD},
        auth=False,
    )
    if done.get("type") != "create_entry":
        raise RuntimeError(f"login failed: {done}")
    await api.login(done["result"])


def form_data(schema: list[dict[str, Any]], values: dict[str, Any]) -> dict[str, Any]:
    """Fill a flow form: known fields from `values`, sections recursively.

    Other fields keep their default (the flow fills it in) or their suggested value.
    """
    data: dict[str, Any] = {}
    for field in schema:
        name = field["name"]
        suggested = (field.get("description") or {}).get("suggested_value")
        if field.get("type") == "expandable":
            data[name] = form_data(field["schema"], values)
        elif name in values:
            data[name] = values[name]
        elif "default" in field:
            continue
        elif suggested is not None:
            data[name] = suggested
        elif field.get("required"):
            raise RuntimeError(f"no value for the required field {name!r}")
    return data


def answer(result: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Return what to send for a form or a menu step."""
    if result["type"] == "form":
        if result.get("errors"):
            raise RuntimeError(f"step {result['step_id']}: {result['errors']}")
        return form_data(result["data_schema"], values)
    if result["type"] == "menu":
        choices = values["menu_choices"]
        for option in result["menu_options"]:
            if option in choices:
                return {"next_step_id": option}
        raise RuntimeError(f"no menu option chosen of {result['menu_options']}")
    raise RuntimeError(f"the flow ended with {result['type']}: {result}")


async def drive_flow(
    api: Api, base: str, start: dict[str, Any], values: dict[str, Any]
) -> dict[str, Any]:
    """Start a flow and answer its forms and menus until it creates an entry."""
    result = await api.request("POST", base, start)
    try:
        for _ in range(10):
            if result["type"] == "create_entry":
                return dict(result)
            data = answer(result, values)
            result = await api.request("POST", f"{base}/{result['flow_id']}", data)
    except Exception:
        if result["type"] in ("form", "menu"):  # do not leave it in progress
            await api.request("DELETE", f"{base}/{result['flow_id']}")
        raise
    raise RuntimeError("the flow did not finish in 10 steps")


def extension_values(role: str, extension: str, registrar_port: int) -> dict[str, Any]:
    """Return the answers to every field the setup and extension forms may ask."""
    return {
        "server": "127.0.0.1",
        "port": registrar_port,
        "transport": "udp",
        "role": role,
        "extension": extension,
        "password": f"demo-{extension}",
        "media_players": PLAYERS,
        "alert_tts_message": "",
        # A menu step (e.g. which role to add) takes the first of these it offers.
        "menu_choices": [f"add_{role}", role],
    }


async def wait_for_state(api: Api, entity_id: str, wanted: str) -> None:
    """Wait until an entity has the wanted state."""
    await wait_for_states(api, [entity_id], wanted)


async def wait_registered(api: Api, entity_ids: list[str]) -> None:
    """Wait until every extension's registration sensor says successful."""
    await wait_for_states(api, entity_ids, "successful")


async def wait_for_states(api: Api, entity_ids: list[str], wanted: str) -> None:
    """Wait until every one of the entities has the wanted state."""
    for _ in range(120):
        states = {
            state["entity_id"]: state["state"]
            for state in await api.request("GET", "/api/states")
        }
        if all(states.get(entity_id) == wanted for entity_id in entity_ids):
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"not every one of {entity_ids} became {wanted!r}")


async def prepare(url: str, registrar_port: int) -> dict[str, Any]:
    """Set everything up; return what capture.cjs needs."""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        api = Api(session, url)
        await onboard(api)
        for flow in await api.websocket({"type": "config_entries/flow/progress"}):
            if flow["handler"] == DOMAIN:  # left over by an earlier run
                await api.request(
                    "DELETE", f"/api/config/config_entries/flow/{flow['flow_id']}"
                )
        for entry in await api.request("GET", "/api/config/config_entries/entry"):
            if entry["domain"] == DOMAIN:  # from an earlier run on this folder
                await api.request(
                    "DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}"
                )
        role, extension = EXTENSIONS[0]
        created = await drive_flow(
            api,
            "/api/config/config_entries/flow",
            {"handler": DOMAIN, "show_advanced_options": False},
            extension_values(role, extension, registrar_port),
        )
        entry_id = created["result"]["entry_id"]
        for role, extension in EXTENSIONS[1:]:
            await drive_flow(
                api,
                "/api/config/config_entries/subentries/flow",
                {"handler": [entry_id, "extension"]},
                extension_values(role, extension, registrar_port),
            )
        registrations = [
            f"sensor.{role}_{extension}_registration" for role, extension in EXTENSIONS
        ]
        await wait_registered(api, registrations)
        # scripts/develop offers its pjsua2 worker, so Auto would pick pjsua2; the
        # pictures show the built-in engine most installations run.
        await drive_flow(
            api,
            "/api/config/config_entries/options/flow",
            {"handler": entry_id},
            {"engine": "builtin"},
        )
        await wait_for_state(api, ENGINE_SENSOR, "builtin")
        await wait_registered(api, registrations)
        devices = await api.websocket({"type": "config/device_registry/list"})
        page = next(
            device
            for device in devices
            if entry_id in device["config_entries"] and device["name"] == "Page 100"
        )
        server = next(
            device for device in devices if [DOMAIN, entry_id] in device["identifiers"]
        )
        await api.request(
            "POST",
            f"/api/config/automation/config/{AUTOMATION_ID}",
            {
                "id": AUTOMATION_ID,
                "alias": "Announce pages in the hall",
                "description": "",
                "triggers": [
                    {
                        "trigger": "device",
                        "domain": DOMAIN,
                        "device_id": page["id"],
                        "type": "incoming_call",
                    }
                ],
                "conditions": [],
                "actions": [],
                "mode": "single",
            },
        )
        return {
            "url": url,
            "username": USERNAME,
            "password": PASSWORD,
            "entry_id": entry_id,
            "page_device_id": page["id"],
            "server_device_id": server["id"],
            "automation_id": AUTOMATION_ID,
        }


def main() -> int:
    """Parse the arguments, prepare, print the result as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="Home Assistant, e.g. http://127.0.0.1:8125")
    parser.add_argument("registrar_port", type=int, help="the demo Kamailio's port")
    args = parser.parse_args()
    result = asyncio.run(prepare(args.url.rstrip("/"), args.registrar_port))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
