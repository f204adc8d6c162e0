"""What a stranger learns: every out-of-dialog method from a source not allowed.

127.0.0.2 is not in the allowed list (only 127.0.0.1 is). The built-in engine filters
every method before anything else: 403 and a `refused` event. pjsua answers some
methods itself before any callback of the worker runs (OPTIONS with 200 and its
capabilities, MESSAGE with 200), and passes only INVITE and SUBSCRIBE to the worker's
filter. This test pins down exactly what each engine answers, as README's source
filter text says; a change in either shows here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from custom_components.sip_endpoint.protocol.payloads import EventName, Method, Refused
from custom_components.sip_endpoint.protocol.status import RegistrationStatus

from .client import account_params
from .rawcall import send_request

if TYPE_CHECKING:
    from tests.sipbed.kamailio import Kamailio

    from .client import WorkerClient

STRANGER: Final = "127.0.0.2"
EXTRA_HEADERS: Final = {
    "SUBSCRIBE": "Event: presence\r\nExpires: 60\r\n",
    "NOTIFY": "Event: presence\r\nSubscription-State: active\r\n",
    "MESSAGE": "Content-Type: text/plain\r\n",
    "REFER": f"Refer-To: <sip:1@{STRANGER}>\r\n",
    "PUBLISH": "Event: presence\r\n",
}
METHODS: Final = (
    "OPTIONS",
    "SUBSCRIBE",
    "MESSAGE",
    "NOTIFY",
    "INFO",
    "REFER",
    "PUBLISH",
    "BYE",
    "CANCEL",
    "UPDATE",
)
# pjsua2: the final answer to each (None: no answer within the wait). pjsua answers
# OPTIONS and MESSAGE itself (200), CANCEL without a transaction (481); the worker's
# filter refuses SUBSCRIBE (403, with an event); the rest pjsua drops unanswered.
PJSUA2_ANSWERS: Final[dict[str, int | None]] = {
    "OPTIONS": 200,
    "SUBSCRIBE": 403,
    "MESSAGE": 200,
    "NOTIFY": None,
    "INFO": None,
    "REFER": None,
    "PUBLISH": None,
    "BYE": None,
    "CANCEL": 481,
    "UPDATE": None,
}
PJSUA2_REFUSED: Final = ("SUBSCRIBE",)
NO_ANSWER_WAIT: Final = 1.5


def test_every_method_from_a_stranger(
    worker: WorkerClient, kamailio: Kamailio, engine: str
) -> None:
    """Built-in: 403 and `refused` for every method. pjsua2: what pjsua allows."""
    worker.request(
        Method.ADD_ACCOUNT, account_params("2051", kamailio.host, kamailio.port)
    )
    worker.wait_registration("ext-2051", RegistrationStatus.SUCCESSFUL)
    answers: dict[str, int | None] = {}
    for method in METHODS:
        response = send_request(
            STRANGER,
            worker.sip_port,
            method,
            user="2051",
            extra=EXTRA_HEADERS.get(method, ""),
            timeout=NO_ANSWER_WAIT,
        )
        answers[method] = None if response is None else response.code
    # The allowed source still gets its answers, and the extension stays registered.
    allowed = send_request("127.0.0.1", worker.sip_port, "OPTIONS", user="2051")
    assert allowed is not None
    assert allowed.code == 200
    # Refusals are reported per burst (core/refusals.py): the first alone, the rest
    # summarised, at the latest when the worker stops.
    assert worker.shutdown() == 0
    refused = [
        Refused.from_wire(event.data)
        for event in worker.events_named(EventName.REFUSED)
    ]
    if engine == "builtin":
        assert answers == dict.fromkeys(METHODS, 403)
        assert refused[0] == Refused(source=STRANGER, method=METHODS[0])
        assert {r.source for r in refused} == {STRANGER}
        assert sum(r.count for r in refused) == len(METHODS)
        named = {m for r in refused for m in r.method.split(", ")}
        assert named == set(METHODS)
    else:
        assert answers == PJSUA2_ANSWERS
        assert refused == [Refused(source=STRANGER, method=m) for m in PJSUA2_REFUSED]
