"""HTTP digest authentication for SIP (RFC 7616, RFC 2617, RFC 3261 section 22, RFC 8760).

``parse_challenges`` reads a WWW-Authenticate or Proxy-Authenticate value into
``Challenge`` objects (bounded: length, parameter count, value length; anything else
raises ``DigestError``). ``compute_response`` is the digest itself; ``DigestSession``
holds one account's credentials, answers 401 and 407 responses, counts ``nc`` per
nonce, retries stale nonces and tells a rejected password (``CredentialsRejected``)
from a challenge to answer.

Secrets stay inside: no repr, exception or log line here contains the password or a
computed response. The header values returned by ``DigestSession`` do contain the
response; callers put them on the wire and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import secrets
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

MAX_CHALLENGE_LENGTH: Final = 4096
MAX_PARAMS: Final = 32
MAX_VALUE_LENGTH: Final = 1024
MAX_CHALLENGES: Final = 8
MAX_STALE_RETRIES: Final = 3
MAX_PLAIN_RETRIES: Final = 1
MAX_CREDENTIAL_LENGTH: Final = 256

_TOKEN_CHARS: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_WHITESPACE: Final = " \t"

# Algorithm name (upper case) -> (hashlib name, session variant, preference).
_ALGORITHMS: Final[dict[str, tuple[str, bool, int]]] = {
    "MD5": ("md5", False, 1),
    "MD5-SESS": ("md5", True, 1),
    "SHA-256": ("sha256", False, 2),
    "SHA-256-SESS": ("sha256", True, 2),
    "SHA-512-256": ("sha512_256", False, 3),
    "SHA-512-256-SESS": ("sha512_256", True, 3),
}
_CANONICAL: Final = {
    "MD5": "MD5",
    "MD5-SESS": "MD5-sess",
    "SHA-256": "SHA-256",
    "SHA-256-SESS": "SHA-256-sess",
    "SHA-512-256": "SHA-512-256",
    "SHA-512-256-SESS": "SHA-512-256-sess",
}


class DigestError(ValueError):
    """A challenge that cannot be parsed or answered (garbage, unsupported, too big)."""


class CredentialsRejected(Exception):
    """The server challenged again after our answer: the credentials are wrong."""

    def __init__(self, realm: str, reason: str) -> None:
        """Name the realm and why; never the password or the response."""
        super().__init__(f"credentials rejected for realm {realm!r}: {reason}")
        self.realm = realm
        self.reason = reason


_SUPPORTED: Final = tuple(
    _CANONICAL[name]
    for name, (hash_name, _, _) in _ALGORITHMS.items()
    if hash_name in hashlib.algorithms_available or hash_name in {"md5", "sha256"}
)


def supported_algorithms() -> tuple[str, ...]:
    """Return the algorithm names this interpreter can compute."""
    return _SUPPORTED


@dataclass(frozen=True, slots=True)
class Challenge:
    """One Digest challenge, as offered by a 401 or 407 response."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    opaque: str | None = None
    qop: str | None = None
    stale: bool = False
    proxy: bool = False
    userhash: bool = False

    @property
    def header_name(self) -> str:
        """The request header that answers this challenge."""
        return "Proxy-Authorization" if self.proxy else "Authorization"

    @property
    def strength(self) -> int:
        """Preference among offered algorithms (higher is stronger)."""
        return _ALGORITHMS[self.algorithm.upper()][2]


class _Scanner:
    """A cursor over one header value; every read is bounded by the value's length."""

    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _WHITESPACE:
            self.pos += 1

    def token(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _TOKEN_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        """Read a quoted-string (the cursor is on the opening quote)."""
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                return "".join(out)
            if char == "\\":
                self.pos += 1
                if self.pos >= len(self.text):
                    break
                char = self.text[self.pos]
            if (ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F:
                raise DigestError("control character in a quoted value")
            out.append(char)
            self.pos += 1
        raise DigestError("unterminated quoted value")


def _read_params(scanner: _Scanner) -> tuple[dict[str, str], str | None]:
    """Read ``name=value`` pairs up to the end or the next scheme.

    Returns the parameters and the next challenge's scheme, if one follows.
    """
    params: dict[str, str] = {}
    while True:
        scanner.skip_space()
        while scanner.peek() == ",":
            scanner.pos += 1
            scanner.skip_space()
        if scanner.at_end():
            return params, None
        name = scanner.token()
        if not name:
            raise DigestError("expected a parameter name")
        after_name = scanner.pos
        scanner.skip_space()
        if scanner.peek() != "=":
            if scanner.peek() in {"", ","}:
                raise DigestError("parameter without a value")
            scanner.pos = after_name
            return params, name
        scanner.pos += 1
        scanner.skip_space()
        if scanner.peek() == '"':
            value = scanner.quoted()
        else:
            value = scanner.token()
            if not value:
                raise DigestError("malformed parameter value")
        if len(value) > MAX_VALUE_LENGTH:
            raise DigestError("parameter value too long")
        key = name.lower()
        if key in params:
            raise DigestError("duplicate parameter")
        if len(params) >= MAX_PARAMS:
            raise DigestError("too many parameters")
        params[key] = value
        scanner.skip_space()
        if not scanner.at_end() and scanner.peek() != ",":
            raise DigestError("expected a comma between parameters")


def _choose_qop(offered: str) -> str:
    options = {item.strip().lower() for item in offered.split(",")}
    if "auth" in options:
        return "auth"
    if "auth-int" in options:
        return "auth-int"
    raise DigestError("no supported qop offered")


def _challenge_from(params: dict[str, str], *, proxy: bool) -> Challenge:
    if "realm" not in params or "nonce" not in params:
        raise DigestError("Digest challenge without realm or nonce")
    algorithm_name = params.get("algorithm", "MD5").upper()
    if algorithm_name not in _ALGORITHMS:
        raise DigestError("unsupported digest algorithm")
    if _CANONICAL[algorithm_name] not in _SUPPORTED:
        raise DigestError("digest algorithm not available in this interpreter")
    qop = _choose_qop(params["qop"]) if "qop" in params else None
    return Challenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=_CANONICAL[algorithm_name],
        opaque=params.get("opaque"),
        qop=qop,
        stale=params.get("stale", "").lower() == "true",
        proxy=proxy,
        userhash=params.get("userhash", "").lower() == "true",
    )


def parse_challenges(value: str, *, proxy: bool = False) -> list[Challenge]:
    """Parse every usable Digest challenge in one header value.

    Challenges of other schemes are skipped; a Digest challenge this module cannot
    answer (unknown algorithm or qop) is skipped when another one in the same value
    can be answered. Raises ``DigestError`` when nothing usable is left or the value
    is malformed or too big.
    """
    if len(value) > MAX_CHALLENGE_LENGTH:
        raise DigestError("challenge too long")
    scanner = _Scanner(value)
    scanner.skip_space()
    scheme = scanner.token()
    if not scheme:
        raise DigestError("no authentication scheme")
    found: list[Challenge] = []
    unusable: DigestError | None = None
    count = 0
    while scheme:
        count += 1
        if count > MAX_CHALLENGES:
            raise DigestError("too many challenges")
        if not scanner.at_end() and scanner.peek() not in _WHITESPACE:
            raise DigestError("expected a space after the scheme")
        params, next_scheme = _read_params(scanner)
        if scheme.lower() == "digest":
            try:
                found.append(_challenge_from(params, proxy=proxy))
            except DigestError as err:
                unusable = err
        scheme = next_scheme or ""
    if not found:
        raise unusable or DigestError("no Digest challenge")
    return found


def parse_challenge(value: str, *, proxy: bool = False) -> Challenge:
    """Parse a header value and return its strongest usable Digest challenge."""
    return max(parse_challenges(value, proxy=proxy), key=lambda item: item.strength)


def _hash(algorithm: str, data: str) -> str:
    hash_name = _ALGORITHMS[algorithm.upper()][0]
    return hashlib.new(hash_name, data.encode()).hexdigest()


def compute_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None,
    nc: str = "",
    cnonce: str = "",
    body: bytes = b"",
) -> str:
    """Return the ``response`` value (lower-case hex) for one request.

    With ``qop`` None this is RFC 2069's ``H(HA1:nonce:HA2)``; ``-sess`` algorithms
    need ``cnonce``; ``auth-int`` hashes ``body`` into HA2.
    """
    if algorithm.upper() not in _ALGORITHMS:
        raise DigestError("unsupported digest algorithm")
    _, session, _ = _ALGORITHMS[algorithm.upper()]
    ha1 = _hash(algorithm, f"{username}:{realm}:{password}")
    if session:
        ha1 = _hash(algorithm, f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        body_hash = hashlib.new(_ALGORITHMS[algorithm.upper()][0], body).hexdigest()
        ha2 = _hash(algorithm, f"{method}:{uri}:{body_hash}")
    else:
        ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop is None:
        return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")
    return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_credential(value: str, what: str) -> None:
    if len(value) > MAX_CREDENTIAL_LENGTH:
        raise DigestError(f"{what} too long")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise DigestError(f"control character in the {what}")


def authorization_value(
    challenge: Challenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    nc: int = 1,
    cnonce: str = "",
    body: bytes = b"",
) -> str:
    """Return the Authorization (or Proxy-Authorization) value answering ``challenge``."""
    _check_credential(username, "user name")
    _check_credential(password, "password")
    _check_credential(uri, "request URI")
    if not 0 < nc <= 0xFFFFFFFF:
        raise DigestError("nonce count out of range")
    nc_text = f"{nc:08x}"
    needs_cnonce = challenge.qop is not None or challenge.algorithm.endswith("-sess")
    if needs_cnonce and not cnonce:
        raise DigestError("a cnonce is needed for this challenge")
    response = compute_response(
        algorithm=challenge.algorithm,
        username=username,
        realm=challenge.realm,
        password=password,
        nonce=challenge.nonce,
        method=method,
        uri=uri,
        qop=challenge.qop,
        nc=nc_text,
        cnonce=cnonce,
        body=body,
    )
    shown_user = (
        _hash(challenge.algorithm, f"{username}:{challenge.realm}")
        if challenge.userhash
        else username
    )
    parts = [
        f"username={_quote(shown_user)}",
        f"realm={_quote(challenge.realm)}",
        f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
        f"algorithm={challenge.algorithm}",
    ]
    if needs_cnonce:
        parts.append(f"cnonce={_quote(cnonce)}")
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    if challenge.qop is not None:
        parts.extend((f"qop={challenge.qop}", f"nc={nc_text}"))
    if challenge.userhash:
        parts.append("userhash=true")
    return "Digest " + ", ".join(parts)


@dataclass(slots=True)
class _RealmState:
    """What the session remembers about one realm's current nonce."""

    challenge: Challenge
    cnonce: str
    nc: int = 0
    answered: bool = False
    stale_retries: int = 0
    plain_retries: int = 0


def _default_cnonce() -> str:
    return secrets.token_hex(8)


class DigestSession:
    """One account's digest credentials and the nonces its servers handed out.

    Call ``answer`` with a 401/407 response's challenges to get the headers for the
    retried request; ``preemptive`` for the headers of a new request (reusing cached
    nonces with the next ``nc``); ``accepted`` when a request got through, so later
    challenges start a new round.
    """

    __slots__ = ("_cnonce_factory", "_password", "_states", "username")

    def __init__(
        self,
        username: str,
        password: str,
        *,
        cnonce_factory: Callable[[], str] = _default_cnonce,
    ) -> None:
        """Hold the credentials; ``cnonce_factory`` makes client nonces."""
        _check_credential(username, "user name")
        _check_credential(password, "password")
        self.username = username
        self._password = password
        self._cnonce_factory = cnonce_factory
        self._states: dict[tuple[bool, str], _RealmState] = {}

    def __repr__(self) -> str:
        """Name the user and realms, never the password."""
        realms = sorted(realm for _, realm in self._states)
        return f"<DigestSession user={self.username!r} realms={realms!r}>"

    @property
    def realms(self) -> list[str]:
        """The realms with a cached nonce."""
        return sorted({realm for _, realm in self._states})

    def answer(
        self,
        status: int,
        challenge_values: Iterable[str],
        *,
        method: str,
        uri: str,
        body: bytes = b"",
    ) -> list[tuple[str, str]]:
        """Return ``(header name, value)`` pairs answering a 401 or 407 response.

        ``challenge_values`` are the response's WWW-Authenticate (401) or
        Proxy-Authenticate (407) header values. The result answers every challenged
        realm and repeats the cached credentials of the session's other realms (``nc``
        + 1), so a request that passed a proxy's 407 keeps its Proxy-Authorization
        when the registrar challenges next. Raises ``DigestError`` when no challenge
        is usable and ``CredentialsRejected`` when the server refused our last answer
        (a challenge without ``stale=true`` after we answered its realm).
        """
        if status not in {401, 407}:
            raise DigestError("only 401 and 407 responses carry challenges")
        proxy = status == 407
        best: dict[str, Challenge] = {}
        error: DigestError | None = None
        for count, value in enumerate(challenge_values):
            if count >= MAX_CHALLENGES:
                raise DigestError("too many challenge headers")
            try:
                challenges = parse_challenges(value, proxy=proxy)
            except DigestError as err:
                error = err
                continue
            for challenge in challenges:
                current = best.get(challenge.realm)
                if current is None or challenge.strength > current.strength:
                    best[challenge.realm] = challenge
        if not best:
            raise error or DigestError("no challenge in the response")
        for challenge in best.values():
            self._take(challenge)
        # RFC 3261 22.3: the retried request carries every credential the session
        # holds, so a proxy's 407 answered after a registrar's 401 keeps both.
        return [
            self._header(self._states[key], method, uri, body)
            for key in sorted(self._states)
        ]

    def _take(self, challenge: Challenge) -> None:
        """Record a new challenge for its realm, or raise if it rejects our answer."""
        key = (challenge.proxy, challenge.realm)
        state = self._states.get(key)
        if state is None or not state.answered:
            self._states[key] = _RealmState(challenge, self._cnonce_factory())
            return
        if challenge.stale:
            if state.stale_retries >= MAX_STALE_RETRIES:
                raise CredentialsRejected(challenge.realm, "nonce stale too often")
            stale_retries, plain_retries = state.stale_retries + 1, state.plain_retries
        elif challenge.nonce == state.challenge.nonce:
            del self._states[key]
            raise CredentialsRejected(challenge.realm, "challenged again")
        else:
            if state.plain_retries >= MAX_PLAIN_RETRIES:
                del self._states[key]
                raise CredentialsRejected(challenge.realm, "challenged again")
            stale_retries, plain_retries = state.stale_retries, state.plain_retries + 1
        self._states[key] = _RealmState(
            challenge,
            self._cnonce_factory(),
            stale_retries=stale_retries,
            plain_retries=plain_retries,
        )

    def _header(
        self, state: _RealmState, method: str, uri: str, body: bytes
    ) -> tuple[str, str]:
        state.nc += 1
        state.answered = True
        value = authorization_value(
            state.challenge,
            username=self.username,
            password=self._password,
            method=method,
            uri=uri,
            nc=state.nc,
            cnonce=state.cnonce,
            body=body,
        )
        return state.challenge.header_name, value

    def preemptive(
        self, *, method: str, uri: str, body: bytes = b""
    ) -> list[tuple[str, str]]:
        """Return headers for a new request from the cached nonces (``nc`` + 1 each)."""
        return [
            self._header(self._states[key], method, uri, body)
            for key in sorted(self._states)
        ]

    def accepted(self) -> None:
        """Note that a request got through: the next challenge starts a new round."""
        for state in self._states.values():
            state.answered = False
            state.stale_retries = 0
            state.plain_retries = 0

    def forget(self, realms: Sequence[str] | None = None) -> None:
        """Drop cached nonces (all, or those of ``realms``)."""
        if realms is None:
            self._states.clear()
            return
        for key in [key for key in self._states if key[1] in realms]:
            del self._states[key]
