"""Remove secrets from pjlib log lines before they leave the worker."""

from collections.abc import Iterable
import re

_AUTH_HEADER_RE = re.compile(
    r"^(\s*(?:Proxy-)?Authori[sz]ation\s*:).*$", re.IGNORECASE | re.MULTILINE
)
_PASSWORD_RE = re.compile(
    r"(\b(?:password|passwd|pwd|secret|data)\s*[=:]\s*)(\"[^\"]*\"|\S+)", re.IGNORECASE
)
REDACTED = "<redacted>"


def redact(message: str, secrets: Iterable[str] = ()) -> str:
    """Return ``message`` without credentials.

    Drops the values of Authorization and Proxy-Authorization headers, anything that
    looks like ``password=...``, and every literal occurrence of a known secret.
    """
    text = _AUTH_HEADER_RE.sub(rf"\1 {REDACTED}", message)
    text = _PASSWORD_RE.sub(rf"\1{REDACTED}", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text
