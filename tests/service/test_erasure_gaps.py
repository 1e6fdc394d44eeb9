"""Issue 12's last two gaps, on the fakes: scheduled messages that name a user are part of the footprint
(and a termination delivered after the erasure brings nothing back), and purge repairs an erasure that
has no ``erasurespending`` row (written before that table existed, or its row lost)."""

from __future__ import annotations

import json
from datetime import timedelta

from shared.domain.erasure import receipt_id_for
from shared.errors import FaceTransientError
from shared.ports import OutgoingMessage
from tests.service.support import Stack, hooked, make_stack, new_user


def _termination(stack: Stack, employee: str, event_id: str, *, in_days: int, message_id: str | None = None) -> None:
    effective = (stack.clock.now + timedelta(days=in_days)).date().isoformat()
    body = {"specversion": "1.0", "id": event_id, "source": "/hr", "type": "hr.employee.terminated",
            "data": {"employeeId": employee, "effectiveDate": effective}}
    stack.publisher.send(stack.services.settings.hr_events_topic,
                         [OutgoingMessage(body=json.dumps(body).encode(), message_id=message_id or event_id)])
    stack.pump(until=stack.clock.now + timedelta(hours=1))  # the HR event only, not what it schedules


def _enrolled_and_terminated(employee: str, event_id: str, *, in_days: int) -> tuple[Stack, str]:
    """An enrolled user whose termination is scheduled ``in_days`` ahead."""
    stack = make_stack()
    user = new_user()
    assert stack.enroll(user, 17) == "accepted"
    stack.consent(user, hr_key=employee)
    _termination(stack, employee, event_id, in_days=in_days)
    return stack, user


def _counts(stack: Stack, user: str) -> dict[str, int]:
    return stack.services.footprint.of(user).counts()


# --- 1. scheduled messages -------------------------------------------------------------------------------
def test_a_scheduled_termination_is_in_the_footprint_and_the_erasure_removes_it() -> None:
    stack, user = _enrolled_and_terminated("E7", "ev-later", in_days=5)
    assert stack.status(user) == "enrolled"  # not yet: the termination waits for its effective date
    assert _counts(stack, user)["scheduledMessages"] == 1
    stack.revoke(user)  # the user withdraws first
    stack.pump(until=stack.clock.now + timedelta(hours=1))
    fp = stack.services.footprint.of(user)
    assert fp.is_empty(), fp.left()
    assert fp.counts()["scheduledMessages"] == 0


def _waiting_for(stack: Stack, user: str) -> list[str]:
    """Scheduled messages on the bus that name the user."""
    return [s.message.message_id for s in stack.publisher.pending if user.encode() in s.message.body]


def test_an_erasure_withdraws_the_scheduled_termination_from_the_bus() -> None:
    stack, user = _enrolled_and_terminated("E6", "ev-withdrawn", in_days=5)
    assert len(_waiting_for(stack, user)) == 1
    stack.revoke(user)
    stack.pump(until=stack.clock.now + timedelta(hours=1))
    assert _waiting_for(stack, user) == []  # nothing naming the user waits on the bus
    assert stack.services.footprint.of(user).is_empty()
    delivered = len(stack.publisher.sent)
    stack.pump(until=stack.clock.now + timedelta(days=10))
    assert len(stack.publisher.sent) == delivered and stack.dead_letters == []


def test_a_termination_delivered_after_the_erasure_brings_nothing_back() -> None:
    """A message the erasure could not withdraw: the process stopped between scheduling it and recording
    what withdraws it (here: the token is cleared)."""
    stack, user = _enrolled_and_terminated("E8", "ev-late", in_days=3)
    (row,) = stack.services.repos.scheduled.partition(user)
    row.cancel_token = None
    stack.services.repos.scheduled.upsert(row)
    stack.revoke(user)
    stack.pump(until=stack.clock.now + timedelta(hours=1))
    receipts_before = stack.records.rows("receipts")
    assert len(_waiting_for(stack, user)) == 1  # not withdrawn
    stack.pump(until=stack.clock.now + timedelta(days=10))  # the scheduled termination is delivered now
    assert _waiting_for(stack, user) == []
    assert stack.dead_letters == []
    assert stack.services.footprint.of(user).is_empty()
    assert stack.user(user) is None
    assert stack.persons() == []
    assert stack.photos.kept == {}
    assert stack.status(user) == "revoked"
    assert stack.services.repos.pending_erasures.get(rk=user) is None
    assert len(stack.records.rows("receipts")) >= len(receipts_before)


def test_a_scheduled_termination_row_goes_when_its_message_is_handled() -> None:
    stack, user = _enrolled_and_terminated("E9", "ev-due", in_days=2)
    assert _counts(stack, user)["scheduledMessages"] == 1
    stack.pump(until=stack.clock.now + timedelta(days=3))
    assert stack.status(user) == "revoked"
    assert stack.services.footprint.of(user).is_empty()
    assert stack.records.rows("scheduledmessages") == []


# --- 2. erasures from before the pending-erasure intent ----------------------------------------------------
def test_purge_repairs_a_revocation_without_a_pending_row() -> None:
    stack = make_stack()
    user = new_user()
    assert stack.enroll(user, 17) == "accepted"

    def face_down(name: str) -> None:
        if name == "face.delete_person":
            raise FaceTransientError("Service unavailable", code="ServiceUnavailable", status=503)

    request = stack.revoke(user)
    with hooked(stack, face_down):
        stack.pump()  # dead-lettered
    # As if the revocation had been written before the intent table existed (or its row was lost).
    stack.services.repos.pending_erasures.delete(rk=user)
    assert not stack.services.footprint.of(user).is_empty()
    tombstone = [e for e in stack.services.repos.ledger.partition(user) if e.kind == "revocation"]
    assert [e.request_id for e in tombstone] == [request]
    stack.purge()
    fp = stack.services.footprint.of(user)
    assert fp.is_empty(), fp.left()
    assert stack.persons() == []
    receipt = stack.services.repos.receipts.get(receipt_id_for(request))
    assert receipt is not None and receipt.request_id == request
    assert tombstone[0].receipt_id == receipt.receipt_id  # the id the tombstone promised
    assert [e.request_id for e in stack.services.repos.ledger.partition(user) if e.kind == "revocation"] == [request]
    # A second purge finds nothing more to do and writes no second receipt.
    stack.purge()
    assert [r for r in stack.records.rows("receipts") if r.get("subject") == user].__len__() == 1


def test_purge_leaves_a_reconsented_user_alone() -> None:
    stack = make_stack()
    user = new_user()
    assert stack.enroll(user, 17) == "accepted"
    stack.revoke(user)
    stack.pump()
    assert stack.enroll(user, 18) == "accepted"  # consented again after the erasure
    stack.purge()
    assert stack.status(user) == "enrolled"


def test_a_termination_delivered_twice_is_still_withdrawn_by_the_erasure() -> None:
    """At-least-once: the HR event arrives again. The second delivery must not lose the token of the
    message the first one scheduled (the bus drops the repeat as a duplicate)."""
    stack, user = _enrolled_and_terminated("E5", "ev-twice", in_days=5)
    # The same event again, in a message of its own (past the bus's duplicate detection).
    _termination(stack, "E5", "ev-twice", in_days=5, message_id="ev-twice-again")
    assert len(_waiting_for(stack, user)) == 1
    stack.revoke(user)
    stack.pump(until=stack.clock.now + timedelta(hours=1))
    assert _waiting_for(stack, user) == []
