"""Edge paths of the built-in engine's digest module: malformed input, limits, rounds."""

from __future__ import annotations

import re

import pytest

from custom_components.sip_endpoint.worker.builtin.sip.digest import (
    MAX_CHALLENGES,
    MAX_CREDENTIAL_LENGTH,
    Challenge,
    CredentialsRejected,
    DigestError,
    DigestSession,
    authorization_value,
    compute_response,
    parse_challenge,
    supported_algorithms,
)


def test_supported_algorithms_always_include_md5_and_sha256() -> None:
    """MD5 and SHA-256 (and their -sess forms) are always computable."""
    names = supported_algorithms()
    assert {"MD5", "MD5-sess", "SHA-256", "SHA-256-sess"} <= set(names)
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('Digest realm="abc\\', "unterminated quoted value"),
        ('Digest realm="abc', "unterminated quoted value"),
        ('Digest realm="a\x01b", nonce="n"', "control character"),
        ('Digest realm="a\x7fb", nonce="n"', "control character"),
        ('Digest realm="a", "quoted-name"', "expected a parameter name"),
    ],
)
def test_malformed_challenge_is_refused(value: str, message: str) -> None:
    """A backslash at the end, a control character or a nameless value is an error."""
    with pytest.raises(DigestError, match=message):
        parse_challenge(value)


def test_tab_inside_a_quoted_value_is_kept() -> None:
    """HTAB is the one control character a quoted string may hold."""
    assert parse_challenge('Digest realm="a\tb", nonce="n"').realm == "a\tb"


def test_compute_response_refuses_an_unknown_algorithm() -> None:
    """An algorithm outside the table raises instead of hashing with something else."""
    with pytest.raises(DigestError, match="unsupported digest algorithm"):
        compute_response(
            algorithm="SHA-1",
            username="u",
            realm="r",
            password="p",
            nonce="n",
            method="REGISTER",
            uri="sip:r",
            qop=None,
        )


def test_overlong_credential_is_refused_without_echoing_it() -> None:
    """A password over the limit raises an error that does not contain it."""
    password = "s" * (MAX_CREDENTIAL_LENGTH + 1)
    with pytest.raises(DigestError, match="password too long") as caught:
        DigestSession("alice", password)
    assert password not in str(caught.value)


@pytest.mark.parametrize("nc", [0, -1, 0x1_0000_0000])
def test_nonce_count_out_of_range(nc: int) -> None:
    """``nc`` must fit the 8 hex digits RFC 7616 gives it and be positive."""
    with pytest.raises(DigestError, match="nonce count out of range"):
        authorization_value(
            Challenge(realm="r", nonce="n"),
            username="u",
            password="p",
            method="REGISTER",
            uri="sip:r",
            nc=nc,
        )


def test_userhash_challenge_hides_the_user_name() -> None:
    """With userhash=true the username is H(user:realm) and the flag is echoed."""
    challenge = parse_challenge(
        'Digest realm="r", nonce="n", algorithm=SHA-256, userhash=true'
    )
    assert challenge.userhash
    value = authorization_value(
        challenge, username="alice", password="p", method="REGISTER", uri="sip:r"
    )
    assert value.endswith(", userhash=true")
    assert "alice" not in value
    assert re.search(r'username="[0-9a-f]{64}"', value)


def test_session_default_cnonce_is_random_hex() -> None:
    """Without a factory each round's cnonce is 16 fresh hex digits."""
    session = DigestSession("alice", "secret")
    challenge = 'Digest realm="r", nonce="n1", qop="auth"'
    first = session.answer(401, [challenge], method="REGISTER", uri="sip:r")
    session.accepted()
    second = session.answer(
        401,
        ['Digest realm="r", nonce="n2", qop="auth"'],
        method="REGISTER",
        uri="sip:r",
    )
    cnonces = [re.search(r'cnonce="([^"]*)"', h[0][1]) for h in (first, second)]
    assert all(match and re.fullmatch(r"[0-9a-f]{16}", match[1]) for match in cnonces)
    assert cnonces[0] and cnonces[1] and cnonces[0][1] != cnonces[1][1]


def test_too_many_challenge_headers() -> None:
    """More WWW-Authenticate headers than the limit are refused."""
    session = DigestSession("alice", "secret")
    values = [f'Digest realm="r{n}", nonce="n"' for n in range(MAX_CHALLENGES + 1)]
    with pytest.raises(DigestError, match="too many challenge headers"):
        session.answer(401, values, method="REGISTER", uri="sip:r")


def test_weaker_challenge_in_a_later_header_does_not_replace_a_stronger_one() -> None:
    """Across headers, the strongest algorithm per realm wins, whatever the order."""
    session = DigestSession("alice", "secret", cnonce_factory=lambda: "c")
    headers = session.answer(
        401,
        [
            'Digest realm="r", nonce="n", algorithm=SHA-256',
            'Digest realm="r", nonce="n", algorithm=MD5',
        ],
        method="REGISTER",
        uri="sip:r",
    )
    assert len(headers) == 1
    assert "algorithm=SHA-256" in headers[0][1]


def test_accepted_starts_a_new_round() -> None:
    """After ``accepted`` the same nonce challenged again is a new round, not a refusal.

    Without ``accepted`` the same challenge after an answer means wrong credentials.
    """
    challenge = ['Digest realm="r", nonce="n"']
    session = DigestSession("alice", "secret", cnonce_factory=lambda: "c")
    session.answer(401, challenge, method="REGISTER", uri="sip:r")
    session.accepted()
    again = session.answer(401, challenge, method="REGISTER", uri="sip:r")
    assert again[0][0] == "Authorization"
    with pytest.raises(CredentialsRejected, match="challenged again"):
        session.answer(401, challenge, method="REGISTER", uri="sip:r")


def test_forget_everything_drops_every_realm() -> None:
    """``forget()`` without realms empties the cache; no preemptive headers follow."""
    session = DigestSession("alice", "secret", cnonce_factory=lambda: "c")
    session.answer(
        401,
        ['Digest realm="a", nonce="n"', 'Digest realm="b", nonce="n"'],
        method="REGISTER",
        uri="sip:r",
    )
    assert session.realms == ["a", "b"]
    session.forget()
    assert session.realms == []
    assert session.preemptive(method="REGISTER", uri="sip:r") == []
