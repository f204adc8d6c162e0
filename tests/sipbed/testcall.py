"""Place one test call with baresip: ``python -m tests.sipbed.testcall 100``.

It registers as a demo caller (200 / demo-200 by default) at scripts/develop's
Kamailio, calls the extension, sends a tone and optional DTMF, then hangs up.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
import sys
from typing import NamedTuple

from .audio import write_tone
from .baresip import Baresip, BaresipError


class _Address(NamedTuple):
    host: str
    port: int


def main(argv: list[str] | None = None) -> int:
    """Place one test call through a registrar and report what happened."""
    parser = argparse.ArgumentParser(
        description="Call an extension with a tone through a registrar (e.g. scripts/develop's)."
    )
    parser.add_argument("extension", help="extension to call, e.g. 100")
    parser.add_argument("--registrar", default="127.0.0.1:5060", help="host:port")
    parser.add_argument("--user", default="200")
    parser.add_argument("--password", default="demo-200")
    parser.add_argument("--tone-hz", type=float, default=440.0)
    parser.add_argument("--seconds", type=float, default=10.0, help="hang up after")
    parser.add_argument("--dtmf", default="", help="digits to send once answered")
    parser.add_argument("--workdir", type=Path, default=Path(".dev/baresip"))
    args = parser.parse_args(argv)
    host, _, port = args.registrar.rpartition(":")
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    phone = Baresip(
        workdir,
        user=args.user,
        password=args.password,
        registrar=_Address(host, int(port)),
        audio_file=write_tone(workdir / "tone.wav", args.tone_hz, args.seconds + 30),
    )
    out = sys.stdout
    phone.start()
    try:
        phone.wait_registered()
        out.write(f"Registered {phone.aor}; calling {args.extension}\n")
        phone.dial(args.extension)
        phone.wait_established(timeout=60)
        out.write("Answered\n")
        if args.dtmf:
            phone.send_dtmf(args.dtmf)
        with contextlib.suppress(BaresipError):
            reason = phone.wait_closed(timeout=args.seconds)
            out.write(f"Closed by the other side: {reason}\n")
            return 0
        phone.hangup()
        out.write(f"Hung up: {phone.wait_closed()}\n")
        out.write(f"Received audio: {phone.recording}\n")
    except BaresipError as err:
        out.write(f"Failed: {err}\n")
        return 1
    finally:
        phone.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
