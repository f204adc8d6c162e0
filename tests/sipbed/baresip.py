"""A real baresip user agent for tests, driven over its ``ctrl_tcp`` socket.

Works with baresip 1.0.0 (Debian bookworm) and 1.1.0 (Debian forky); where they differ
(the registration failure's log line, ``resume``'s result) the methods say so. Both
speak JSON netstrings on the control socket: commands ``{"command": ..., "params": ..., "token": ...}`` get a response with the same
token, and events (``CALL_INCOMING``, ``CALL_RINGING``, ``CALL_ESTABLISHED``,
``CALL_CLOSED``, ``REGISTER_OK``, ``REGISTER_FAIL``, ``CALL_DTMF_START``...) arrive
unsolicited. Audio is sent from a WAV file (``aufile``; the call ends when the file ends)
and what is received is written by ``sndfile`` to ``dump-<time>-dec.wav``.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from .audio import write_tone
from .netutil import free_port, free_tcp_port

if TYPE_CHECKING:
    from collections.abc import Callable

    from .netns import NetworkNamespace


class Registrar(Protocol):
    """Where the account registers (a Kamailio or any host:port)."""

    @property
    def host(self) -> str:
        """The registrar's IP address."""

    @property
    def port(self) -> int:
        """The registrar's port (UDP and TCP)."""


CTRL_HOST: Final = "127.0.0.1"
MODULE_DIR: Final = Path("/usr/lib/baresip/modules")
SOUNDS_DIR: Final = Path("/usr/share/baresip")
DEFAULT_TONE_HZ: Final = 1000.0
DEFAULT_TONE_SECONDS: Final = 120.0
CONNECT_TIMEOUT: Final = 10.0
START_ATTEMPTS: Final = 3
COMMAND_TIMEOUT: Final = 5.0
STOP_TIMEOUT: Final = 5.0
_REGISTERED_RE: Final = re.compile(r"\bOK\b")
_ANSI_RE: Final = re.compile(r"\x1b\[[0-9;]*m")
# baresip's console line for a failed registration: "reg: <aor>: 403 Forbidden (server)"
# (1.0) or "reg: <aor> (prio 0): 403 Forbidden (server)" (1.1). A failure that comes
# before the control socket is connected is only in the log: ctrl_tcp drops its event.
_REG_FAIL_RE: Final = re.compile(
    r"reg: \S+(?: \(prio \d+\))?: ([1-6]\d\d [^(\r\n\x1b]*)"
)
# One call in the ``listcalls`` output (1.1): "[line 1, id <Call-ID>]  0:00:01 ...".
_LISTED_CALL_RE: Final = re.compile(r"\[line \d+, id ([^\]\s]+)\]")
# The first line baresip prints, e.g. "baresip v1.1.0 Copyright (C) ...".
_VERSION_RE: Final = re.compile(r"^baresip v(\d+)\.(\d+)\.(\d+)", re.MULTILINE)

Transport = Literal["udp", "tcp"]


class BaresipError(RuntimeError):
    """baresip failed, answered an error, or an expected event did not come."""


class BaresipFactory(Protocol):
    """The ``baresip_factory`` fixture: returns a started Baresip."""

    def __call__(
        self,
        *,
        user: str,
        password: str | None,
        registrar: Registrar | None,
        bind_host: str = "127.0.0.1",
        audio_file: Path | None = None,
        register: bool = True,
        transport: Transport = "udp",
        netns: NetworkNamespace | None = None,
    ) -> Baresip:
        """Start a baresip in its own work directory."""


def _netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b":" + payload + b","


def _wav_complete(path: Path) -> bool:
    """Return whether a WAV file's RIFF header matches its size (writer closed it)."""
    try:
        data = path.read_bytes()[:8]
        size = path.stat().st_size
    except OSError:
        return False
    return (
        len(data) == 8
        and data[:4] == b"RIFF"
        and int.from_bytes(data[4:8], "little") == size - 8
    )


class Baresip:
    """One baresip process with one account, controlled over TCP."""

    def __init__(
        self,
        workdir: Path,
        *,
        user: str,
        password: str | None,
        registrar: Registrar | None,
        bind_host: str = "127.0.0.1",
        audio_file: Path | None = None,
        register: bool = True,
        transport: Transport = "udp",
        netns: NetworkNamespace | None = None,
    ) -> None:
        """Prepare (but do not start) a baresip in ``workdir``.

        Without ``audio_file`` it sends a 1 kHz tone for up to two minutes. With
        ``netns`` it runs inside that network namespace (see tests.sipbed.netns).
        """
        self.netns = netns
        self.workdir = Path(workdir)
        self.user = user
        self.bind_host = bind_host
        self.registrar = registrar
        self.register = register and registrar is not None
        self.transport: Transport = transport
        self.audio_file = audio_file
        with self._in_namespace():
            self.sip_port = free_port(bind_host)
            # The control socket stays on 127.0.0.1 (the only host tests may connect to).
            self.ctrl_port = free_tcp_port(CTRL_HOST)
        self.events: list[dict[str, Any]] = []
        self._password = password
        self._process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._responses: dict[str, dict[str, Any]] = {}
        self._call_mark = 0
        self._incoming_mark = 0
        self._short_dir: Path | None = None
        self._started_once = False
        self._log_offset = 0

    def __repr__(self) -> str:
        """Describe the instance without its password."""
        return f"<Baresip {self.user}@{self.bind_host}:{self.sip_port}>"

    def _in_namespace(self) -> contextlib.AbstractContextManager[None]:
        """Enter baresip's network namespace, if it has one."""
        return self.netns.entered() if self.netns else contextlib.nullcontext()

    @property
    def aor(self) -> str:
        """The account's address of record."""
        if self.registrar is not None:
            return f"sip:{self.user}@{self.registrar.host}:{self.registrar.port}"
        return f"sip:{self.user}@{self.bind_host}:{self.sip_port}"

    @property
    def log_path(self) -> Path:
        """Baresip's console output, including a SIP trace."""
        return self.workdir / "baresip.log"

    @property
    def recordings_dir(self) -> Path:
        """Where ``sndfile`` writes the audio of each call."""
        return self.workdir / "recordings"

    @property
    def recording(self) -> Path | None:
        """The WAV file of what was received in the latest call, if any."""
        files = sorted(self.recordings_dir.glob("dump-*-dec.wav"))
        if not files and any(self.recordings_dir.glob("dump-*-dec")):
            raise BaresipError("sndfile truncated the recording's name (path too long)")
        return files[-1] if files else None

    @property
    def running(self) -> bool:
        """Whether the baresip process is alive."""
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """Return the end of baresip's output."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _short_recordings_path(self) -> Path:
        """Return a short path to the recordings directory.

        baresip 1.0's sndfile builds file names in a 128-byte buffer and silently cuts
        longer ones (losing ".wav"), so it gets a short symlink to the real directory.
        """
        if self._short_dir is None:
            self._short_dir = Path(tempfile.mkdtemp(prefix="bs-"))
            (self._short_dir / "r").symlink_to(self.recordings_dir)
        return self._short_dir / "r"

    def _write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.recordings_dir.mkdir(exist_ok=True)
        audio_file = self.audio_file
        if audio_file is None:
            audio_file = write_tone(
                self.workdir / "default-tone.wav", DEFAULT_TONE_HZ, DEFAULT_TONE_SECONDS
            )
        config = f"""\
poll_method epoll
sip_listen {self.bind_host}:{self.sip_port}
dns_server 127.0.0.1:53
audio_path {SOUNDS_DIR}
audio_player aubridge,player
audio_alert aubridge,alert
audio_source aufile,{audio_file}
ausrc_srate 8000
auplay_srate 8000
ausrc_channels 1
auplay_channels 1
module_path {MODULE_DIR}
module g711.so
module aufile.so
module aubridge.so
module sndfile.so
module ctrl_tcp.so
module_app account.so
module_app menu.so
ctrl_tcp_listen {CTRL_HOST}:{self.ctrl_port}
snd_path {self._short_recordings_path()}
"""
        (self.workdir / "config").write_text(config)
        if self.registrar is not None:
            account_uri = (
                f"<sip:{self.user}@{self.registrar.host}:{self.registrar.port};"
                f"transport={self.transport}>"
            )
        else:
            account_uri = f"<sip:{self.user}@{self.bind_host}:{self.sip_port}>"
        params = [
            f"regint={60 if self.register else 0}",
            "answermode=manual",
            "audio_codecs=PCMU,PCMA",
        ]
        if self._password is not None:
            params.insert(0, f"auth_pass={self._password}")
        accounts = self.workdir / "accounts"
        accounts.write_text(account_uri + ";" + ";".join(params) + "\n")
        accounts.chmod(0o600)
        (self.workdir / "contacts").write_text("")

    def start(self) -> None:
        """Write the configuration, start baresip and connect to its control socket.

        If it fails the first time (another test may have taken a port we picked),
        it is retried on new ports.
        """
        if self.running:
            return
        for _ in range(START_ATTEMPTS - 1):
            if self._started_once:
                break
            try:
                self._start_once()
            except BaresipError:
                with self._in_namespace():
                    self.sip_port = free_port(self.bind_host)
                    self.ctrl_port = free_tcp_port(CTRL_HOST)
            else:
                break
        if not self.running:
            self._start_once()
        self._started_once = True

    def _start_once(self) -> None:
        self._write_config()
        command = ["baresip", "-4", "-s", "-n", self.bind_host, "-f", str(self.workdir)]
        if self.netns is not None:
            command = self.netns.command(*command)
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._connect()
        except BaseException:
            self.stop()
            raise

    def _log_since_start(self) -> str:
        """Return what the current process wrote to the (appended) log."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def _wait_ready_line(self, deadline: float) -> None:
        """Wait for "baresip is ready." in our own log; fail if ctrl_tcp did not load.

        Without this a control port taken by another process would connect us to it.
        """
        while True:
            if self._process is None or self._process.poll() is not None:
                raise BaresipError(f"baresip exited during start:\n{self.log_tail()}")
            text = self._log_since_start()
            if "module ctrl_tcp.so:" in text:
                raise BaresipError(f"ctrl_tcp did not start:\n{self.log_tail()}")
            if "baresip is ready." in text:
                return
            if time.monotonic() > deadline:
                raise BaresipError(f"baresip did not get ready:\n{self.log_tail()}")
            time.sleep(0.02)

    def _connect(self) -> None:
        deadline = time.monotonic() + CONNECT_TIMEOUT
        self._wait_ready_line(deadline)
        while True:
            if self._process is None or self._process.poll() is not None:
                raise BaresipError(f"baresip exited during start:\n{self.log_tail()}")
            try:
                with self._in_namespace():
                    self._sock = socket.create_connection(
                        (CTRL_HOST, self.ctrl_port), timeout=0.5
                    )
            except OSError:
                if time.monotonic() > deadline:
                    raise BaresipError(
                        f"baresip control socket did not open:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.05)
            else:
                return

    def stop(self) -> None:
        """Stop baresip by pid (SIGTERM, then SIGKILL); safe to call more than once."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT)
        if self._short_dir is not None:
            shutil.rmtree(self._short_dir, ignore_errors=True)
            self._short_dir = None

    # Control socket -------------------------------------------------------

    def _receive(self, timeout: float) -> None:
        """Read what arrived within ``timeout`` and sort it into events/responses."""
        if self._sock is None:
            raise BaresipError("baresip is not started")
        self._sock.settimeout(max(timeout, 0.001))
        try:
            chunk = self._sock.recv(65536)
        except TimeoutError:
            return
        if not chunk:
            raise BaresipError(f"baresip closed its control socket:\n{self.log_tail()}")
        self._buffer += chunk
        while True:
            length, colon, rest = self._buffer.partition(b":")
            if not colon or not length.isdigit():
                return
            size = int(length)
            if len(rest) < size + 1:
                return
            message = json.loads(rest[:size])
            self._buffer = rest[size + 1 :]
            if message.get("event"):
                self.events.append(message)
            elif "token" in message:
                self._responses[message["token"]] = message

    def command(self, name: str, params: str = "") -> str:
        """Run a baresip command; return its text output or raise on error."""
        if self._sock is None:
            raise BaresipError("baresip is not started")
        token = secrets.token_hex(4)
        payload = json.dumps({"command": name, "params": params, "token": token})
        self._sock.sendall(_netstring(payload.encode()))
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while token not in self._responses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BaresipError(f"no response to {name!r}:\n{self.log_tail()}")
            self._receive(remaining)
        response = self._responses.pop(token)
        data = _ANSI_RE.sub("", str(response.get("data", "")))
        if not response.get("ok"):
            raise BaresipError(f"{name!r} failed: {data}")
        return data

    def _wait_event(
        self,
        wanted: set[str],
        *,
        since: int,
        timeout: float,
        fail_on: set[str] | None = None,
        idle: Callable[[], bool] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Wait for an event of a ``wanted`` type at index >= ``since``."""
        deadline = time.monotonic() + timeout
        checked = since
        while True:
            for index in range(checked, len(self.events)):
                event = self.events[index]
                if event.get("type") in wanted:
                    return index, event
                if fail_on and event.get("type") in fail_on:
                    raise BaresipError(
                        f"{self.user}: got {event.get('type')} "
                        f"({event.get('param', '')}) while waiting for {sorted(wanted)}"
                    )
            checked = len(self.events)
            if idle is not None and idle():
                return -1, {}
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BaresipError(
                    f"{self.user}: no {sorted(wanted)} within {timeout} s; events: "
                    f"{[event.get('type') for event in self.events[since:]]}\n"
                    f"{self.log_tail()}"
                )
            self._receive(min(remaining, 0.2))

    # Registration ---------------------------------------------------------

    def registration_info(self) -> str:
        """Return baresip's ``reginfo`` text (without colours)."""
        return self.command("reginfo")

    def _logged_registration_failure(self) -> str | None:
        """Return the reason of a failed registration printed before we connected."""
        text = self._log_since_start()
        match = _REG_FAIL_RE.search(text)
        return match.group(1).strip() if match else None

    def wait_registered(self, timeout: float = 10) -> None:
        """Wait until the account is registered (or raise with the failure)."""

        def registered() -> bool:
            if _REGISTERED_RE.search(self.registration_info()):
                return True
            failure = self._logged_registration_failure()
            if failure is not None:
                raise BaresipError(f"{self.user}: registration failed: {failure}")
            return False

        self._wait_event(
            {"REGISTER_OK"},
            since=0,
            timeout=timeout,
            fail_on={"REGISTER_FAIL"},
            idle=registered,
        )

    def wait_register_failed(self, timeout: float = 10) -> str:
        """Wait for a failed registration; return baresip's reason (e.g. "403 Forbidden")."""
        logged: list[str] = []

        def failed_before_connect() -> bool:
            failure = self._logged_registration_failure()
            if failure is not None:
                logged.append(failure)
            return bool(logged)

        _, event = self._wait_event(
            {"REGISTER_FAIL"}, since=0, timeout=timeout, idle=failed_before_connect
        )
        return logged[0] if logged else str(event.get("param", ""))

    # Calls ----------------------------------------------------------------

    def dial(self, uri: str) -> None:
        """Call ``uri``; a bare extension is sent through the registrar."""
        if not uri.startswith(("sip:", "sips:")):
            if self.registrar is None:
                raise BaresipError("dial a full SIP URI when there is no registrar")
            uri = f"sip:{uri}@{self.registrar.host}:{self.registrar.port}"
        self._receive(0.001)
        self._call_mark = len(self.events)
        self.command("dial", uri)

    def wait_ringing(self, timeout: float = 10) -> None:
        """Wait until the outgoing call gets a ringing (180) response."""
        self._wait_event(
            {"CALL_RINGING"},
            since=self._call_mark,
            timeout=timeout,
            fail_on={"CALL_CLOSED"},
        )

    def wait_established(self, timeout: float = 10) -> None:
        """Wait until the current call is answered."""
        self._wait_event(
            {"CALL_ESTABLISHED"},
            since=self._call_mark,
            timeout=timeout,
            fail_on={"CALL_CLOSED"},
        )

    def wait_closed(self, timeout: float = 10) -> str:
        """Wait until the current call ends; return baresip's reason text.

        The reason is the SIP status for rejected calls (e.g. "404 Not Found"), the
        text of a received BYE ("Connection reset by user") or "end of file" when the
        audio file ended. Also waits until the recording's header is written.
        """
        _, event = self._wait_event(
            {"CALL_CLOSED"}, since=self._call_mark, timeout=timeout
        )
        recording = self.recording
        if recording is not None:
            deadline = time.monotonic() + 2
            while not _wav_complete(recording) and time.monotonic() < deadline:
                time.sleep(0.05)
        return str(event.get("param", ""))

    def wait_incoming(self, timeout: float = 10) -> str:
        """Wait for a new incoming call; return the caller's URI."""
        index, event = self._wait_event(
            {"CALL_INCOMING"}, since=self._incoming_mark, timeout=timeout
        )
        self._incoming_mark = index + 1
        self._call_mark = index
        return str(event.get("peeruri", ""))

    def accept(self) -> None:
        """Answer the incoming call."""
        self.command("accept")

    def send_dtmf(self, digits: str) -> None:
        """Send DTMF digits (RTP telephone events) in the current call."""
        for digit in digits:
            if digit not in "0123456789*#ABCD":
                raise ValueError(f"not a DTMF digit: {digit!r}")
            self.command("sndcode", digit)

    def _current_call_id(self) -> str | None:
        """Return the SIP Call-ID of the current call, from ``listcalls`` and events.

        The latest call event since the call began names it once the call has an id
        (not yet at ``CALL_LOCAL_SDP``, the dial's own event); otherwise the last call
        ``listcalls`` shows ("[line 1, id <Call-ID>] ...").
        """
        listed = _LISTED_CALL_RE.findall(self.command("listcalls"))
        for event in reversed(self.events[self._call_mark :]):
            if event.get("type") != "CALL_CLOSED" and event.get("id") in listed:
                return str(event["id"])
        return listed[-1] if listed else None

    def hangup(self) -> None:
        """Hang up the current call (CANCEL while it rings out, else BYE or a reject).

        baresip 1.1's ``hangup`` without a call id ends the menu's "current" call,
        which an outgoing call only becomes at a 180 or 183 (a hangup right after
        the dial answered "no active call"), so 1.1 gets the call's id. 1.0 ends the
        user agent's call and takes no id.
        """
        call_id = self._current_call_id() if self.version >= (1, 1, 0) else None
        self.command("hangup", call_id or "")

    @property
    def version(self) -> tuple[int, int, int]:
        """Return the running baresip's version, from its banner line."""
        match = _VERSION_RE.search(self._log_since_start())
        if match is None:
            raise BaresipError(
                f"no version banner in baresip's log:\n{self.log_tail()}"
            )
        major, minor, patch = (int(part) for part in match.groups())
        return major, minor, patch

    def hold(self) -> None:
        """Put the current call on hold (a re-INVITE with a sendonly offer)."""
        self.command("hold")

    def resume(self) -> None:
        """Take the current call off hold (a re-INVITE with a sendrecv offer).

        baresip 1.1.0's ``resume`` (uag_hold_resume) first holds "the other active
        call" and, when there is none, returns that call_hold(NULL) error, EINVAL
        ("Invalid argument"), after it has resumed ours; later releases check for the
        other call first. Only that error from exactly 1.1.0 is not a failure; the
        re-INVITE itself is for the caller to check (the SIP trace in the log).
        """
        try:
            self.command("resume")
        except BaresipError as err:
            if self.version != (1, 1, 0) or "Invalid argument" not in str(err):
                raise

    def received_dtmf(self) -> str:
        """Return the DTMF digits received so far (all calls)."""
        self._receive(0.001)
        return "".join(
            str(event.get("param", ""))
            for event in self.events
            if event.get("type") == "CALL_DTMF_START"
        )


def stop_all(instances: list[Baresip]) -> None:
    """Stop every instance, even if one of them fails to stop."""
    for instance in instances:
        with contextlib.suppress(OSError):
            instance.stop()
