"""A real Home Assistant process stopped by SIGTERM: a clean stop, on both engines.

`.venv/bin/hass` runs with a configuration directory made here: the integration is
linked into ``custom_components`` (as scripts/develop does) and its config entry, with
two extensions, is written to ``.storage/core.config_entries``. Once Kamailio has
both contacts, SIGTERM stops Home Assistant. Then:

- Home Assistant exited, and so did every worker process it had started;
- Kamailio has no contact left for either extension (each sent ``Expires: 0``: the
  contacts would otherwise live 300 s), so a request to them gets 480 at once;
- the log has no warning or error, in particular not
  ``Task could not be canceled and was still running after shutdown``.

The time from SIGTERM to exit is printed (``-s``) for docs/reliability.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import re
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Final

import pytest

from custom_components.sip_endpoint.const import (
    CONF_AUTH_ID,
    CONF_BIND_HOST,
    CONF_ENGINE,
    CONF_EXTENSION,
    CONF_PORT_MAX,
    CONF_PORT_MIN,
    CONF_ROLE,
    CONF_SERVER,
    CONF_TRANSPORT,
    CONF_WORKER_PYTHON,
    DOMAIN,
    SUBENTRY_TYPE_EXTENSION,
    ExtensionRole,
)
from tests.sipbed.netutil import free_tcp_port, options_for_user
from tests.sipbed.users import password_for

if TYPE_CHECKING:
    from tests.sipbed.kamailio import Kamailio

REPO: Final = Path(__file__).resolve().parents[2]
HASS: Final = REPO / ".venv" / "bin" / "hass"
EXTENSIONS: Final = (("2074", ExtensionRole.PAGE), ("2075", ExtensionRole.RING))
NO_CONTACT: Final = 480  # Kamailio: the user exists but has no location
START_LIMIT: Final = 180.0  # a loaded 2-core machine starts Home Assistant slowly
STOP_LIMIT: Final = 150.0  # Home Assistant's own stop stages add up to about that
# What Home Assistant itself logs here, whatever the integrations do: the notice for
# every custom integration, --skip-pip, and this machine's missing optional libraries.
ALLOWED_WARNINGS: Final = tuple(
    re.compile(pattern)
    for pattern in (
        r"\[homeassistant\.loader\] We found a custom integration sip_endpoint ",
        r"\[homeassistant\.bootstrap\] Skipping pip installation",
        r"\[aiohttp_fast_zlib\] zlib_ng and isal are not available",
        r"\[homeassistant\.components\.camera\.img_util\] Error loading libturbojpeg",
    )
)
LOG_LEVEL: Final = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) ")
# Logged when an integration Home Assistant needs (the frontend) failed to load.
RECOVERY_MODE: Final = b"Activating recovery mode"


def _write_config(
    config: Path, kamailio: Kamailio, engine: str, worker_python: Path | None
) -> None:
    http_port = free_tcp_port("127.0.0.1")
    config.mkdir()
    (config / "configuration.yaml").write_text(
        "homeassistant:\n"
        "  name: Stop test\n"
        "  latitude: 0\n"
        "  longitude: 0\n"
        "  elevation: 0\n"
        "  unit_system: metric\n"
        "  time_zone: UTC\n"
        "  country: US\n"
        "  currency: USD\n"
        f"  internal_url: http://127.0.0.1:{http_port}\n"
        "http:\n"
        "  server_host: 127.0.0.1\n"
        f"  server_port: {http_port}\n"
        "logger:\n"
        "  default: info\n"
        "  logs:\n"
        "    custom_components.sip_endpoint: debug\n"
    )
    components = config / "custom_components"
    components.mkdir()
    (components / DOMAIN).symlink_to(REPO / "custom_components" / DOMAIN)
    options: dict[str, object] = {
        CONF_BIND_HOST: "127.0.0.1",
        CONF_PORT_MIN: (first := free_tcp_port("127.0.0.1")),
        CONF_PORT_MAX: min(first + 40, 65535),
        CONF_ENGINE: engine,
    }
    if worker_python is not None:
        options[CONF_WORKER_PYTHON] = str(worker_python)
    now = "2026-11-30T00:00:00+00:00"
    entry = {
        "created_at": now,
        "data": {
            CONF_SERVER: kamailio.host,
            "port": kamailio.port,
            CONF_TRANSPORT: "udp",
        },
        "disabled_by": None,
        "discovery_keys": {},
        "domain": DOMAIN,
        "entry_id": "stoptestentry",
        "minor_version": 1,
        "modified_at": now,
        "options": options,
        "pref_disable_new_entities": False,
        "pref_disable_polling": False,
        "source": "user",
        "subentries": [
            {
                "data": {
                    CONF_ROLE: str(role),
                    CONF_EXTENSION: ext,
                    CONF_AUTH_ID: ext,
                    "password": password_for(ext),
                },
                "subentry_id": f"subentry{ext}",
                "subentry_type": SUBENTRY_TYPE_EXTENSION,
                "title": f"{role} {ext}",
                "unique_id": ext,
            }
            for ext, role in EXTENSIONS
        ],
        "title": "Stop test PBX",
        "unique_id": f"{kamailio.host}:{kamailio.port}",
        "version": 1,
    }
    storage = config / ".storage"
    storage.mkdir()
    (storage / "core.config_entries").write_text(
        json.dumps(
            {
                "version": 1,
                "minor_version": 5,
                "key": "core.config_entries",
                "data": {"entries": [entry]},
            }
        )
    )


def _children(pid: int) -> set[int]:
    """Return the process ids whose parent is ``pid``."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            continue
    return found


def _catches_sigterm(pid: int) -> bool:
    """Return whether ``pid`` handles SIGTERM (Home Assistant does once it runs).

    Home Assistant registers its signal handlers at the end of its start; a SIGTERM
    before that kills it at once (exit -15), which is not the stop under test.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _complaints(log: Path) -> list[str]:
    """Return the log's warnings and errors that Home Assistant itself would not log."""
    if not log.exists():
        return []
    return [
        line
        for line in log.read_text(errors="replace").splitlines()
        if LOG_LEVEL.match(line)
        and not any(allowed.search(line) for allowed in ALLOWED_WARNINGS)
    ]


def _wait_until(
    predicate: object, limit: float, what: str, log: Path | None = None
) -> None:
    """Wait for ``predicate``; a failure shows what Home Assistant complained of.

    ``log`` is Home Assistant's console output: its log file is rotated when recovery
    mode starts Home Assistant over, the console keeps every line.
    """
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        if log is not None and log.exists() and RECOVERY_MODE in log.read_bytes():
            break  # Home Assistant stopped every integration: waiting cannot help
        time.sleep(0.5)
    complaints = "\n".join(_complaints(log)) if log is not None else ""
    pytest.fail(f"timed out waiting for {what}\n{complaints}")


def test_sigterm_stops_home_assistant_cleanly(
    engine: str,
    engine_python: Path,
    kamailio: Kamailio,
    tmp_path: Path,
) -> None:
    """SIGTERM: every extension unregisters, workers exit, no warning is logged."""
    config = tmp_path / "config"
    _write_config(
        config, kamailio, engine, engine_python if engine == "pjsua2" else None
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
    }
    console = (tmp_path / "hass-console.log").open("wb")
    process = subprocess.Popen(
        [str(HASS), "-c", str(config), "--skip-pip"],
        stdin=subprocess.DEVNULL,
        stdout=console,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    log = config / "home-assistant.log"
    console_log = tmp_path / "hass-console.log"
    try:
        _wait_until(
            lambda: (
                process.poll() is not None
                or all(
                    options_for_user(kamailio.host, kamailio.port, ext, timeout=12)
                    != NO_CONTACT
                    for ext, _ in EXTENSIONS
                )
            ),
            START_LIMIT,
            "both extensions to register",
            console_log,
        )
        assert process.poll() is None, console_log.read_text()
        _wait_until(
            lambda: _catches_sigterm(process.pid),
            START_LIMIT,
            "Home Assistant to run",
            console_log,
        )
        workers = _children(process.pid)
        assert workers, "no worker process was started"
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(STOP_LIMIT)
        stopped_in = time.monotonic() - stopping
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        console.close()
    print(  # noqa: T201 - the figure for docs/reliability.md
        f"\n{engine}: Home Assistant stopped {stopped_in:.1f} s after SIGTERM"
        f" (exit status {process.returncode})"
    )
    assert process.returncode == 0
    assert not [pid for pid in workers if _alive(pid)]
    # Each extension said Expires: 0: Kamailio has no contact left (480 at once).
    assert [
        options_for_user(kamailio.host, kamailio.port, ext, timeout=12)
        for ext, _ in EXTENSIONS
    ] == [NO_CONTACT] * len(EXTENSIONS)
    text = log.read_text(errors="replace")
    assert "SIP worker" in text  # the debug log of the integration is there
    assert "could not be canceled" not in text
    complaints = _complaints(log)
    assert not complaints, "\n".join(complaints)
