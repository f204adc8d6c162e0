"""Build the SIP URIs an account uses from its settings."""

from ...protocol.payloads import AccountParams
from ...protocol.uris import (
    host_port,
    registrar_uri as protocol_registrar_uri,
    transport_param,
)


def id_uri(params: AccountParams) -> str:
    """Return the account's address of record, ``sip:<extension>@<domain>``."""
    return f"sip:{params.extension}@{host_port(params.domain, None)}"


def registrar_uri(params: AccountParams) -> str:
    """Return the registrar, ``sip:<domain>[:port][;transport=..]``."""
    return protocol_registrar_uri(params.domain, params.port, params.transport)


def proxy_uri(params: AccountParams) -> str | None:
    """Return the outbound proxy as a loose route, or None."""
    proxy = (params.outbound_proxy or "").strip()
    if not proxy:
        return None
    if not proxy.lower().startswith(("sip:", "sips:")):
        proxy = f"sip:{proxy}"
    if ";transport=" not in proxy.lower():
        proxy += transport_param(params.transport)
    if ";lr" not in proxy.lower():
        proxy += ";lr"
    return proxy


def target_uri(target: str, params: AccountParams) -> str:
    """Return the URI to call: a SIP URI as given, or a number at the account's domain."""
    target = target.strip()
    if target.lower().startswith(("sip:", "sips:", "tel:")):
        return target
    if "@" in target:
        return f"sip:{target}"
    return f"sip:{target}@{host_port(params.domain, params.port)}"
