"""Digest authentication of the built-in engine: RFC vectors, parsing, the session."""

from __future__ import annotations

import functools
import itertools
import re

import pytest

from custom_components.sip_endpoint.worker.builtin.sip.digest import (
    MAX_CHALLENGE_LENGTH,
    MAX_PARAMS,
    MAX_STALE_RETRIES,
    Challenge,
    CredentialsRejected,
    DigestError,
    DigestSession,
    authorization_value,
    compute_response,
    parse_challenge,
    parse_challenges,
)

# RFC 7616 section 3.9.1: user Mufasa, password "Circle of Life".
RFC7616_CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", '
    "algorithm={algorithm}, "
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_RESPONSES = {
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
}
# RFC 2617 section 3.5: password "Circle Of Life".
RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


def _params(header: str) -> dict[str, str]:
    """Split an Authorization value into its parameters (quotes removed)."""
    assert header.startswith("Digest ")
    pairs = re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,\s]+)', header[len("Digest ") :])
    return {name: value.strip('"') for name, value in pairs}


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_rfc7616_example(algorithm: str) -> None:
    challenge = parse_challenge(RFC7616_CHALLENGE.format(algorithm=algorithm))
    assert challenge.qop == "auth"
    assert challenge.algorithm == algorithm
    header = authorization_value(
        challenge,
        username="Mufasa",
        password="Circle of Life",
        method="GET",
        uri="/dir/index.html",
        nc=1,
        cnonce=RFC7616_CNONCE,
    )
    params = _params(header)
    assert params == {
        "username": "Mufasa",
        "realm": "http-auth@example.org",
        "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        "uri": "/dir/index.html",
        "response": RFC7616_RESPONSES[algorithm],
        "algorithm": algorithm,
        "cnonce": RFC7616_CNONCE,
        "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
        "qop": "auth",
        "nc": "00000001",
    }


def test_rfc2617_example() -> None:
    challenge = parse_challenge(RFC2617_CHALLENGE)
    assert challenge.algorithm == "MD5"
    header = authorization_value(
        challenge,
        username="Mufasa",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        nc=1,
        cnonce="0a4f113b",
    )
    params = _params(header)
    assert params["response"] == "6629fae49393a05397450978507c4ef1"
    assert params["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"
    assert params["nc"] == "00000001"


def test_response_without_qop_is_rfc2069_form() -> None:
    # RFC 2617's example without qop: H(HA1:nonce:HA2), a value other stacks agree on.
    response = compute_response(
        algorithm="MD5",
        username="Mufasa",
        realm="testrealm@host.com",
        password="Circle Of Life",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        method="GET",
        uri="/dir/index.html",
        qop=None,
    )
    assert response == "670fd8c2df070c60b045671b8b24ff02"
    challenge = Challenge(realm="r", nonce="n")
    params = _params(
        authorization_value(
            challenge, username="u", password="p", method="REGISTER", uri="sip:x"
        )
    )
    assert "qop" not in params
    assert "nc" not in params
    assert "cnonce" not in params


def test_session_algorithms_hash_the_cnonce_into_ha1() -> None:
    response = functools.partial(
        compute_response,
        username="u",
        realm="r",
        password="p",
        nonce="n",
        method="REGISTER",
        uri="sip:r",
        qop="auth",
        nc="00000001",
    )
    for algorithm in ("MD5", "SHA-256"):
        plain = response(algorithm=algorithm, cnonce="c1")
        sess_1 = response(algorithm=f"{algorithm}-sess", cnonce="c1")
        sess_2 = response(algorithm=f"{algorithm}-sess", cnonce="c2")
        assert len({plain, sess_1, sess_2}) == 3


def test_auth_int_hashes_the_body() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", qop="auth-int"')
    assert challenge.qop == "auth-int"
    values = {
        _params(
            authorization_value(
                challenge,
                username="u",
                password="p",
                method="INVITE",
                uri="sip:x",
                cnonce="c",
                body=body,
            )
        )["response"]
        for body in (b"", b"v=0\r\n")
    }
    assert len(values) == 2


def test_challenge_fields() -> None:
    challenge = parse_challenge(
        'Digest  realm="asterisk" ,nonce=abc123,  algorithm=sha-256-SESS,'
        ' qop="auth-int, auth", stale=TRUE, opaque="o\\"q"',
        proxy=True,
    )
    assert challenge == Challenge(
        realm="asterisk",
        nonce="abc123",
        algorithm="SHA-256-sess",
        opaque='o"q',
        qop="auth",
        stale=True,
        proxy=True,
    )
    assert challenge.header_name == "Proxy-Authorization"
    assert parse_challenge('Digest realm="a", nonce="b"').header_name == "Authorization"


def test_strongest_challenge_is_chosen() -> None:
    value = 'Digest realm="a", nonce="1", algorithm=MD5, Digest realm="a", nonce="2", algorithm=SHA-256'
    assert [item.nonce for item in parse_challenges(value)] == ["1", "2"]
    assert parse_challenge(value).algorithm == "SHA-256"


def test_other_schemes_and_unknown_algorithms_are_skipped() -> None:
    value = 'Basic realm="x", Digest realm="a", nonce="1", algorithm=UNKNOWN-9, Digest realm="a", nonce="2"'
    assert [item.nonce for item in parse_challenges(value)] == ["2"]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "Digest",
        'Basic realm="x"',
        'Digest realm="a"',
        'Digest nonce="a"',
        'Digest realm="a", nonce="b", algorithm=ROT13',
        'Digest realm="a", nonce="b", qop="auth-conf"',
        'Digest realm="a", nonce="b", realm="c"',
        'Digest realm="a, nonce="b"',
        'Digest realm="a" nonce="b"',
        "Digest realm=, nonce=b",
        'Digest realm="a", nonce="b\r\nX: y"',
        'Digest realm="a", nonce="b\x00"',
        'Digest realm="a", nonce',
        'Digest realm=="a", nonce="b"',
        'Digest realm="a"x, nonce="b"',
        '"Digest" realm="a", nonce="b"',
        "Digest realm=a\\b, nonce=c",
        'Digest realm="a", nonce="' + "n" * 1100 + '"',
        'Digest realm="a", nonce="b", '
        + ", ".join(f"p{i}=1" for i in range(MAX_PARAMS)),
        "Digest " + "x" * MAX_CHALLENGE_LENGTH,
        ", ".join(['Digest realm="a", nonce="b"'] * 9),
        "\udcff\udcfe",
    ],
)
def test_garbage_challenges_raise_digest_error(value: str) -> None:
    with pytest.raises(DigestError):
        parse_challenges(value)


def test_bounds_are_checked_before_scanning() -> None:
    with pytest.raises(DigestError, match="too long"):
        parse_challenge('Digest realm="a", nonce="b"' + " " * MAX_CHALLENGE_LENGTH)


def _session(password: str = "s3cret-pass") -> DigestSession:
    counter = itertools.count(1)
    return DigestSession("2001", password, cnonce_factory=lambda: f"cn{next(counter)}")


def test_session_answers_401_and_counts_nc_per_nonce() -> None:
    session = _session()
    challenge = 'Digest realm="pbx", nonce="n1", qop="auth", opaque="op"'
    [(name, value)] = session.answer(401, [challenge], method="REGISTER", uri="sip:pbx")
    assert name == "Authorization"
    first = _params(value)
    assert first["nc"] == "00000001"
    assert first["cnonce"] == "cn1"
    assert first["opaque"] == "op"
    assert first["response"] == compute_response(
        algorithm="MD5",
        username="2001",
        realm="pbx",
        password="s3cret-pass",
        nonce="n1",
        method="REGISTER",
        uri="sip:pbx",
        qop="auth",
        nc="00000001",
        cnonce="cn1",
    )
    session.accepted()
    [(_, again)] = session.preemptive(method="REGISTER", uri="sip:pbx")
    assert _params(again)["nc"] == "00000002"
    assert _params(again)["cnonce"] == "cn1"
    # A new nonce starts again at 1 with a new cnonce.
    session.accepted()
    [(_, fresh)] = session.answer(
        401,
        ['Digest realm="pbx", nonce="n2", qop="auth"'],
        method="REGISTER",
        uri="sip:pbx",
    )
    assert (_params(fresh)["nc"], _params(fresh)["cnonce"]) == ("00000001", "cn2")


def test_session_answers_407_with_proxy_authorization() -> None:
    session = _session()
    headers = session.answer(
        407,
        ['Digest realm="proxy", nonce="p1", algorithm=SHA-256'],
        method="INVITE",
        uri="sip:2002@pbx",
    )
    assert [name for name, _ in headers] == ["Proxy-Authorization"]
    assert _params(headers[0][1])["algorithm"] == "SHA-256"
    assert len(_params(headers[0][1])["response"]) == 64


def test_proxy_then_registrar_challenges_keep_both_credentials() -> None:
    session = _session()
    [(name, _)] = session.answer(
        407,
        ['Digest realm="proxy", nonce="p1", qop="auth"'],
        method="REGISTER",
        uri="sip:r",
    )
    assert name == "Proxy-Authorization"
    headers = dict(
        session.answer(
            401,
            ['Digest realm="registrar", nonce="r1", qop="auth"'],
            method="REGISTER",
            uri="sip:r",
        )
    )
    assert set(headers) == {"Authorization", "Proxy-Authorization"}
    assert _params(headers["Authorization"])["nc"] == "00000001"
    # The proxy's nonce is reused with the next count.
    assert _params(headers["Proxy-Authorization"])["nonce"] == "p1"
    assert _params(headers["Proxy-Authorization"])["nc"] == "00000002"


def test_session_picks_the_strongest_header_per_realm() -> None:
    session = _session()
    headers = session.answer(
        401,
        [
            'Digest realm="pbx", nonce="m", algorithm=MD5',
            'Digest realm="pbx", nonce="s", algorithm=SHA-256',
            "garbage",
        ],
        method="REGISTER",
        uri="sip:pbx",
    )
    assert len(headers) == 1
    assert _params(headers[0][1])["nonce"] == "s"


def test_same_nonce_again_means_wrong_password() -> None:
    session = _session()
    challenge = 'Digest realm="pbx", nonce="n1"'
    session.answer(401, [challenge], method="REGISTER", uri="sip:pbx")
    with pytest.raises(CredentialsRejected) as caught:
        session.answer(401, [challenge], method="REGISTER", uri="sip:pbx")
    assert caught.value.realm == "pbx"


def test_stale_nonce_is_retried_with_the_new_nonce() -> None:
    session = _session()
    session.answer(
        401, ['Digest realm="pbx", nonce="n1"'], method="REGISTER", uri="sip:pbx"
    )
    [(_, value)] = session.answer(
        401,
        ['Digest realm="pbx", nonce="n2", stale=true'],
        method="REGISTER",
        uri="sip:pbx",
    )
    assert _params(value)["nonce"] == "n2"
    # Stale forever is a loop the session ends (after MAX_STALE_RETRIES).
    for number in range(3, 3 + MAX_STALE_RETRIES - 1):
        session.answer(
            401,
            [f'Digest realm="pbx", nonce="n{number}", stale=true'],
            method="REGISTER",
            uri="sip:pbx",
        )
    endless = ['Digest realm="pbx", nonce="last", stale=true']
    with pytest.raises(CredentialsRejected, match="stale"):
        session.answer(401, endless, method="REGISTER", uri="sip:pbx")


def test_plain_rechallenge_with_new_nonce_is_retried_once() -> None:
    session = _session()
    session.answer(
        401, ['Digest realm="pbx", nonce="n1"'], method="REGISTER", uri="sip:pbx"
    )
    session.answer(
        401, ['Digest realm="pbx", nonce="n2"'], method="REGISTER", uri="sip:pbx"
    )
    with pytest.raises(CredentialsRejected):
        session.answer(
            401, ['Digest realm="pbx", nonce="n3"'], method="REGISTER", uri="sip:pbx"
        )


def test_accepted_starts_a_new_round() -> None:
    session = _session()
    challenge = 'Digest realm="pbx", nonce="n1"'
    session.answer(401, [challenge], method="REGISTER", uri="sip:pbx")
    session.accepted()
    # After success the same nonce may be challenged again only if our reuse failed.
    session.answer(
        401, ['Digest realm="pbx", nonce="n2"'], method="REGISTER", uri="sip:pbx"
    )
    assert session.realms == ["pbx"]
    session.forget(["pbx"])
    assert session.realms == []
    assert session.preemptive(method="REGISTER", uri="sip:pbx") == []


def test_session_refuses_responses_without_challenges() -> None:
    session = _session()
    with pytest.raises(DigestError):
        session.answer(401, [], method="REGISTER", uri="sip:pbx")
    with pytest.raises(DigestError):
        session.answer(401, ["Digest nonsense"], method="REGISTER", uri="sip:pbx")
    with pytest.raises(DigestError):
        session.answer(
            403, ['Digest realm="a", nonce="b"'], method="REGISTER", uri="sip:pbx"
        )


def test_no_secret_in_repr_or_errors() -> None:
    password = "top-secret-password"
    session = _session(password)
    challenge = 'Digest realm="pbx", nonce="n1", qop="auth"'
    [(_, value)] = session.answer(401, [challenge], method="REGISTER", uri="sip:pbx")
    response = _params(value)["response"]
    texts = [repr(session), str(session.realms)]
    with pytest.raises(CredentialsRejected) as rejected:
        session.answer(401, [challenge], method="REGISTER", uri="sip:pbx")
    texts.extend((str(rejected.value), repr(rejected.value)))
    with pytest.raises(DigestError) as bad:
        DigestSession("2001", password + "\n")
    texts.append(str(bad.value))
    for text in texts:
        assert password not in text
        assert response not in text


def test_control_characters_in_credentials_are_refused() -> None:
    with pytest.raises(DigestError):
        DigestSession("20\r\n01", "p")
    challenge = Challenge(realm="r", nonce="n", qop="auth")
    with pytest.raises(DigestError):
        authorization_value(
            challenge, username="u", password="p", method="REGISTER", uri="sip:x"
        )  # qop without a cnonce


def test_quotes_in_values_are_escaped() -> None:
    challenge = parse_challenge('Digest realm="a\\"b", nonce="n\\\\"')
    assert (challenge.realm, challenge.nonce) == ('a"b', "n\\")
    value = authorization_value(
        challenge, username='us"er', password="p", method="M", uri="sip:x"
    )
    assert 'realm="a\\"b"' in value
    assert 'username="us\\"er"' in value
    # Our own value parses back to the same realm and nonce.
    assert parse_challenge(value) == challenge
