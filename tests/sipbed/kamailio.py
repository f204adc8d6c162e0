"""A real Kamailio registrar and proxy for tests, on loopback.

The generated configuration answers REGISTER with a digest challenge, checks the
credentials against passwords given by the test, keeps locations in memory and routes
INVITE and other requests to registered contacts. Run standalone with
``python -m tests.sipbed.kamailio --demo``.
"""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass
import os
from pathlib import Path
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Final, Literal, Protocol

from .netutil import free_port, free_tcp_port, parse_status_code, sip_options
from .tls import ServerCertificate, make_certificates

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .netns import NetworkNamespace

WrongPasswordPolicy = Literal["rechallenge", "forbidden"]
UnknownUserPolicy = Literal["forbidden", "not_found"]
DigestAlgorithm = Literal["MD5", "SHA-256"]
ChallengeKind = Literal["www", "proxy"]

MODULE_DIRS: Final = (
    Path("/usr/lib/x86_64-linux-gnu/kamailio/modules"),
    Path("/usr/lib/aarch64-linux-gnu/kamailio/modules"),
    Path("/usr/lib/kamailio/modules"),
    Path("/usr/local/lib64/kamailio/modules"),
    Path("/usr/local/lib/kamailio/modules"),
)
START_TIMEOUT: Final = 10.0
START_ATTEMPTS: Final = 3
STOP_TIMEOUT: Final = 5.0
_USER_RE: Final = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")

DEMO_USERS: Final[Mapping[str, str]] = {
    **{str(ext): f"demo-{ext}" for ext in range(100, 110)},
    "200": "demo-200",
    "201": "demo-201",
}


class KamailioError(RuntimeError):
    """Kamailio could not be started or did not answer."""


@dataclass(frozen=True, slots=True)
class AuthOptions:
    """How the test-bed Kamailio challenges (the defaults are its historic behaviour).

    - ``qop``: challenges carry ``qop="auth"`` (www/proxy_challenge flag 1).
    - ``algorithm``: the auth module's ``algorithm`` parameter: ``"SHA-256"`` makes
      every challenge and check SHA-256 (Kamailio 5.6 and later: ``MD5`` or
      ``SHA-256`` only, one per instance); None leaves it out (MD5, no parameter).
    - ``register_challenge``: ``"proxy"`` answers REGISTER with 407 and checks
      Proxy-Authorization, as a proxy in front of the registrar would.
    - ``invite_challenge``: initial INVITEs must authenticate with 407 (the caller
      is the user in From; its password is that user's).
    - ``nonce_expire``: nonce lifetime in seconds (Kamailio's default is 300); set,
      an expired nonce is challenged again with ``stale=true`` (challenge flag 16;
      Kamailio 5.6 does not add it by itself).
    """

    qop: bool = False
    algorithm: DigestAlgorithm | None = None
    register_challenge: ChallengeKind = "www"
    invite_challenge: bool = False
    nonce_expire: int | None = None

    @property
    def flags(self) -> str:
        """The challenge functions' flags parameter."""
        return "1" if self.qop else "0"

    @property
    def stale_flags(self) -> str:
        """The flags for a challenge after an expired nonce (adds stale=true)."""
        return str(int(self.flags) | 16)

    def module_params(self) -> str:
        """Return the auth module's parameters (empty for the defaults)."""
        lines = []
        if self.algorithm is not None:
            lines.append(f'modparam("auth", "algorithm", "{self.algorithm}")\n')
        if self.nonce_expire is not None:
            lines.append(
                f'modparam("auth", "nonce_expire", {int(self.nonce_expire)})\n'
            )
        return "".join(lines)


DEFAULT_AUTH: Final = AuthOptions()


def find_module_dir() -> Path:
    """Return the directory holding Kamailio's modules."""
    for candidate in MODULE_DIRS:
        if (candidate / "registrar.so").is_file():
            return candidate
    raise KamailioError(
        "Kamailio modules not found (install the Debian package 'kamailio')"
    )


def _quote(value: str) -> str:
    """Quote a value as a Kamailio configuration string literal."""
    if any(ord(char) < 0x20 for char in value):
        raise ValueError("control characters are not allowed in the test bed")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _log_tail(path: Path, lines: int = 40) -> str:
    """Return the last lines of a log file (or a note that there is none)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def render_config(
    *,
    host: str,
    port: int,
    users: Mapping[str, str],
    module_dir: Path,
    wrong_password: WrongPasswordPolicy,
    unknown_user: UnknownUserPolicy,
    instance: str = "",
    tls_port: int | None = None,
    tls_config: Path | None = None,
    auth: AuthOptions = DEFAULT_AUTH,
) -> str:
    """Return the Kamailio configuration for the test bed.

    ``instance`` goes into the Server header, so a probe can tell this Kamailio from
    another one that happens to answer on the same port.
    """
    for user in users:
        if not _USER_RE.match(user):
            raise ValueError(f"unsupported user name for the test bed: {user!r}")
    user_lines = "\n".join(
        f"    $sht(users=>{user}) = {_quote(password)};"
        for user, password in users.items()
    )
    register_challenge_function = f"{auth.register_challenge}_challenge"
    register_challenge = f'{register_challenge_function}("$td", "{auth.flags}")'
    register_credentials = (
        ("Authorization", "$au", "pv_www_authenticate")
        if auth.register_challenge == "www"
        # $au reads Authorization on REGISTER, so a 407 round looks the password up
        # by the To user: pv_proxy_authenticate then checks the header's user.
        else ("Proxy-Authorization", "$tU", "pv_proxy_authenticate")
    )
    wrong_password_reply = (
        'send_reply("403", "Forbidden"); exit;'
        if wrong_password == "forbidden"
        else f"{register_challenge}; exit;"
    )
    register_identity_check = (
        """    if ($au != $tU) {
        xlog("L_INFO", "REGISTER for $tU rejected: authenticated as another user\\n");
        send_reply("403", "Forbidden");
        exit;
    }
"""
        if auth.register_challenge == "www"
        else ""
    )
    invite_wrong_password_reply = (
        'send_reply("403", "Forbidden"); exit;'
        if wrong_password == "forbidden"
        else f'proxy_challenge("$fd", "{auth.flags}"); exit;'
    )
    unknown_user_reply = (
        'send_reply("404", "Not Found");'
        if unknown_user == "not_found"
        else 'send_reply("403", "Forbidden");'
    )
    invite_auth_call = ""
    invite_auth_route = ""
    register_stale = invite_stale = ""
    if auth.nonce_expire is not None:
        # -4: the nonce expired; flag 16 adds stale=true (not set by itself in 5.6).
        register_stale = (
            f"    if ($var(auth) == -4) {{\n"
            f'        {register_challenge_function}("$td", "{auth.stale_flags}");\n'
            f"        exit;\n    }}\n"
        )
        invite_stale = (
            f"    if ($var(auth) == -4) {{\n"
            f'        proxy_challenge("$fd", "{auth.stale_flags}");\n'
            f"        exit;\n    }}\n"
        )
    if auth.invite_challenge:
        invite_auth_call = (
            '    if (is_method("INVITE")) {\n        route(PROXYAUTH);\n    }\n'
        )
        invite_auth_route = f"""route[PROXYAUTH] {{
    if (!is_present_hf("Proxy-Authorization")) {{
        proxy_challenge("$fd", "{auth.flags}");
        exit;
    }}
    if ($au == $null || $sht(users=>$au) == $null) {{
        xlog("L_INFO", "INVITE from $fU rejected: unknown user\\n");
        send_reply("403", "Forbidden");
        exit;
    }}
    pv_proxy_authenticate("$fd", "$sht(users=>$au)", "0");
    $var(auth) = $rc;
    if ($var(auth) == -2) {{
        xlog("L_INFO", "INVITE from $fU rejected: wrong password\\n");
        {invite_wrong_password_reply}
    }}
{invite_stale}    if ($var(auth) < 0) {{
        proxy_challenge("$fd", "{auth.flags}");
        exit;
    }}
    if ($au != $fU) {{
        xlog("L_INFO", "INVITE from $fU rejected: authenticated as $au\\n");
        send_reply("403", "Forbidden");
        exit;
    }}
    consume_credentials();
}}

"""
    tls_listen = ""
    tls_module = ""
    if tls_port is not None and tls_config is not None:
        tls_listen = f"enable_tls=yes\nlisten=tls:{host}:{tls_port}\n"
        tls_module = f'loadmodule "tls.so"\nmodparam("tls", "config", "{tls_config}")\n'
    return f"""#!KAMAILIO
# Generated by tests/sipbed/kamailio.py: a loopback test bed, not a production config.
debug=2
log_stderror=yes
memdbg=5
memlog=5
children=2
tcp_children=2
auto_aliases=no
dns=no
rev_dns=no
use_dns_cache=no
listen=udp:{host}:{port}
listen=tcp:{host}:{port}
{tls_listen}alias={host}:{port}
tcp_connection_lifetime=3605
server_header="Server: sip-endpoint-testbed {instance}"
user_agent_header="User-Agent: sip-endpoint-testbed"

mpath="{module_dir}/"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "htable.so"
loadmodule "auth.so"
{auth.module_params()}{tls_module}
modparam("htable", "htable", "users=>size=8;")
modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", 3600)
modparam("registrar", "min_expires", 1)
modparam("rr", "enable_full_lr", 1)
modparam("tm", "fr_timer", 10000)
modparam("tm", "fr_inv_timer", 120000)

event_route[htable:mod-init] {{
{user_lines}
}}

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    force_rport();
    if (is_method("OPTIONS") && $rU == $null) {{
        sl_send_reply("200", "OK");
        exit;
    }}
    if (has_totag()) {{
        route(WITHINDLG);
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    if (!is_method("ACK")) {{
        if (t_precheck_trans()) {{
            t_check_trans();
            exit;
        }}
        t_check_trans();
    }}
    remove_hf("Route");
    if (is_method("INVITE|SUBSCRIBE")) {{
        record_route();
    }}
    if (is_method("REGISTER")) {{
        route(REGISTRAR);
        exit;
    }}
    if ($rU == $null) {{
        sl_send_reply("484", "Address Incomplete");
        exit;
    }}
{invite_auth_call}    route(LOCATION);
}}

route[WITHINDLG] {{
    if (loose_route()) {{
        route(RELAY);
        exit;
    }}
    if (is_method("ACK")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    sl_send_reply("404", "Not here");
    exit;
}}

route[REGISTRAR] {{
    if (!is_present_hf("{register_credentials[0]}")) {{
        {register_challenge};
        exit;
    }}
    if ({register_credentials[1]} == $null || $sht(users=>{register_credentials[1]}) == $null) {{
        xlog("L_INFO", "REGISTER for $tU rejected: unknown user\\n");
        {unknown_user_reply}
        exit;
    }}
    {register_credentials[2]}("$td", "$sht(users=>{register_credentials[1]})", "0");
    $var(auth) = $rc;
    if ($var(auth) == -2) {{
        xlog("L_INFO", "REGISTER for $tU rejected: wrong password\\n");
        {wrong_password_reply}
    }}
{register_stale}    if ($var(auth) < 0) {{
        {register_challenge};
        exit;
    }}
{register_identity_check}    consume_credentials();
    if (!save("location")) {{
        sl_reply_error();
        exit;
    }}
    xlog("L_INFO", "REGISTER for $tU from $si:$sp saved\\n");
    exit;
}}

{invite_auth_route}route[LOCATION] {{
    if (!lookup("location")) {{
        $var(rc) = $rc;
        t_newtran();
        if ($var(rc) == -1 && $sht(users=>$rU) != $null) {{
            t_reply("480", "Temporarily Unavailable");
        }} else {{
            t_reply("404", "Not Found");
        }}
        exit;
    }}
    route(RELAY);
}}

route[RELAY] {{
    if (!t_relay()) {{
        sl_reply_error();
    }}
    exit;
}}
"""


class KamailioFactory(Protocol):
    """The ``kamailio_factory`` fixture: returns a started Kamailio."""

    def __call__(
        self,
        users: Mapping[str, str] | None = None,
        *,
        wrong_password: WrongPasswordPolicy = "rechallenge",
        unknown_user: UnknownUserPolicy = "forbidden",
        host: str = "127.0.0.1",
        port: int | None = None,
        netns: NetworkNamespace | None = None,
        tls: bool = False,
        tls_certificate: ServerCertificate | None = None,
        auth: AuthOptions = DEFAULT_AUTH,
    ) -> Kamailio:
        """Start a Kamailio; ``users`` defaults to the standard test users."""


class Kamailio:
    """One Kamailio process serving the test bed on ``host:port`` (UDP and TCP)."""

    def __init__(
        self,
        workdir: Path,
        users: Mapping[str, str],
        *,
        wrong_password: WrongPasswordPolicy = "rechallenge",
        unknown_user: UnknownUserPolicy = "forbidden",
        host: str = "127.0.0.1",
        port: int | None = None,
        netns: NetworkNamespace | None = None,
        tls: bool = False,
        tls_certificate: ServerCertificate | None = None,
        auth: AuthOptions = DEFAULT_AUTH,
    ) -> None:
        """Prepare (but do not start) a Kamailio in ``workdir``.

        With ``netns`` it runs inside that network namespace (see tests.sipbed.netns).
        With ``tls`` it also listens for SIP over TLS on ``tls_port`` with a
        certificate for ``host`` and localhost signed by a CA the test bed makes
        (``ca_path``; ``certificate_path`` is the served chain, leaf and CA, so it can
        be trusted too). ``tls_certificate`` (implies ``tls``) serves that certificate
        instead, e.g. one of ``tests.sipbed.tls.make_certificates``. ``auth`` changes
        how it challenges (``AuthOptions``: qop, SHA-256, 407, nonce lifetime).
        """
        self.workdir = Path(workdir)
        self.host = host
        self.netns = netns
        with self._in_namespace():
            self.port = port if port is not None else free_port(host)
        # A port we picked may be taken by another test before Kamailio binds it:
        # until the first successful start, a failed start retries on a new port.
        self._may_change_port = port is None
        self._instance = secrets.token_hex(6)
        self.tls_port: int | None = None
        self.auth = auth
        self._tls_certificate = tls_certificate
        if tls or tls_certificate is not None:
            with self._in_namespace():
                self.tls_port = free_tcp_port(host, avoid=self.port)
        self.wrong_password: WrongPasswordPolicy = wrong_password
        self.unknown_user: UnknownUserPolicy = unknown_user
        self._users = dict(users)
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        """Describe the instance without its users' passwords."""
        return f"<Kamailio {self.host}:{self.port} users={len(self._users)}>"

    def _in_namespace(self) -> contextlib.AbstractContextManager[None]:
        """Enter Kamailio's network namespace, if it has one."""
        return self.netns.entered() if self.netns else contextlib.nullcontext()

    @property
    def log_path(self) -> Path:
        """Kamailio's log file (its stderr)."""
        return self.workdir / "kamailio.log"

    @property
    def certificate_path(self) -> Path:
        """The TLS certificate file Kamailio serves (PEM) when started with TLS."""
        if self._tls_certificate is not None:
            return self._tls_certificate.certificate
        return self.workdir / "tls-cert.pem"

    @property
    def ca_path(self) -> Path:
        """The test-bed CA that signed the default TLS certificate."""
        return self.workdir / "tls" / "ca.pem"

    def _write_tls_files(self) -> Path:
        """Make the certificates (once) and the tls module's configuration."""
        if self._tls_certificate is not None:
            key = self._tls_certificate.key
        else:
            try:
                certificates = make_certificates(self.workdir / "tls", self.host)
            except (OSError, RuntimeError) as err:
                raise KamailioError(f"TLS certificates: {err}") from err
            valid = certificates.server("valid")
            key = valid.key
            self.certificate_path.write_text(
                valid.certificate.read_text() + certificates.ca_path.read_text()
            )
        tls_config = self.workdir / "tls.cfg"
        tls_config.write_text(
            "[server:default]\n"
            "method = TLSv1.2+\n"
            "verify_certificate = no\n"
            "require_certificate = no\n"
            f"private_key = {key}\n"
            f"certificate = {self.certificate_path}\n"
            "\n[client:default]\n"
            "method = TLSv1.2+\n"
            "verify_certificate = no\n"
            "require_certificate = no\n"
        )
        return tls_config

    @property
    def config_path(self) -> Path:
        """The generated configuration file."""
        return self.workdir / "kamailio.cfg"

    @property
    def pid(self) -> int | None:
        """The main process id while running."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the Kamailio process is alive."""
        return self._process is not None and self._process.poll() is None

    def set_users(self, users: Mapping[str, str]) -> None:
        """Replace the users and passwords; takes effect on the next (re)start."""
        self._users = dict(users)

    def start(self) -> None:
        """Write the configuration, start Kamailio and wait until it answers."""
        if self.running:
            return
        for _ in range(START_ATTEMPTS - 1):
            if not self._may_change_port:
                break
            try:
                self._start_once()
            except KamailioError:
                with self._in_namespace():
                    self.port = free_port(self.host)
                    if self.tls_port is not None:
                        self.tls_port = free_tcp_port(self.host, avoid=self.port)
            else:
                self._may_change_port = False
                return
        self._start_once()
        self._may_change_port = False

    def _start_once(self) -> None:
        binary = shutil.which("kamailio") or "/usr/sbin/kamailio"
        if not Path(binary).exists():
            raise KamailioError("kamailio not found (install the Debian package)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        tls_config = self._write_tls_files() if self.tls_port is not None else None
        self.config_path.write_text(
            render_config(
                host=self.host,
                port=self.port,
                users=self._users,
                module_dir=find_module_dir(),
                wrong_password=self.wrong_password,
                unknown_user=self.unknown_user,
                instance=self._instance,
                tls_port=self.tls_port,
                tls_config=tls_config,
                auth=self.auth,
            )
        )
        self.config_path.chmod(0o600)
        command = [
            binary,
            "-DD",
            "-E",
            "-f",
            str(self.config_path),
            "-Y",
            str(self.workdir),
            "-P",
            str(self.workdir / "kamailio.pid"),
            "-m",
            "64",
            "-M",
            "8",
        ]
        if self.netns is not None:
            command = self.netns.command(*command)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        """Wait until an OPTIONS over UDP gets 200 OK."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise KamailioError(
                    f"Kamailio exited during start:\n{_log_tail(self.log_path)}"
                )
            with self._in_namespace():
                answer = sip_options(self.host, self.port, timeout=0.3)
            if (
                answer is not None
                and parse_status_code(answer) == 200
                and self._instance.encode() in answer
            ):
                return
            time.sleep(0.05)
        raise KamailioError(
            f"Kamailio did not answer OPTIONS on {self.host}:{self.port}:\n"
            f"{_log_tail(self.log_path)}"
        )

    def stop(self) -> None:
        """Stop Kamailio (SIGTERM, then SIGKILL); safe to call more than once."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    # The group was created by us for this Kamailio and its children.
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(STOP_TIMEOUT)
        # Children of a stopped Kamailio exit with it; reap a straggler by group id.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, 0)
            time.sleep(0.2)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        """Return the end of Kamailio's log."""
        return _log_tail(self.log_path, lines)

    def wait_for_log(self, text: str, timeout: float = 5.0) -> bool:
        """Return whether ``text`` appears in the log within ``timeout`` seconds.

        Kamailio logs a request's outcome after it sent the reply, so a client that
        got its answer may look before the line is written.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                if text in self.log_path.read_text(errors="replace"):
                    return True
            except OSError:
                pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    """Run a Kamailio with demo users until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo", action="store_true", help="use the demo users")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--workdir", type=Path, default=Path(".dev/kamailio"))
    args = parser.parse_args(argv)
    if not args.demo:
        parser.error("only --demo is supported")
    port = args.port
    if port is None:
        port = 5060 if free_port(args.host, preferred=5060) == 5060 else None
    kamailio = Kamailio(args.workdir.resolve(), DEMO_USERS, host=args.host, port=port)
    stop_requested = False

    def _request_stop(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, _request_stop)
    kamailio.start()
    try:
        lines = [
            f"Kamailio listening on udp+tcp {kamailio.host}:{kamailio.port}",
            f"Log: {kamailio.log_path}",
            "Demo extensions (user / password):",
            *(f"  {user} / {password}" for user, password in DEMO_USERS.items()),
        ]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        while not stop_requested and kamailio.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        kamailio.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
