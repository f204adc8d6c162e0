"""A fake SIP worker (and fake interpreter) for the engine's edge-case tests.

It is started through a small shell script that poses as a Python interpreter:
``fake-python --mode=... -- <interpreter args>``. Called with ``-c`` (the engine's
pjsua2 probe) it prints versions like a real interpreter with pjsua2; otherwise it
speaks the worker protocol on stdin/stdout with canned answers. Its hello names the
engine the launcher asked for (``--engine``) and the limits its flags give, and it
refuses accounts past its `--max-accounts`. Flags select the misbehaviour under test.
It never touches SIP.
"""

import argparse
import json
import os
from pathlib import Path
import sys
import threading
import time
import types
from typing import Any

_REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(_REPO))
# Import the protocol package without the integration's __init__ (Home Assistant).
for _name, _path in (
    ("custom_components", _REPO / "custom_components"),
    ("custom_components.sip_endpoint", _REPO / "custom_components" / "sip_endpoint"),
):
    _module = types.ModuleType(_name)
    _module.__path__ = [str(_path)]
    sys.modules.setdefault(_name, _module)

from custom_components.sip_endpoint.protocol import PROTOCOL_VERSION  # noqa: E402
from custom_components.sip_endpoint.protocol.wire import (  # noqa: E402
    ErrorInfo,
    Event,
    ProtocolError,
    Request,
    Response,
    decode,
    encode,
)

_OUT = sys.stdout.buffer
_LOCK = threading.Lock()


def _options(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    own, rest = (argv, []) if "--" not in argv else _split(argv)
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", type=int, default=PROTOCOL_VERSION)
    parser.add_argument("--no-pjsua2", action="store_true")
    parser.add_argument("--die-before-hello", action="store_true")
    parser.add_argument("--abort-on-start", action="store_true")
    parser.add_argument("--garbage", action="store_true")
    parser.add_argument("--slow", type=float, default=0.0)
    parser.add_argument("--ignore-shutdown", action="store_true")
    parser.add_argument(
        "--register",
        default="ok",
        choices=["ok", "no_reply", "silent", "tls_invalid_once"],
        help="tls_invalid_once: the first REGISTER of each account fails TLS",
    )
    parser.add_argument("--incoming-call", action="store_true")
    parser.add_argument("--die-if-exists", default="")
    parser.add_argument("--hello-delay", type=float, default=0.0)
    parser.add_argument("--max-accounts", type=int, default=8)
    parser.add_argument("--max-calls", type=int, default=4)
    parser.add_argument("--hello-engine", default="", help="default: as asked")
    return parser.parse_args(own), rest


def _asked_engine(interpreter_args: list[str]) -> str:
    """Return the engine `launch.py --engine` was asked for (pjsua2 by default)."""
    if "--engine" in interpreter_args:
        index = interpreter_args.index("--engine")
        if index + 1 < len(interpreter_args):
            return interpreter_args[index + 1]
    return "pjsua2"


def _split(argv: list[str]) -> tuple[list[str], list[str]]:
    index = argv.index("--")
    return argv[:index], argv[index + 1 :]


def _write(line: bytes) -> None:
    with _LOCK:
        _OUT.write(line)
        _OUT.flush()


def _event(name: str, data: dict[str, Any]) -> None:
    _write(encode(Event(name=name, data=data)))


def _registration(
    account_id: str, code: int, reason: str, status: str, expires: int
) -> None:
    _event(
        "registration",
        {
            "account_id": account_id,
            "status": status,
            "code": code,
            "reason": reason,
            "changed_at": time.time(),
            "last_success": time.time() if status == "successful" else None,
            "expires": expires,
            "registrar": "sip:127.0.0.1",
        },
    )


class FakeWorker:
    """Canned answers to the protocol's requests."""

    def __init__(self, options: argparse.Namespace) -> None:
        """Remember the misbehaviours to show."""
        self.options = options
        self.accounts: dict[str, dict[str, Any]] = {}
        self.registered_once: set[str] = set()
        self.calls = 0

    def garbage(self) -> None:
        """Write lines the engine must skip."""
        if not self.options.garbage:
            return
        _write(b"pjlib says hello on stdout\n")
        _write(b"[1, 2, 3]\n")
        _write(b'{"type": "martian"}\n')
        _write(b"\xff\xfe\x00 binary\n")
        _write(b'{"type":"response","id":999999,"result":{}}\n')
        _write(b'{"type":"event","event":"registration","data":{"account_id":1}}\n')
        _write(b'{"type":"event","event":"no_such_event","data":{}}\n')
        _write(b"x" * ((1 << 20) + 10) + b"\n")
        _write(b"y" * (2 << 20) + b"\n")

    def handle(self, request: Request) -> dict[str, Any]:
        """Answer one request (raise KeyError for unknown ones)."""
        method = request.method
        if self.options.slow and method != "start":
            time.sleep(self.options.slow)
        params = request.params
        if method == "start":
            if self.options.abort_on_start:
                os.abort()
            return {"sip_port": params["port_min"], "tls_port": None}
        if method == "add_account":
            if len(self.accounts) >= self.options.max_accounts:
                raise LookupError("limit_reached")
            account_id = params["account_id"]
            self.accounts[account_id] = params
            threading.Timer(0.01, self._register, args=(account_id,)).start()
            return {}
        if method == "remove_account":
            if self.accounts.pop(params["account_id"], None) is not None:
                _registration(params["account_id"], 200, "OK", "unregistered", 0)
            return {}
        if method == "reregister":
            self._register(params["account_id"])
            return {}
        if method == "status":
            return {"accounts": len(self.accounts), "calls": 0, "rss_kib": 1234}
        if method == "make_call":
            self.calls += 1
            call_id = f"out-{self.calls}"
            threading.Timer(
                0.0, self._outbound_call, args=(call_id, params["account_id"])
            ).start()
            return {"call_id": call_id}
        if method in ("ring", "answer", "hangup", "play"):
            return {}
        raise KeyError(method)

    def _register(self, account_id: str) -> None:
        params = self.accounts.get(account_id)
        if params is None:
            return
        _registration(account_id, 100, "Trying", "registering", 0)
        mode = self.options.register
        if mode == "tls_invalid_once" and account_id not in self.registered_once:
            self.registered_once.add(account_id)
            _registration(
                account_id,
                503,
                "certificate verify failed: unable to get local issuer certificate",
                "tls_certificate_invalid",
                0,
            )
        elif mode in ("ok", "tls_invalid_once"):
            if params["password"] != f"pw-{params['auth_id']}":
                _registration(account_id, 403, "Forbidden", "rejected_by_server", 0)
            else:
                _registration(account_id, 200, "OK", "successful", params["expiry"])
        elif mode == "no_reply":
            _registration(account_id, 408, "Request Timeout", "no_reply_from_server", 0)
        if self.options.incoming_call:
            _event(
                "incoming_call",
                {
                    "account_id": account_id,
                    "call_id": f"in-{account_id}",
                    "remote_uri": "sip:9001@127.0.0.1",
                    "display_name": "Caller",
                    "source": "127.0.0.1",
                },
            )

    def _outbound_call(self, call_id: str, account_id: str) -> None:
        # call_ended may overtake the make_call response on the engine's side.
        _event(
            "call_state",
            {"call_id": call_id, "account_id": account_id, "phase": "calling"},
        )
        _event(
            "call_state",
            {"call_id": call_id, "account_id": account_id, "phase": "confirmed"},
        )
        _event(
            "call_ended",
            {
                "call_id": call_id,
                "account_id": account_id,
                "direction": "outbound",
                "cause": "local",
                "code": 200,
                "reason": "OK",
                "answered": True,
                "duration": 0.01,
            },
        )


def main(argv: list[str]) -> int:
    """Pose as an interpreter; run as a worker."""
    options, interpreter_args = _options(argv)
    if "-c" in interpreter_args:
        if options.no_pjsua2:
            sys.stderr.write("ModuleNotFoundError: No module named 'pjsua2'\n")
            return 1
        sys.stdout.write(json.dumps({"python": "3.12.99", "pjsua2": "0.0-fake"}) + "\n")
        return 0
    sys.stderr.write("fake worker starting\n")
    if options.die_before_hello or (
        options.die_if_exists and Path(options.die_if_exists).exists()
    ):
        sys.stderr.write("fatal: fake worker cannot start\n")
        return 3
    worker = FakeWorker(options)
    time.sleep(options.hello_delay)
    worker.garbage()
    _event(
        "hello",
        {
            "protocol": options.protocol,
            "engine": options.hello_engine or _asked_engine(interpreter_args),
            "engine_version": "0.0-fake",
            "python": "3.12.99",
            "pid": os.getpid(),
            "max_accounts": options.max_accounts,
            "max_calls": options.max_calls,
        },
    )
    for line in sys.stdin.buffer:
        try:
            request = decode(line)
        except ProtocolError:
            _write(
                encode(Response(id=0, error=ErrorInfo("bad_request", "not a request")))
            )
            continue
        if not isinstance(request, Request):
            continue
        worker.garbage()
        if request.method == "shutdown":
            for account_id in list(worker.accounts):
                _registration(account_id, 200, "OK", "unregistered", 0)
            _write(encode(Response(id=request.id, result={})))
            if options.ignore_shutdown:
                continue
            return 0
        try:
            result = worker.handle(request)
        except KeyError as err:
            _write(
                encode(
                    Response(id=request.id, error=ErrorInfo("unknown_method", str(err)))
                )
            )
            continue
        except LookupError:
            _write(
                encode(
                    Response(id=request.id, error=ErrorInfo("limit_reached", "full"))
                )
            )
            continue
        _write(encode(Response(id=request.id, result=result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
