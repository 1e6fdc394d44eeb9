"""Issue 12's five findings, each reproduced on the fakes: erasure that outlives a dead-letter, a failed
re-enrollment run, a race with an enroll, the HR index's holes and rows nobody erased. Each test failed
on the code before the fix (the report of issue 12 keeps the failing output)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared.commands import Revoke, StartReenrollment
from shared.errors import FaceTransientError
from shared.ports import OutgoingMessage
from tests.fakes import photo
from tests.service.support import CallCounter, Interleaver, Stack, hooked, make_stack, new_user


def footprint_is_empty(stack: Stack, user: str) -> None:
    """What the erasure must leave: nothing but ledger entries and the receipt."""
    assert stack.user(user) is None, "the enrollment record survived"
    assert stack.persons() == [], "a Face person survived"
    assert stack.photos.kept == {}, "a kept photo survived"
    assert stack.photos.uploads == {}, "an upload survived"
    assert stack.services.repos.uploads.partition(user) == []
    assert stack.status(user) == "revoked"


# --- 1. a dead-lettered erasure is repaired by purge ---------------------------------------------------
def test_a_dead_lettered_erasure_is_repaired_by_purge() -> None:
    stack = make_stack()
    user = new_user()
    assert stack.enroll(user, 17) == "accepted"

    def face_down(name: str) -> None:
        if name == "face.delete_person":
            raise FaceTransientError("Service unavailable", code="ServiceUnavailable", status=503)

    request = stack.revoke(user)
    with hooked(stack, face_down):
        stack.pump()  # ten deliveries, then the dead-letter queue
    assert [s.message.message_id for s, _ in stack.dead_letters] == [request]
    assert stack.status(user) != "enrolled", "a withdrawn user shows enrolled"
    stack.purge()  # Face is back
    footprint_is_empty(stack, user)


# --- 2. a failed re-enrollment run leaves no template behind ------------------------------------------
def test_a_failed_reenrollment_run_leaves_no_template_after_erasure() -> None:
    stack = make_stack()
    user = new_user()
    assert stack.enroll(user, 17) == "accepted"
    stack.face.fail_training = True
    first = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    stack.pump()
    assert stack.services.reenrollment.progress(first.run_id).status == "failed"
    stack.face.fail_training = False
    second = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    stack.pump()
    assert stack.services.reenrollment.progress(second.run_id).status == "switched"
    stack.revoke(user)
    stack.pump()
    assert stack.persons() == [], "a person with a face stayed in the failed run's group"
    footprint_is_empty(stack, user)


# --- 3. erase racing an enroll, at every external call, in both orders ----------------------------------
def _prepared(stack: Stack, user: str) -> str:
    stack.consent(user)
    (name,) = stack.slots(user)
    stack.put(name, photo(17))
    return name


def _count(step: str) -> int:
    stack = make_stack()
    user = new_user()
    name = _prepared(stack, user)
    counter = CallCounter()
    with hooked(stack, counter):
        if step == "enroll":
            stack.blob_created(name)
        else:
            stack.services.revocation.erase(Revoke(user, "req-1"))
    return len(counter.calls)


RACES = [("enroll-first", k) for k in range(_count("enroll") + 1)] + [
    ("erase-first", k) for k in range(_count("erase") + 1)]


@pytest.mark.parametrize(("order", "switch_at"), RACES, ids=[f"{o}-{k}" for o, k in RACES])
def test_an_erasure_racing_an_enroll_leaves_nothing_without_purge(order: str, switch_at: int) -> None:
    stack = make_stack()
    user = new_user()
    name = _prepared(stack, user)
    enroll, erase = (lambda: stack.blob_created(name)), (lambda: stack.services.revocation.erase(Revoke(user, "req-1")))
    steps = [enroll, erase] if order == "enroll-first" else [erase, enroll]
    run = Interleaver(stack, steps, schedule=[0] * switch_at + [1] * 1000)
    run.run()
    i_enroll, i_erase = (0, 1) if order == "enroll-first" else (1, 0)
    if i_erase in run.errors:  # the erasure lost a race: the platform redelivers it
        stack.services.revocation.erase(Revoke(user, "req-1"))
    if i_enroll in run.errors:  # the enroll lost a race: redelivered after its lease
        stack.clock.advance(seconds=31)
        stack.put(name, photo(17))
        assert stack.blob_created(name) != "accepted"
    footprint_is_empty(stack, user)  # no purge: the erasure itself is complete
    receipt = stack.services.revocation.erase(Revoke(user, "req-1"))
    counts = {e.kind: e.count for e in receipt.erased}
    assert counts["faceTemplate"] >= 0


# --- 4. HR coverage -------------------------------------------------------------------------------------
def _termination(stack: Stack, employee: object, event_id: str) -> None:
    body = {"specversion": "1.0", "id": event_id, "source": "/hr", "type": "hr.employee.terminated",
            "data": {"employeeId": employee, "effectiveDate": stack.clock.now.date().isoformat()}}
    stack.publisher.send(stack.services.settings.hr_events_topic,
                         [OutgoingMessage(body=json.dumps(body).encode(), message_id=event_id)])
    stack.pump(until=stack.clock.now + timedelta(hours=1))


def test_consent_without_an_employee_id_is_refused_when_required() -> None:
    from shared.errors import Invalid

    stack = make_stack(HR_REQUIRE_EMPLOYEE_ID="true")
    with pytest.raises(Invalid, match="employee"):
        stack.consent(new_user())
    lenient = make_stack(HR_REQUIRE_EMPLOYEE_ID="false")
    lenient.consent(new_user())
    actions = [e.action for e in lenient.services.audit.entries(lenient.clock.now)]
    assert "consent.employeeIdMissing" in actions


def test_a_termination_erases_every_account_with_that_employee_id() -> None:
    stack = make_stack()
    first, second = new_user(), new_user()
    assert stack.enroll(first, 17) == "accepted"
    stack.consent(first, hr_key="E1")
    stack.consent(second, hr_key="E1")
    _termination(stack, "E1", "ev-1")
    assert stack.status(first) == "revoked"
    assert stack.status(second) == "revoked"


def test_a_changed_employee_id_leaves_no_old_index_row() -> None:
    stack = make_stack()
    user = new_user()
    stack.consent(user, hr_key="E1")
    stack.consent(user, hr_key="E2")
    rows = stack.records.rows("hrindex")
    assert [r["PartitionKey"] for r in rows] == ["E2"]


def test_a_numeric_employee_id_is_accepted() -> None:
    stack = make_stack()
    user = new_user()
    stack.consent(user, hr_key="12345")
    _termination(stack, 12345, "ev-num")
    assert stack.dead_letters == []
    assert stack.status(user) == "revoked"


# --- 5. rows that erasure never touched -------------------------------------------------------------------
def test_work_items_are_deleted_when_their_run_ends() -> None:
    stack = make_stack()
    assert stack.enroll(new_user(), 17) == "accepted"
    run = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    stack.pump()
    assert stack.services.reenrollment.progress(run.run_id).status == "switched"
    assert stack.services.repos.items.partition(run.run_id) == []


def test_audit_rows_do_not_name_users_and_expire() -> None:
    stack = make_stack(AUDIT_RETENTION_DAYS="30")
    user = new_user()
    assert stack.enroll(user, 17) == "accepted"
    stack.revoke(user)
    stack.pump()
    text = json.dumps(stack.records.rows("audit"))
    assert user not in text, "an audit row names the user by their key"
    stack.clock.advance(days=31)
    stack.purge()
    old = [r for r in stack.records.rows("audit") if r["PartitionKey"] < (stack.clock.now - timedelta(days=30)).strftime("%Y%m%d")]
    assert old == []
