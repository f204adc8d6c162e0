"""Register one extension once with a SIP server and report the answer.

Run through ``scripts/sip-check``. The password is read from ``SIP_PASSWORD`` or
prompted for; it is never printed. ``--engine`` chooses the SIP engine as the
integration's option does: ``auto`` (pjsua2 when an interpreter with it is found, else
the built-in engine), ``builtin`` (runs on this Python; nothing else needed) or
``pjsua2``. The report names the engine that ran. Exit status: 0 when the registration
succeeded, 1 when the server (or its absence) refused it, 2 when the check could not
run (bad arguments, no pjsua2 interpreter for ``--engine pjsua2``), 3 when the SIP
worker failed.
"""

import argparse
import asyncio
import getpass
import ipaddress
import json
import logging
import os
from pathlib import Path
import sys
import time
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from custom_components.sip_endpoint.engine.probe import ProbeOutcome

REPO = Path(__file__).resolve().parent.parent
EXIT_OK = 0
EXIT_NOT_REGISTERED = 1
EXIT_CANNOT_RUN = 2
EXIT_WORKER_FAILED = 3
ENGINES = ("auto", "builtin", "pjsua2")  # engine.models.EngineChoice


def _import_engine_without_home_assistant() -> None:
    """Make the engine importable without running the integration's __init__."""
    sys.path.insert(0, str(REPO))
    for name, path in (
        ("custom_components", REPO / "custom_components"),
        ("custom_components.sip_endpoint", REPO / "custom_components" / "sip_endpoint"),
    ):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(path)]
            sys.modules[name] = module


def split_server(value: str) -> tuple[str, int | None]:
    """Split HOST[:PORT] (IPv6 as [addr]:port) into host and port."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":")
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    if not host:
        raise argparse.ArgumentTypeError(f"no host in {value!r}")
    if not port:
        return host, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"bad port in {value!r}")
    return host, int(port)


def bind_host_for(host: str, default: str) -> str:
    """Bind to loopback for a server on loopback, else where the engine binds by default."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return default
    if address.is_loopback:
        return str(address)
    return default


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="sip-check",
        description="Register one extension once and report the SIP server's answer.",
        epilog="The password is read from SIP_PASSWORD, or prompted for.",
    )
    parser.add_argument(
        "--server",
        required=True,
        type=split_server,
        metavar="HOST[:PORT]",
        help="registrar (IPv6 as [addr]:port)",
    )
    parser.add_argument(
        "--transport",
        choices=["udp", "tcp", "tls"],
        default=None,
        help="default: as the SIP stack chooses (auto)",
    )
    parser.add_argument("--outbound-proxy", metavar="URI", help="e.g. sip:proxy;lr")
    parser.add_argument("--extension", required=True, metavar="EXT", help="user part")
    parser.add_argument(
        "--auth-id", metavar="ID", help="digest user name (default: the extension)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=40.0,
        metavar="S",
        help="seconds to wait for a final answer (default: 40; UDP gives up after 32)",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="SIP engine (default: auto, pjsua2 if an interpreter with it is found, "
        "else the built-in engine on this Python)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    return parser.parse_args(argv)


def format_elapsed(seconds: float) -> str:
    """Format a duration for people."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def report(outcome: "ProbeOutcome", elapsed: float, *, as_json: bool) -> str:
    """Describe the outcome and the engine that ran, as text or one JSON line."""
    state = outcome.state
    if as_json:
        return json.dumps(
            {
                "status": str(state.status),
                "code": state.code,
                "reason": state.reason,
                "elapsed_ms": round(elapsed * 1000),
                "engine": outcome.engine,
                "engine_version": outcome.engine_version,
            }
        )
    code = "-" if state.code is None else str(state.code)
    return "\n".join(
        [
            f"status:  {state.status}",
            f"code:    {code}",
            f"reason:  {state.reason}",
            f"elapsed: {format_elapsed(elapsed)}",
            (
                f"engine:  {outcome.engine} {outcome.engine_version} "
                f"(Python {outcome.python})"
            ),
        ]
    )


async def check(args: argparse.Namespace, password: str) -> int:
    """Run the probe and print its outcome; return the exit status."""
    _import_engine_without_home_assistant()
    from custom_components.sip_endpoint.engine.errors import (
        WorkerPythonNotFoundError,
        WorkerStartError,
    )
    from custom_components.sip_endpoint.engine.models import (
        EngineChoice,
        EngineOptions,
        ExtensionSettings,
        ServerSettings,
    )
    from custom_components.sip_endpoint.engine.probe import run_probe
    from custom_components.sip_endpoint.protocol.payloads import Transport
    from custom_components.sip_endpoint.protocol.status import RegistrationStatus

    host, port = args.server
    server = ServerSettings(
        host=host,
        port=port,
        transport=Transport(args.transport) if args.transport else Transport.AUTO,
        outbound_proxy=args.outbound_proxy,
    )
    extension = ExtensionSettings(
        account_id="sip-check",
        extension=args.extension,
        auth_id=args.auth_id or args.extension,
        password=password,
    )
    started = time.time()
    try:
        outcome = await run_probe(
            server,
            EngineOptions(
                engine=EngineChoice(args.engine),
                bind_host=bind_host_for(host, EngineOptions().bind_host),
            ),
            extension,
            timeout=args.timeout,
        )
    except WorkerPythonNotFoundError as err:
        print(f"sip-check: {err}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except WorkerStartError as err:
        print(f"sip-check: the SIP worker failed: {err}", file=sys.stderr)
        return EXIT_WORKER_FAILED
    # Until the answer arrived (worker start included, its shutdown not).
    elapsed = max(outcome.state.changed_at - started, 0.0)
    print(report(outcome, elapsed, as_json=args.json))
    if outcome.state.status is RegistrationStatus.SUCCESSFUL:
        return EXIT_OK
    return EXIT_NOT_REGISTERED


def main(argv: list[str]) -> int:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="sip-check: %(message)s")
    password = os.environ.get("SIP_PASSWORD")
    if password is None:
        try:
            password = getpass.getpass(f"Password for {args.extension}: ")
        except (EOFError, KeyboardInterrupt):
            print("sip-check: no password given", file=sys.stderr)
            return EXIT_CANNOT_RUN
    return asyncio.run(check(args, password))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
