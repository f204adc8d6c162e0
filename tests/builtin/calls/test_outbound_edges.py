"""Edge paths of outbound calls: hung up before sending, no route, no RTP port, forks.

The real built-in stack runs in the test's loop on 127.0.0.1 (``_started`` of
``test_call_release``); the callee is the raw SIP peer, run in a thread.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pytest

from custom_components.sip_endpoint.protocol.payloads import (
    CallPhase,
    EndCause,
    EventName,
    MakeCallParams,
)
from custom_components.sip_endpoint.worker.builtin.media.session import MediaSession
from custom_components.sip_endpoint.worker.builtin.outbound import (
    MAX_FORKS,
    OutboundCall,
)
from custom_components.sip_endpoint.worker.builtin.sip import (
    transaction as transaction_module,
)
from tests.sipbed.audio import write_tone

from .rawpeer import Message, RawPeer, sdp
from .test_call_edges import refuse_invalid_names
from .test_call_release import WatchedStack, _started

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from custom_components.sip_endpoint.worker.builtin.account import BuiltinAccount

CALL_LOGGER = "custom_components.sip_endpoint.worker.builtin.call"
OUTBOUND_LOGGER = "custom_components.sip_endpoint.worker.builtin.outbound"


@pytest.fixture
async def stack_and_account(
    socket_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[WatchedStack, BuiltinAccount]]:
    """Return a started in-process stack with extension 2040 (not registered)."""
    refuse_invalid_names(monkeypatch)
    stack, account = await _started()
    try:
        yield stack, account
    finally:
        await stack.close()


@pytest.fixture
def callee(stack_and_account: tuple[WatchedStack, Any]) -> Iterator[RawPeer]:
    """Return a raw peer that answers the stack's INVITEs."""
    raw = RawPeer("2040", stack_and_account[0].sip_port)
    yield raw
    raw.close()


def _place(
    stack: WatchedStack, account: BuiltinAccount, params: MakeCallParams
) -> OutboundCall:
    call = stack.start_outbound_call(account, params)
    assert isinstance(call, OutboundCall)
    return call


def _params(callee: RawPeer, **extra: Any) -> MakeCallParams:
    return MakeCallParams(
        account_id="ext-2040", target=f"sip:9009@127.0.0.1:{callee.local_port}", **extra
    )


def _tagged(tag: str) -> Any:
    return lambda message: message.header("to").endswith(f";tag={tag}")


def _authorized(message: Message) -> bool:
    return bool(message.header("authorization"))


async def _answer(callee: RawPeer, invite: Message, tag: str) -> None:
    await asyncio.to_thread(callee.answer, invite, tag)


async def _answered(
    stack: WatchedStack, account: BuiltinAccount, callee: RawPeer, **extra: Any
) -> tuple[OutboundCall, Message]:
    """Place a call to ``callee`` (``extra`` params), answer it (To tag "t"), get ACK."""
    call = _place(stack, account, _params(callee, **extra))
    invite = await asyncio.to_thread(callee.wait, "INVITE", request=True)
    await _answer(callee, invite, "t")
    await asyncio.to_thread(callee.wait, "ACK", request=True, where=_tagged("t"))
    return call, invite


async def _accept_bye(callee: RawPeer, tag: str = "t") -> None:
    """Wait for the BYE in the dialog with To tag ``tag``; answer it 200."""
    bye = await asyncio.to_thread(callee.wait, "BYE", request=True, where=_tagged(tag))
    await asyncio.to_thread(callee.respond, bye, 200)


async def test_a_call_hung_up_before_its_invite_ends_487_and_sends_nothing(
    stack_and_account: tuple[WatchedStack, BuiltinAccount],
    callee: RawPeer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hung up at once: call_ended 487 (local); the RTP port it opened is closed."""
    stack, account = stack_and_account
    opened: list[MediaSession] = []
    real_open = MediaSession.open

    async def watched_open(*args: Any, **kwargs: Any) -> MediaSession:
        session = await real_open(*args, **kwargs)
        opened.append(session)
        return session

    monkeypatch.setattr(MediaSession, "open", watched_open)
    call = _place(stack, account, _params(callee))
    call.hangup(200)
    ended = await stack.next(EventName.CALL_ENDED)
    assert (ended.call_id, ended.code, ended.cause) == (
        call.call_id,
        487,
        EndCause.LOCAL,
    )
    assert call.call_id not in stack.calls
    await stack.wait_until(lambda: len(opened) == 1, 5)
    assert opened[0]._closed
    assert call.media is None
    call.hangup(200)  # a second hangup of an ended call changes nothing
    assert stack.events.empty()
    await asyncio.to_thread(callee.count, "INVITE", 0, 0.3)
    assert not any(m.method == "INVITE" for m in callee._inbox)


async def test_an_unresolvable_target_ends_the_call_503(
    stack_and_account: tuple[WatchedStack, BuiltinAccount],
) -> None:
    """A host name that does not resolve: call_ended 503 naming the host."""
    stack, account = stack_and_account
    call = _place(
        stack,
        account,
        MakeCallParams(account_id="ext-2040", target="sip:9009@host.invalid"),
    )
    ended = await stack.next(EventName.CALL_ENDED)
    assert (ended.call_id, ended.code) == (call.call_id, 503)
    assert ended.cause is EndCause.FAILED
    assert "host.invalid" in ended.reason
    assert not ended.answered


async def test_no_free_rtp_port_ends_the_call_500(
    stack_and_account: tuple[WatchedStack, BuiltinAccount],
    callee: RawPeer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When no RTP port can be opened the call ends 500 before any INVITE."""
    stack, account = stack_and_account

    async def no_port(*args: Any, **kwargs: Any) -> MediaSession:
        raise OSError(98, "Address already in use")

    monkeypatch.setattr(MediaSession, "open", no_port)
    call = _place(stack, account, _params(callee))
    ended = await stack.next(EventName.CALL_ENDED)
    assert (ended.call_id, ended.code) == (call.call_id, 500)
    assert ended.reason.startswith("No RTP port:")
    assert "Address already in use" in ended.reason


async def test_an_announcement_that_cannot_play_hangs_up_at_once(
    stack_and_account: tuple[WatchedStack, BuiltinAccount],
    callee: RawPeer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A file that is no WAV: a warning, then BYE right after the ACK."""
    stack, account = stack_and_account
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"this is not a wave file")
    with caplog.at_level(logging.WARNING, OUTBOUND_LOGGER):
        call, _ = await _answered(stack, account, callee, play=str(broken))
        await _accept_bye(callee)
        ended = await stack.next(EventName.CALL_ENDED)
    assert (ended.call_id, ended.code, ended.cause) == (
        call.call_id,
        200,
        EndCause.LOCAL,
    )
    assert ended.answered
    assert "Cannot play the announcement" in caplog.text


async def test_an_answered_call_outlives_its_ring_timeout(
    stack_and_account: tuple[WatchedStack, BuiltinAccount],
    callee: RawPeer,
    tmp_path: Path,
) -> None:
    """The no-answer timeout does nothing once the callee has answered."""
    stack, account = stack_and_account
    tone = write_tone(tmp_path / "long.wav", 440.0, 5.0)
    call, _ = await _answered(stack, account, callee, play=str(tone), timeout=1)
    await stack.wait_until(lambda: call.phase is CallPhase.CONFIRMED, 5)
    await asyncio.to_thread(callee.count, "BYE", 0, 1.5)  # past the 1 s timeout
    assert not any(m.method in ("BYE", "CANCEL") for m in callee._inbox)
    assert not call.ended
    assert call.call_id in stack.calls
    call.hangup(200)
    await _accept_bye(callee)
    ended = await stack.next(EventName.CALL_ENDED)
    assert (ended.code, ended.cause) == (200, EndCause.LOCAL)


async def test_answers_from_more_forks_than_the_limit_are_not_kept(
    stack_and_account: tuple[WatchedStack, BuiltinAccount],
    callee: RawPeer,
    tmp_path: Path,
) -> None:
    """The first MAX_FORKS other answers get ACK + BYE; one more is ignored."""
    stack, account = stack_and_account
    tone = write_tone(tmp_path / "long.wav", 440.0, 10.0)
    call, invite = await _answered(stack, account, callee, play=str(tone))
    for number in range(1, MAX_FORKS + 1):
        await _answer(callee, invite, f"f{number}")
        await asyncio.to_thread(
            callee.wait, "ACK", request=True, where=_tagged(f"f{number}")
        )
        await _accept_bye(callee, f"f{number}")
    extra = f"f{MAX_FORKS + 1}"
    await _answer(callee, invite, extra)
    await _answer(callee, invite, "f1")  # a known fork's 2xx again: ACKed again
    await asyncio.to_thread(callee.wait, "ACK", request=True, where=_tagged("f1"))
    assert not any(_tagged(extra)(m) for m in callee._inbox)
    assert not call.ended
    assert call.phase is CallPhase.CONFIRMED
    call.hangup(200)
    await _accept_bye(callee)
    ended = await stack.next(EventName.CALL_ENDED)
    assert (ended.call_id, ended.cause) == (call.call_id, EndCause.LOCAL)


async def test_a_callee_contact_that_does_not_resolve_ends_the_call_all_the_same(
    stack_and_account: tuple[WatchedStack, BuiltinAccount],
    callee: RawPeer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 2xx whose Contact has no address: ACK and BYE are not sent, but logged.

    The hang-up (at once: no file to play) still ends the call (200, local).
    """
    stack, account = stack_and_account
    call = _place(stack, account, _params(callee))
    invite = await asyncio.to_thread(callee.wait, "INVITE", request=True)
    with caplog.at_level(logging.INFO):
        await asyncio.to_thread(
            callee.respond,
            invite,
            200,
            tag="t",
            extra="Contact: <sip:9009@host.invalid:5062>\r\n",
            body=sdp(callee.rtp_port(0)),
        )
        await stack.wait_until(lambda: "ACK not sent" in caplog.text, 5)
        assert "ACK not sent: cannot resolve host.invalid" in caplog.text
        # Without a file to play the call hangs up as soon as it is answered.
        ended = await stack.next(EventName.CALL_ENDED)
        await stack.wait_until(lambda: "BYE not sent" in caplog.text, 5)
    assert (ended.call_id, ended.code, ended.cause) == (
        call.call_id,
        200,
        EndCause.LOCAL,
    )
    assert "BYE not sent: cannot resolve host.invalid" in caplog.text
    assert call.call_id not in stack.calls


async def test_a_challenged_bye_is_sent_again_with_credentials(
    stack_and_account: tuple[WatchedStack, BuiltinAccount],
    callee: RawPeer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """BYE answered 401: sent again with Authorization; a 481 to it is only logged."""
    stack, account = stack_and_account
    call, _ = await _answered(stack, account, callee)
    with caplog.at_level(logging.DEBUG, CALL_LOGGER):
        # Without a file to play the call hangs up as soon as it is answered.
        bye = await asyncio.to_thread(callee.wait, "BYE", request=True)
        challenge = (
            'WWW-Authenticate: Digest realm="edge", nonce="n1", algorithm=MD5\r\n'
        )
        await asyncio.to_thread(
            callee.respond, bye, 401, "Unauthorized", extra=challenge
        )
        again = await asyncio.to_thread(
            callee.wait, "BYE", request=True, where=_authorized
        )
        await asyncio.to_thread(callee.respond, again, 481, "No Such Call")
        await stack.wait_until(lambda: "BYE answered 481" in caplog.text, 5)
    assert 'username="2040"' in again.header("authorization")
    assert 'realm="edge"' in again.header("authorization")
    assert int(again.header("cseq").split()[0]) > int(bye.header("cseq").split()[0])
    assert "BYE answered 481" in caplog.text
    ended = await stack.next(EventName.CALL_ENDED)
    assert (ended.call_id, ended.cause) == (call.call_id, EndCause.LOCAL)


async def test_an_invite_the_transaction_layer_refuses_ends_the_call_503(
    stack_and_account: tuple[WatchedStack, BuiltinAccount],
    callee: RawPeer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No room for another client transaction: call_ended 503 naming the reason."""
    stack, account = stack_and_account
    monkeypatch.setattr(transaction_module, "MAX_CLIENT_TRANSACTIONS", 0)
    call = _place(stack, account, _params(callee))
    ended = await stack.next(EventName.CALL_ENDED)
    assert (ended.call_id, ended.code) == (call.call_id, 503)
    assert ended.reason == "Transport Error (too many transactions)"


async def test_a_cancel_that_cannot_be_sent_leaves_the_call_to_the_final_answer(
    stack_and_account: tuple[WatchedStack, BuiltinAccount],
    callee: RawPeer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Hang-up after 180 with the layer full: CANCEL is logged as not sent; 487 ends."""
    stack, account = stack_and_account
    call = _place(stack, account, _params(callee))
    invite = await asyncio.to_thread(callee.wait, "INVITE", request=True)
    await asyncio.to_thread(callee.respond, invite, 180, "Ringing", tag="t")
    await stack.wait_until(lambda: call._provisional, 5)
    monkeypatch.setattr(transaction_module, "MAX_CLIENT_TRANSACTIONS", 0)
    with caplog.at_level(logging.INFO, OUTBOUND_LOGGER):
        call.hangup(200)
    assert "CANCEL not sent: too many transactions" in caplog.text
    assert not call.ended
    await asyncio.to_thread(callee.respond, invite, 487, "Request Terminated", tag="t")
    ended = await stack.next(EventName.CALL_ENDED)
    assert (ended.call_id, ended.code, ended.cause) == (
        call.call_id,
        487,
        EndCause.LOCAL,
    )
