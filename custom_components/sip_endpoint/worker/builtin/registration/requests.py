"""The REGISTER and OPTIONS requests of one extension (RFC 3261 10.2, 11).

One Call-ID and From tag for the account's whole life, CSeq counting up over every
REGISTER (RFC 3261 10.2: the registrar orders them by it). The Via is left to the
transaction layer, which knows the transport and the branch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sip.message import (
    Headers,
    NameAddr,
    SipRequest,
    SipUri,
    new_call_id,
    new_tag,
)

MAX_FORWARDS = "70"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"
USER_AGENT = "sip-endpoint builtin"


@dataclass(slots=True)
class RegisterSequence:
    """The identity of an extension's registration: Call-ID, From tag, CSeq."""

    host: str
    call_id: str = ""
    from_tag: str = field(default_factory=new_tag)
    cseq: int = 0

    def __post_init__(self) -> None:
        """Pick the Call-ID once."""
        if not self.call_id:
            self.call_id = new_call_id(self.host.strip("[]") or "localhost")

    def next_cseq(self) -> int:
        """Return the CSeq of the next REGISTER."""
        self.cseq += 1
        return self.cseq


def _base_headers(
    route_set: tuple[SipUri, ...], from_uri: SipUri, from_tag: str, to_uri: SipUri
) -> Headers:
    headers = Headers()
    for route in route_set:
        headers.add("Route", f"<{route}>")
    headers.add("Max-Forwards", MAX_FORWARDS)
    headers.add("From", str(NameAddr(from_uri, params={"tag": from_tag})))
    headers.add("To", str(NameAddr(to_uri)))
    return headers


def build_register(
    sequence: RegisterSequence,
    *,
    registrar: SipUri,
    aor: SipUri,
    contact: SipUri | None,
    expires: int,
    route_set: tuple[SipUri, ...],
) -> SipRequest:
    """Return a REGISTER binding ``contact`` to ``aor`` for ``expires`` seconds.

    Without ``contact`` it is a query (RFC 3261 10.2.3): the registrar lists the
    bindings it holds and changes nothing.
    """
    headers = _base_headers(route_set, aor, sequence.from_tag, aor)
    headers.add("Call-ID", sequence.call_id)
    headers.add("CSeq", f"{sequence.next_cseq()} REGISTER")
    if contact is not None:
        headers.add("Contact", f"<{contact}>")
        headers.add("Expires", str(expires))
    headers.add("Allow", ALLOW)
    headers.add("User-Agent", USER_AGENT)
    return SipRequest("REGISTER", registrar, headers)


def build_options(
    *, target: SipUri, aor: SipUri, contact: SipUri, route_set: tuple[SipUri, ...]
) -> SipRequest:
    """Return an out-of-dialog OPTIONS to ``target`` (a liveness probe)."""
    headers = _base_headers(route_set, aor, new_tag(), target)
    headers.add("Call-ID", new_call_id(contact.host.strip("[]") or "localhost"))
    headers.add("CSeq", "1 OPTIONS")
    headers.add("Contact", f"<{contact}>")
    headers.add("Accept", "application/sdp")
    headers.add("User-Agent", USER_AGENT)
    return SipRequest("OPTIONS", target, headers)
