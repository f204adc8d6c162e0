"""Read a registrar's 2xx answer to REGISTER (RFC 3261 10.2.4): bindings and expiry.

The 200 lists every binding of the address of record in Contact headers, each with its
``expires`` parameter. Ours is the one whose URI matches the Contact we sent; without
it, the Expires header counts, and without that, what we asked for. A registrar that
rewrites contacts (NAT helpers) lists ours in another form: then it is not found.
"""

from ..sip.message import SipParseError, SipResponse, SipUri

MAX_EXPIRES = 2**31 - 1


def _same_binding(ours: SipUri, theirs: SipUri) -> bool:
    """Compare the parts of two contact URIs a registrar keeps (RFC 3261 19.1.4)."""
    return (
        ours.scheme == theirs.scheme
        and (ours.user or "") == (theirs.user or "")
        and ours.host.lower() == theirs.host.lower()
        and ours.port == theirs.port
        and (ours.transport or "udp") == (theirs.transport or "udp")
    )


def lists_binding(response: SipResponse, ours: SipUri) -> bool:
    """Return whether a 2xx to REGISTER lists our binding (``ours``, the Contact)."""
    try:
        contacts = response.contacts()
    except SipParseError:
        return False
    return contacts != "*" and any(_same_binding(ours, c.uri) for c in contacts)


def granted_expires(response: SipResponse, ours: SipUri, asked: int) -> int:
    """Return the seconds the registrar granted our binding.

    ``ours`` is the Contact URI we sent; ``asked`` the Expires we asked for. A
    malformed Contact or Expires in the answer counts as absent.
    """
    try:
        contacts = response.contacts()
    except SipParseError:
        contacts = []
    if contacts != "*":
        for contact in contacts:
            if not _same_binding(ours, contact.uri):
                continue
            try:
                expires = contact.expires
            except SipParseError:
                expires = None
            if expires is not None:
                return min(expires, MAX_EXPIRES)
    try:
        header = response.expires
    except SipParseError:
        header = None
    return asked if header is None else min(header, MAX_EXPIRES)


def min_expires(response: SipResponse) -> int | None:
    """Return the Min-Expires of a 423 answer, or None if missing or malformed."""
    try:
        value = response.min_expires
    except SipParseError:
        return None
    return None if value is None else min(value, MAX_EXPIRES)
