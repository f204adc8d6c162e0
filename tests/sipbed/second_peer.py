"""A second real SIP user agent for tests: SIPp as a scripted caller (UAC).

``SippCaller(workdir, user=..., password=..., registrar=kamailio).call("2001")``
places one call through the registrar: INVITE with a PCMU offer (answering a 401 or
407 with digest when challenged), ACK, holds the call for ``hold`` seconds, BYE, and
reports the codes it got (``CallResult``). ``start_call`` returns a running
``SippCall`` for tests that must act (accept on the callee) while the call is set up.

SIPp runs without a terminal (``-nostdin``), bounded by its own global timeout and by
ours; a SIPp that outlives either is ended by its process group id, which this module
created. Debian installs SIPp with the package ``sip-tester`` (``/usr/bin/sipp``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
import os
from pathlib import Path
import re
import shutil
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Final, Literal
from xml.sax.saxutils import escape

from .netutil import free_port

if TYPE_CHECKING:
    from .baresip import Registrar

SECOND_PEER_PACKAGES: Final = ("sip-tester",)
SIPP_BINARY: Final = "sipp"
STOP_TIMEOUT: Final = 5.0
DEFAULT_TIMEOUT: Final = 30.0
Transport = Literal["udp", "tcp"]

_ENTRY_RE: Final = re.compile(r"^-{10,}[^\n]*\n", re.MULTILINE)
_STATUS_LINE_RE: Final = re.compile(r"SIP/2\.0 (\d{3}) ")
_CSEQ_RE: Final = re.compile(r"^CSeq:\s*\d+\s+(\w+)", re.MULTILINE | re.IGNORECASE)

_PROVISIONAL = """\
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
"""

# The INVITE, sent first plain, then (challenged) with CSeq 2 and credentials.
_INVITE: Final = """\
  <send retrans="500">
    <![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: <sip:@USER@@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: @CSEQ@ INVITE
Contact: <sip:@USER@@[local_ip]:[local_port];transport=[transport]>
@AUTH@Max-Forwards: 70
User-Agent: SIPp sip-endpoint-testbed
Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 53655765 @SDP_VERSION@ IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
    ]]>
  </send>
"""

_SCENARIO: Final = """\
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="sip-endpoint test bed call">
@FIRST_INVITE@@PROVISIONAL@  <recv response="401" optional="true" auth="true" next="challenged"/>
  <recv response="407" optional="true" auth="true" next="challenged"/>
  <recv response="200" rtd="true" rrs="true" next="answered"/>
  <label id="challenged"/>
  <send>
    <![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
[last_From:]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
@SECOND_INVITE@@PROVISIONAL@  <recv response="200" rtd="true" rrs="true"/>
  <label id="answered"/>
  <send>
    <![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
[routes]
[last_From:]
[last_To:]
Call-ID: [call_id]
CSeq: [last_cseq_number] ACK
Contact: <sip:@USER@@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="@HOLD_MS@"/>
  <send retrans="500">
    <![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
[routes]
[last_From:]
[last_To:]
Call-ID: [call_id]
CSeq: 3 BYE
Contact: <sip:@USER@@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""


class SippError(RuntimeError):
    """SIPp is missing or could not be started."""


def sipp_binary() -> str:
    """Return the SIPp executable (raise if it is not installed)."""
    found = shutil.which(SIPP_BINARY)
    if found is None:
        raise SippError(
            "sipp not found: install the Debian package "
            + " ".join(SECOND_PEER_PACKAGES)
        )
    return found


def _invite(*, cseq: int, sdp_version: str, auth: str) -> str:
    """Return the scenario's INVITE step with its CSeq, SDP version and credentials."""
    return (
        _INVITE.replace("@CSEQ@", str(cseq))
        .replace("@SDP_VERSION@", sdp_version)
        .replace("@AUTH@", auth)
    )


def render_scenario(*, user: str, hold: float) -> str:
    """Return the UAC scenario XML calling as ``user`` and holding ``hold`` seconds."""
    if not re.fullmatch(r"[A-Za-z0-9_.+-]{1,64}", user):
        raise ValueError(f"unsupported user name for the test bed: {user!r}")
    first = _invite(cseq=1, sdp_version="2353687637", auth="")
    second = _invite(cseq=2, sdp_version="2353687638", auth="[authentication]\n")
    return (
        _SCENARIO.replace("@FIRST_INVITE@", first)
        .replace("@SECOND_INVITE@", second)
        .replace("@PROVISIONAL@", _PROVISIONAL)
        .replace("@USER@", escape(user))
        .replace("@HOLD_MS@", str(max(0, round(hold * 1000))))
    )


@dataclass
class CallResult:
    """What one SIPp call saw."""

    returncode: int
    invite_codes: list[int] = field(default_factory=list)
    bye_code: int | None = None
    messages: str = ""
    errors: str = ""

    @property
    def final_code(self) -> int | None:
        """The last final response to an INVITE (after any challenge)."""
        finals = [code for code in self.invite_codes if code >= 200]
        return finals[-1] if finals else None

    @property
    def completed(self) -> bool:
        """Whether SIPp ran the whole scenario: answered, held and hung up."""
        return self.returncode == 0 and self.final_code == 200 and self.bye_code == 200


def parse_message_log(text: str) -> tuple[list[int], int | None]:
    """Return the INVITE response codes and the BYE response code in a SIPp log.

    The log (``-trace_msg``) is a sequence of entries, each a dashed line with a
    time stamp, a line saying what happened ("UDP message received [452] bytes :")
    and the message.
    """
    invite_codes: list[int] = []
    bye_code: int | None = None
    for entry in _ENTRY_RE.split(text):
        description, _, message = entry.partition("\n")
        if "received" not in description:
            continue
        message = message.lstrip("\r\n")
        status = _STATUS_LINE_RE.match(message)
        cseq = _CSEQ_RE.search(message)
        if status is None or cseq is None:
            continue
        method = cseq.group(1).upper()
        if method == "INVITE":
            invite_codes.append(int(status.group(1)))
        elif method == "BYE":
            bye_code = int(status.group(1))
    return invite_codes, bye_code


class SippCall:
    """One running SIPp process placing one call."""

    def __init__(
        self, process: subprocess.Popen[bytes], workdir: Path, limit: float
    ) -> None:
        """Track ``process`` (started in its own session) until ``limit`` seconds."""
        self._process = process
        self._workdir = workdir
        self._deadline = time.monotonic() + limit

    @property
    def pid(self) -> int:
        """SIPp's process id (also its process group id)."""
        return self._process.pid

    def running(self) -> bool:
        """Whether SIPp is still running."""
        return self._process.poll() is None

    def wait(self) -> CallResult:
        """Wait for SIPp to finish (ending it at the deadline); return the result."""
        remaining = max(0.1, self._deadline - time.monotonic())
        try:
            returncode = self._process.wait(remaining)
        except subprocess.TimeoutExpired:
            self.stop()
            returncode = self._process.wait(STOP_TIMEOUT)
        return self._result(returncode)

    def stop(self) -> None:
        """End SIPp: SIGTERM to its group, then SIGKILL; safe to call twice."""
        if self._process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(STOP_TIMEOUT)

    def _read(self, name: str) -> str:
        path = self._workdir / name
        return path.read_text(errors="replace") if path.exists() else ""

    def _result(self, returncode: int) -> CallResult:
        messages = self._read("messages.log")
        invite_codes, bye_code = parse_message_log(messages)
        return CallResult(
            returncode=returncode,
            invite_codes=invite_codes,
            bye_code=bye_code,
            messages=messages,
            errors=self._read("errors.log") + self._read("sipp.out")[-2000:],
        )


class SippCaller:
    """Places calls with SIPp as ``user`` through ``registrar`` (e.g. the Kamailio)."""

    def __init__(
        self,
        workdir: Path,
        *,
        user: str,
        password: str | None,
        registrar: Registrar,
        bind_host: str = "127.0.0.1",
        transport: Transport = "udp",
    ) -> None:
        """Prepare a caller; nothing runs until ``call`` or ``start_call``."""
        self.workdir = Path(workdir)
        self.user = user
        self._password = password
        self.registrar = registrar
        self.bind_host = bind_host
        self.transport: Transport = transport
        self._calls = 0
        self._running: list[SippCall] = []

    def __repr__(self) -> str:
        """Describe the caller without its password."""
        return (
            f"<SippCaller {self.user} -> {self.registrar.host}:{self.registrar.port}>"
        )

    def start_call(
        self, extension: str, *, hold: float = 1.0, timeout: float = DEFAULT_TIMEOUT
    ) -> SippCall:
        """Start SIPp calling ``extension``; return the running call."""
        binary = sipp_binary()
        self._calls += 1
        workdir = self.workdir / f"call-{self._calls}"
        workdir.mkdir(parents=True, exist_ok=True)
        scenario = workdir / "uac.xml"
        scenario.write_text(render_scenario(user=self.user, hold=hold))
        sip_port = free_port(self.bind_host)
        media_port = free_port(self.bind_host)
        command = [
            binary,
            f"{self.registrar.host}:{self.registrar.port}",
            "-sf", str(scenario),
            "-s", extension,
            "-i", self.bind_host,
            "-p", str(sip_port),
            "-mi", self.bind_host,
            "-mp", str(media_port),
            "-t", "u1" if self.transport == "udp" else "t1",
            "-m", "1",
            "-l", "1",
            "-nostdin",
            "-timeout", f"{max(1, round(timeout))}s",
            "-timeout_error",
            "-recv_timeout", str(max(1000, round(timeout * 1000))),
            "-trace_msg", "-message_file", str(workdir / "messages.log"),
            "-trace_err", "-error_file", str(workdir / "errors.log"),
            "-au", self.user,
        ]  # fmt: skip
        if self._password is not None:
            command += ["-ap", self._password]
        with (workdir / "sipp.out").open("wb") as out:
            process = subprocess.Popen(
                command,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        call = SippCall(process, workdir, timeout + STOP_TIMEOUT)
        self._running.append(call)
        return call

    def call(
        self, extension: str, *, hold: float = 1.0, timeout: float = DEFAULT_TIMEOUT
    ) -> CallResult:
        """Call ``extension``, hold ``hold`` seconds, hang up; return the result."""
        return self.start_call(extension, hold=hold, timeout=timeout).wait()

    def stop(self) -> None:
        """End every SIPp this caller started that is still running."""
        for call in self._running:
            call.stop()
        self._running.clear()
