"""The edges: message bodies to commands and back, and the one table from domain errors to HTTP
statuses and to message outcomes."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import envelopes, http_api
from shared.commands import ReenrollCheck, ReenrollFanout, ReenrollWork, Revoke, StartReenrollment
from shared.errors import (
    Conflict,
    ConsentRequired,
    DomainError,
    Forbidden,
    Invalid,
    MessageRejected,
    NotFound,
    TransientFailure,
)
from shared.http_api import Reply, handle

keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40)


@pytest.mark.parametrize(("error", "status", "outcome"), [
    (Invalid("x"), 400, envelopes.Outcome.DEAD_LETTER),
    (Forbidden("x"), 403, envelopes.Outcome.COMPLETE),
    (ConsentRequired("x"), 403, envelopes.Outcome.COMPLETE),
    (NotFound("x"), 404, envelopes.Outcome.DEAD_LETTER),
    (Conflict("x", code="StaleTerms"), 409, envelopes.Outcome.COMPLETE),
])
def test_one_table_per_edge(error: DomainError, status: int, outcome: envelopes.Outcome) -> None:
    def fail() -> Reply:
        raise error

    reply = handle(fail)
    assert reply.status == status and reply.body["error"]["code"] == error.code
    assert envelopes.outcome_for(error) is outcome
    assert envelopes.outcome_for(TransientFailure("x")) is envelopes.Outcome.RETRY


def test_handle_maps_transient_and_unforeseen_errors() -> None:
    def busy() -> Reply:
        raise TransientFailure("x")

    def broken() -> Reply:
        raise RuntimeError("secret detail")

    assert handle(busy).status == 503 and handle(busy).headers["Retry-After"]
    reply = handle(broken)
    assert reply.status == 500 and "secret" not in reply.json_bytes().decode()


class Audit:
    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, object]]] = []

    def write(self, action: str, *, actor: str, subject: str | None = None, **details: object) -> str:
        self.entries.append((action, details))
        return "id"


def test_deliver_dead_letters_once_completes_refusals_and_lets_failures_retry() -> None:
    audit = Audit()
    for count in (1, 2, 3):
        with pytest.raises(MessageRejected):
            envelopes.deliver(b"nope", envelopes.decode_revoke, print, audit=audit, source="q", message_id="m",
                              delivery_count=count)
    assert [a for a, _ in audit.entries] == ["message.rejected"]

    def conflict(_: object) -> None:
        raise Conflict("busy", code="RunInProgress")

    assert envelopes.deliver(b'{"userKey": "u", "requestId": "r"}', envelopes.decode_revoke, conflict, audit=audit,
                             source="q", message_id="m2", delivery_count=1) is None
    assert audit.entries[-1][0] == "message.ignored"

    def flaky(_: object) -> None:
        raise TransientFailure("later")

    with pytest.raises(TransientFailure):
        envelopes.deliver(b'{"userKey": "u", "requestId": "r"}', envelopes.decode_revoke, flaky, audit=audit,
                          source="q", message_id="m3", delivery_count=1)


@given(user=keys, request=keys, reason=keys, by=keys)
def test_revocation_messages_round_trip(user: str, request: str, reason: str, by: str) -> None:
    command = Revoke(user, request, reason=reason, requested_by=by)
    message = envelopes.revoke_message(command)
    assert message.message_id == request
    assert envelopes.decode_revoke(message.body) == command


@given(run=keys, user=keys, seq=st.integers(0, 10_000), after=st.text(max_size=20))
def test_reenrollment_messages_round_trip(run: str, user: str, seq: int, after: str) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert envelopes.decode_work(envelopes.work_message(ReenrollWork(run, user), message_id="m").body) == \
        ReenrollWork(run, user)
    for command in (ReenrollCheck(run, seq), ReenrollFanout(run, after, at), ReenrollFanout(run, after, None),
                    StartReenrollment("recognition_05", "model-updates")):
        assert envelopes.decode_control(envelopes.control_message(command, message_id="m").body) == command


@pytest.mark.parametrize("body", [b"", b"[]", b"null", b'{"action": "check"}', b'{"action": "check", "runId": "r", "seq": "x"}',
                                  b'{"action": "start", "recognitionModel": 5}', b'{"action": "explode", "runId": "r"}'])
def test_control_messages_against_the_contract_are_invalid(body: bytes) -> None:
    with pytest.raises(Invalid):
        envelopes.decode_control(body)


def test_hr_events() -> None:
    types = ("hr.employee.terminated",)
    base = {"specversion": "1.0", "id": "e1", "source": "/hr", "type": "hr.employee.terminated",
            "data": {"employeeId": "E1", "effectiveDate": "2026-05-01"}}
    import json

    event = envelopes.decode_hr_event(json.dumps(base).encode(), termination_types=types)
    assert event is not None and event.effective == datetime(2026, 5, 1, tzinfo=timezone.utc)
    assert envelopes.decode_hr_event(json.dumps({**base, "type": "hr.employee.hired"}).encode(),
                                     termination_types=types) is None
    with pytest.raises(Invalid) as bad:
        envelopes.decode_hr_event(json.dumps({**base, "data": {"employeeId": "SECRET-42"}}).encode(),
                                  termination_types=types)
    assert "SECRET-42" not in bad.value.reason  # the rule, never the value
    with pytest.raises(Invalid):
        envelopes.decode_hr_event(b"{", termination_types=types)


def test_http_bodies_become_commands_or_invalid() -> None:
    from tests.service.support import principal

    p = principal("u")
    assert http_api.create_uploads(p, {"count": 3}).count == 3
    for bad in ({"count": True}, {"count": 0}, {"count": "2"}, {}):
        with pytest.raises(Invalid):
            http_api.create_uploads(p, bad)
    for bad_consent in ({"accepted": True, "storePhotos": True}, {"termsVersion": "1", "storePhotos": True},
                        {"termsVersion": "1", "accepted": True, "storePhotos": "yes"}):
        with pytest.raises(Invalid):
            http_api.grant_consent(p, bad_consent, client="c")
    for bad_override in ({"reason": " ", "expiresInHours": 1}, {"reason": "r", "expiresInHours": 0},
                         {"reason": "r", "expiresInHours": 169}, {"reason": "r", "expiresInHours": True}):
        with pytest.raises(Invalid):
            http_api.grant_override(p, "u", bad_override)
    assert http_api.run_purge({}).dry_run is True and http_api.run_purge({"dryRun": False}).dry_run is False
    with pytest.raises(Invalid):
        http_api.run_purge({"dryRun": "false"})
    with pytest.raises(Invalid):
        http_api.json_body(b"[" * 100_000)
    with pytest.raises(Invalid):
        http_api.json_body(b"[1]")
