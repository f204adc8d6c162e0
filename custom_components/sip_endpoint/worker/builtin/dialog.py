"""One SIP dialog's state and the requests sent inside it (RFC 3261 12).

A :class:`Dialog` is made from an INVITE we received (UAS, :meth:`Dialog.as_uas`) or
for an INVITE we send (UAC, :meth:`Dialog.as_uac`; it becomes a dialog when a response
with a To tag arrives, :meth:`Dialog.confirm_uac`). It knows the Call-ID, both tags,
both URIs, the remote target, the route set and both CSeq numbers, and builds the
requests the call sends inside it (:meth:`Dialog.request`: BYE, re-INVITE's ACK,
INFO...) with the Request-URI and Route headers of RFC 3261 12.2.1.1, loose and strict
routing both. Pure and synchronous.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .sip.message import (
    Headers,
    SipParseError,
    SipRequest,
    SipUri,
    parse_name_addr,
    parse_uri,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .sip.message import SipResponse

MAX_ROUTES = 16
MAX_FORWARDS = 70


@dataclass(slots=True)
class Dialog:
    """The state of one dialog (or, UAC, of the INVITE that may create it)."""

    call_id: str
    local_tag: str
    local_uri: str  # the name-addr of our side (From when we call, To when we answer)
    remote_uri: str  # the peer's name-addr, without its tag
    remote_target: SipUri  # the peer's Contact (the Request-URI of our requests)
    route_set: list[str] = field(default_factory=list)  # Route values, in order
    remote_tag: str | None = None
    local_cseq: int = 1
    remote_cseq: int | None = None

    @classmethod
    def as_uas(cls, invite: SipRequest, local_tag: str) -> Dialog:
        """Return the dialog an INVITE creates on our side (RFC 3261 12.1.1).

        Raises :class:`SipParseError` when the INVITE lacks what a dialog needs
        (From, To, Call-ID, CSeq, a usable Contact); the caller answers 400.
        """
        from_addr = invite.from_addr
        to_addr = invite.to_addr
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            local_uri=_without_tag(str(to_addr.uri), to_addr.display_name),
            remote_uri=_without_tag(str(from_addr.uri), from_addr.display_name),
            remote_target=_contact_uri(invite),
            route_set=_bounded(invite.headers.get_all("record-route")),
            remote_tag=from_addr.tag,
            local_cseq=1,
            remote_cseq=invite.cseq.seq,
        )

    @classmethod
    def as_uac(
        cls,
        *,
        call_id: str,
        local_tag: str,
        local_uri: str,
        remote_uri: str,
        target: SipUri,
        route_set: Iterable[str] = (),
    ) -> Dialog:
        """Return the state for an INVITE we send to ``target`` (RFC 3261 8.1.1).

        ``route_set`` is the preloaded route (an outbound proxy), already ``;lr``.
        """
        return cls(
            call_id=call_id,
            local_tag=local_tag,
            local_uri=local_uri,
            remote_uri=remote_uri,
            remote_target=target,
            route_set=list(route_set)[:MAX_ROUTES],
            local_cseq=1,
        )

    @property
    def established(self) -> bool:
        """Return whether both tags are known."""
        return self.remote_tag is not None

    def confirm_uac(self, response: SipResponse) -> None:
        """Take the To tag, Contact and Record-Route of a response to our INVITE.

        A 2xx fixes them for good (RFC 3261 12.1.2); provisional responses with a tag
        set them for an early dialog, and a later 2xx overrides them. Without a usable
        Contact the remote target stays what it was (the Request-URI).
        """
        tag = response.to_addr.tag
        if tag is None:
            return
        self.remote_tag = tag
        with contextlib.suppress(SipParseError):
            self.remote_target = _contact_uri(response)
        routes = _bounded(response.headers.get_all("record-route"))
        self.route_set = list(reversed(routes))

    def refresh_target(self, message: SipRequest | SipResponse) -> None:
        """Take a new remote target from a re-INVITE or UPDATE (or its 2xx)."""
        with contextlib.suppress(SipParseError):
            self.remote_target = _contact_uri(message)

    def matches(self, request: SipRequest) -> bool:
        """Return whether an in-dialog request (To tag present) belongs here."""
        try:
            return (
                request.call_id == self.call_id
                and request.to_addr.tag == self.local_tag
                and request.from_addr.tag == self.remote_tag
            )
        except SipParseError:
            return False

    def accept_cseq(self, request: SipRequest) -> bool:
        """Check a request's CSeq against the last one (12.2.2); False means 500.

        ACK and CANCEL carry the CSeq of the request they go with and are always
        accepted.
        """
        cseq = request.cseq
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_cseq is not None and cseq.seq < self.remote_cseq:
            return False
        self.remote_cseq = cseq.seq
        return True

    def next_cseq(self) -> int:
        """Return the CSeq number for our next request (not ACK or CANCEL)."""
        self.local_cseq += 1
        return self.local_cseq

    def from_header(self) -> str:
        """Return our side's From value (with our tag)."""
        return f"{self.local_uri};tag={self.local_tag}"

    def to_header(self) -> str:
        """Return the peer's To value (with its tag once known)."""
        if self.remote_tag is None:
            return self.remote_uri
        return f"{self.remote_uri};tag={self.remote_tag}"

    def request(
        self,
        method: str,
        *,
        cseq: int | None = None,
        via: str | None = None,
        contact: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> SipRequest:
        """Build a request in this dialog, without Via (RFC 3261 12.2.1.1).

        ``cseq`` defaults to a new number (pass the INVITE's for ACK and CANCEL);
        ``via`` goes first when given.
        """
        number = self.next_cseq() if cseq is None else cseq
        uri, routes = self.request_target()
        out = Headers()
        if via is not None:
            out.add("Via", via)
        for route in routes:
            out.add("Route", route)
        out.add("Max-Forwards", str(MAX_FORWARDS))
        out.add("From", self.from_header())
        out.add("To", self.to_header())
        out.add("Call-ID", self.call_id)
        out.add("CSeq", f"{number} {method}")
        if contact is not None:
            out.add("Contact", contact)
        for name, value in headers:
            out.add(name, value)
        if content_type is not None and body:
            out.add("Content-Type", content_type)
        return SipRequest(method, uri, out, body)

    def request_target(self) -> tuple[SipUri, list[str]]:
        """Return the Request-URI and the Route values of our next request."""
        if not self.route_set:
            return _copy_uri(self.remote_target), []
        try:
            first = parse_name_addr(self.route_set[0]).uri
        except SipParseError:
            return _copy_uri(self.remote_target), list(self.route_set)
        if "lr" in first.params:
            return _copy_uri(self.remote_target), list(self.route_set)
        # Strict routing: the first route becomes the Request-URI, the remote target
        # goes last in Route (RFC 3261 12.2.1.1).
        first.headers = {}
        return first, [*self.route_set[1:], f"<{self.remote_target}>"]

    def next_hop(self) -> SipUri:
        """Return the URI our requests are sent toward: the first route, if any."""
        if self.route_set:
            try:
                return parse_name_addr(self.route_set[0]).uri
            except SipParseError:
                pass
        return _copy_uri(self.remote_target)


def _without_tag(uri: str, display: str | None) -> str:
    text = f"<{uri}>"
    if display:
        escaped = display.replace("\\", "\\\\").replace('"', '\\"')
        text = f'"{escaped}" {text}'
    return text


def _contact_uri(message: SipRequest | SipResponse) -> SipUri:
    contacts = message.contacts()
    if contacts == "*" or not contacts:
        raise SipParseError("missing Contact")
    return contacts[0].uri


def _bounded(values: list[str]) -> list[str]:
    return [value.strip() for value in values[:MAX_ROUTES]]


def _copy_uri(uri: SipUri) -> SipUri:
    return parse_uri(str(uri))
