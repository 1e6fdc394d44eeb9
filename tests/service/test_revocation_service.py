"""Revocation and HR terminations on the fakes: through the bus edge, duplicated, crashed at every
external call, and interleaved with an enroll at every external call."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared.commands import RequestRevocation, Revoke
from shared.errors import Forbidden, NotFound
from shared.ports import OutgoingMessage
from tests.fakes import photo
from tests.service.support import CallCounter, Crash, Interleaver, Stack, hooked, make_stack, new_user, principal


@pytest.fixture
def stack() -> Stack:
    return make_stack()


def assert_erased(stack: Stack, user: str) -> None:
    assert stack.user(user) is None
    assert stack.persons() == []
    assert stack.photos.kept == {} and stack.photos.uploads == {}
    assert stack.services.repos.uploads.partition(user) == []
    assert stack.status(user) == "revoked"


def test_a_revocation_erases_everything_and_leaves_a_receipt(stack: Stack) -> None:
    user = new_user()
    assert stack.enroll(user, 17) == "accepted"
    (spare,) = stack.slots(user)  # a slot never used
    request_id = stack.revoke(user)
    assert stack.revoke(user) == request_id  # the same consent, the same request
    stack.pump()
    assert_erased(stack, user)
    status = stack.services.enrollment.status(user)
    receipt = stack.services.repos.receipts.get(str(status.receipt_id))
    assert receipt is not None and receipt.request_id == request_id
    counts = {e["kind"]: e["count"] for e in receipt.erased}
    assert counts == {"faceTemplate": 1, "keptPhotos": 1, "uploads": 0, "uploadRecords": 2, "enrollmentRecord": 1}
    assert stack.services.repos.upload_index.get(spare.split("/")[1]) is None


def test_only_admins_revoke_others_and_only_what_was_granted(stack: Stack) -> None:
    with pytest.raises(Forbidden):
        stack.services.revocation.request(RequestRevocation(principal("mallory"), "alice", "x"))
    with pytest.raises(NotFound):
        stack.services.revocation.request(RequestRevocation(principal("admin", admin=True), "nobody", "x"))


def _erase_calls() -> list[str]:
    stack = make_stack()
    user = new_user()
    stack.enroll(user, 17)
    counter = CallCounter()
    with hooked(stack, counter):
        stack.services.revocation.erase(Revoke(user, "req-1"))
    return counter.calls


ERASE = _erase_calls()


@pytest.mark.parametrize("crash_at", range(len(ERASE)), ids=[f"{i}-{c}" for i, c in enumerate(ERASE)])
def test_an_erasure_crashed_anywhere_completes_with_the_same_receipt(crash_at: int) -> None:
    stack = make_stack()
    user = new_user()
    stack.enroll(user, 17)
    with hooked(stack, CallCounter(crash_at)), pytest.raises(Crash):
        stack.services.revocation.erase(Revoke(user, "req-1"))
    first = stack.services.revocation.erase(Revoke(user, "req-1"))
    again = stack.services.revocation.erase(Revoke(user, "req-1"))
    assert first == again
    assert {e.kind: e.count for e in first.erased}["faceTemplate"] == 1
    assert_erased(stack, user)


def test_hr_terminations_now_later_unknown_and_malformed(stack: Stack) -> None:
    settings = stack.services.settings
    user, later_user = new_user(), new_user()
    stack.consent(user, hr_key="E1")
    stack.consent(later_user, hr_key="E2")

    def event(employee: str, effective: str, event_id: str) -> OutgoingMessage:
        body = {"specversion": "1.0", "id": event_id, "source": "/hr", "type": "hr.employee.terminated",
                "data": {"employeeId": employee, "effectiveDate": effective}}
        return OutgoingMessage(body=json.dumps(body).encode(), message_id=event_id)

    today = stack.clock.now.date().isoformat()
    soon = (stack.clock.now + timedelta(days=3)).isoformat()
    stack.publisher.send(settings.hr_events_topic, [event("E1", today, "ev-1"), event("E2", soon, "ev-2"),
                                                    event("E-none", today, "ev-3")])
    stack.publisher.send(settings.hr_events_topic, [OutgoingMessage(body=b'{"specversion": "1.0"}', message_id="bad")])
    stack.pump(until=stack.clock.now + timedelta(hours=1))
    assert stack.status(user) == "revoked"
    assert stack.status(later_user) != "revoked"  # scheduled for its effective date
    assert [reason for sent, reason in stack.dead_letters] == [
        "HR event does not match shared/contracts/hr-events.schema.json at (root): the 'required' rule fails"]
    audit = [e.action for e in stack.services.audit.entries(stack.clock.now)]
    assert audit.count("message.rejected") == 1  # ten deliveries, one entry
    assert "hr.termination.unknown" in audit and "hr.termination.scheduled" in audit
    stack.pump()  # the clock moves to the scheduled message
    assert stack.status(later_user) == "revoked"


def _enroll_call_count() -> int:
    stack = make_stack()
    user = new_user()
    name = stack.uploaded(user, 17)
    counter = CallCounter()
    with hooked(stack, counter):
        stack.blob_created(name)
    return len(counter.calls)


@pytest.mark.parametrize("switch_at", range(_enroll_call_count() + 1))
def test_an_erasure_interleaved_with_an_enroll_at_any_call_leaves_nothing(switch_at: int) -> None:
    stack = make_stack()
    user = new_user()
    name = stack.uploaded(user, 17)
    request = stack.revoke(user)
    (sent,) = stack.publisher.due(stack.clock.now)
    # The enroll runs up to its switch_at-th external call, then the whole erasure, then the rest.
    run = Interleaver(stack, [lambda: stack.blob_created(name),
                              lambda: stack.services.revocation.erase(Revoke(user, request))],
                      schedule=[0] * switch_at + [1] * 1000)
    run.run()
    assert 1 not in run.errors, run.errors
    if 0 in run.errors:  # the enroll lost a race: the platform redelivers it
        stack.clock.advance(seconds=31)
        stack.put(name, photo(17))
        assert stack.blob_created(name) in ("discarded", "unknown", "duplicate")
    stack.purge()
    assert stack.persons() == [], f"a person outlived the erasure (switch at {switch_at})"
    assert stack.photos.kept == {} and stack.photos.uploads == {}
    assert stack.status(user) == "revoked"
    assert sent.message.message_id == request


def test_terminations_of_unknown_employees_are_counted_for_operators() -> None:
    from datetime import timedelta

    from shared.commands import HrTermination

    stack = make_stack()
    for i in range(3):
        outcome = stack.services.revocation.hr_event(HrTermination(f"evt-{i}", "hr", f"E-unknown-{i}",
                                                                   stack.clock() - timedelta(days=1)))
        assert outcome == "unknown"
    counter = stack.services.repos.counters.get(rk="hrTerminationsUnknown")
    assert counter is not None and counter.count == 3
