"""Network namespaces for fault tests (needs root and iproute2).

A :class:`NamespacePair` is two fresh network namespaces joined by a veth pair with
addresses from 198.18.0.0/30 (the benchmarking range, RFC 2544) that exist only inside
those namespaces. Tests can take the link down, add loss or delay with ``tc netem`` and
run Kamailio/baresip/workers inside a namespace with :meth:`NetworkNamespace.command`.
Sockets the test process itself needs there are opened inside :meth:`entered`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
import secrets
import subprocess
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

NETNS_DIR: Final = Path("/run/netns")
ADDRESS_A: Final = "198.18.0.1"
ADDRESS_B: Final = "198.18.0.2"
PREFIX_LENGTH: Final = 30


class NetnsError(RuntimeError):
    """A namespace operation failed."""


def _ip(*args: str) -> None:
    result = subprocess.run(
        ["ip", *args], capture_output=True, text=True, check=False, timeout=10
    )
    if result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def namespaces_available() -> bool:
    """Return whether this process may create network namespaces."""
    return os.geteuid() == 0 and hasattr(os, "setns")


class NetworkNamespace:
    """A network namespace created (and deleted) by a test, with loopback up."""

    def __init__(self, name: str) -> None:
        """Wrap the namespace ``name`` (see :meth:`create`)."""
        self.name = name

    @classmethod
    def create(cls, prefix: str = "sipbed") -> NetworkNamespace:
        """Create a uniquely named namespace and bring its loopback up."""
        namespace = cls(f"{prefix}-{secrets.token_hex(4)}")
        _ip("netns", "add", namespace.name)
        try:
            namespace.ip("link", "set", "lo", "up")
        except BaseException:
            namespace.delete()
            raise
        return namespace

    def __repr__(self) -> str:
        """Name the namespace."""
        return f"<NetworkNamespace {self.name}>"

    def ip(self, *args: str) -> None:
        """Run ``ip`` inside the namespace."""
        _ip("-n", self.name, *args)

    def command(self, *argv: str) -> list[str]:
        """Return ``argv`` wrapped to run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Switch the calling thread into the namespace (sockets made here stay in it)."""
        with (
            open("/proc/thread-self/ns/net", "rb") as own,
            (NETNS_DIR / self.name).open("rb") as target,
        ):
            os.setns(target.fileno(), os.CLONE_NEWNET)
            try:
                yield
            finally:
                os.setns(own.fileno(), os.CLONE_NEWNET)

    def delete(self) -> None:
        """Delete the namespace (stop the processes running in it first)."""
        if (NETNS_DIR / self.name).exists():
            _ip("netns", "delete", self.name)


class NamespacePair:
    """Two namespaces joined by a veth link: ``a`` (198.18.0.1) and ``b`` (198.18.0.2)."""

    def __init__(self) -> None:
        """Create both namespaces and the link between them."""
        self.a = NetworkNamespace.create()
        self.b = NetworkNamespace.create()
        self.address_a = ADDRESS_A
        self.address_b = ADDRESS_B
        try:
            self.a.ip("link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b")
            self.a.ip("link", "set", "veth-b", "netns", self.b.name)
            self.a.ip("addr", "add", f"{ADDRESS_A}/{PREFIX_LENGTH}", "dev", "veth-a")
            self.b.ip("addr", "add", f"{ADDRESS_B}/{PREFIX_LENGTH}", "dev", "veth-b")
            self.set_link(up=True)
        except BaseException:
            self.close()
            raise

    def set_link(self, *, up: bool) -> None:
        """Take the link between the namespaces up or down (both ends)."""
        state = "up" if up else "down"
        self.a.ip("link", "set", "veth-a", state)
        self.b.ip("link", "set", "veth-b", state)

    def impair(self, *, loss_percent: float = 0, delay_ms: int = 0) -> None:
        """Add packet loss and/or delay in both directions (``tc netem``)."""
        for namespace, device in ((self.a, "veth-a"), (self.b, "veth-b")):
            subprocess.run(
                namespace.command(
                    "tc", "qdisc", "replace", "dev", device, "root", "netem",
                    "loss", f"{loss_percent}%", "delay", f"{delay_ms}ms",
                ),
                check=True,
                capture_output=True,
                timeout=10,
            )  # fmt: skip

    def clear_impairment(self) -> None:
        """Remove loss and delay."""
        for namespace, device in ((self.a, "veth-a"), (self.b, "veth-b")):
            subprocess.run(
                namespace.command("tc", "qdisc", "del", "dev", device, "root"),
                check=False,
                capture_output=True,
                timeout=10,
            )

    def close(self) -> None:
        """Delete both namespaces (the veth pair goes with them)."""
        for namespace in (self.a, self.b):
            with contextlib.suppress(NetnsError):
                namespace.delete()
