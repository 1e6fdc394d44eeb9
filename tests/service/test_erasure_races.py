"""Revocation wins every race, and erasure survives every fault (issue 12), on the fakes.

- Every ordered pair of the four steps that touch a user's data (enroll, re-enroll work, erase, purge),
  switched at every external call of the first: after the schedule (and the redelivery of a step that
  lost a race), the user is erased (if the pair did not do it, an erasure runs last) and the footprint,
  computed by the app and read straight from the fakes, is empty.
- A fault in Face or storage through maxDeliveryCount dead-letters the revocation; once the fault is
  cleared, one purge leaves an empty footprint and the receipt the revocation would have had.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta

import pytest

from shared.commands import ReenrollWork, Revoke, StartReenrollment
from shared.domain.erasure import receipt_id_for
from shared.errors import FaceTransientError, TransientFailure
from tests.fakes import photo
from tests.service.support import CallCounter, Interleaver, Stack, hooked, make_stack, new_user

STEPS = ("enroll", "work", "erase", "purge")


def _scenario() -> tuple[Stack, str, dict[str, Callable[[], object]], str]:
    """A user enrolled with a kept photo, a second photo uploaded and not yet processed, and a
    re-enrollment run fanned out with the user's work item queued."""
    stack = make_stack()
    user = new_user()
    assert stack.enroll(user, 17) == "accepted"
    (name,) = stack.slots(user)
    stack.put(name, photo(17))
    run = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    stack.pump(limit=1)  # the fan-out
    steps: dict[str, Callable[[], object]] = {
        "enroll": lambda: stack.blob_created(name),
        "work": lambda: stack.services.reenrollment.work(ReenrollWork(run.run_id, user)),
        "erase": lambda: stack.services.revocation.erase(Revoke(user, "req-1")),
        "purge": stack.purge,
    }
    return stack, user, steps, name


def _calls(step: str) -> int:
    stack, _, steps, _ = _scenario()
    counter = CallCounter()
    with hooked(stack, counter):
        steps[step]()
    return len(counter.calls)


CALLS = {step: _calls(step) for step in STEPS}
PAIRS = list(itertools.permutations(STEPS, 2))


def assert_footprint_empty(stack: Stack, user: str, where: str) -> None:
    fp = stack.services.footprint.of(user)
    assert fp.is_empty(), f"{where}: the footprint still holds {fp.left()}"
    # And straight from the fakes, whatever the footprint knows to look for.
    assert stack.persons() == [], f"{where}: a Face person survived"
    assert stack.photos.kept == {} and stack.photos.uploads == {}, f"{where}: a photo survived"
    assert stack.records.rows("personattempts") == [], f"{where}: an attempt row survived"
    assert stack.status(user) == "revoked", where


@pytest.mark.parametrize(("first", "second"), PAIRS, ids=[f"{a}-then-{b}" for a, b in PAIRS])
def test_every_pair_of_steps_at_every_call_leaves_an_erased_user_with_nothing(first: str, second: str) -> None:
    for switch_at in range(CALLS[first] + 1):
        where = f"{first} for {switch_at} calls, then {second}, then the rest"
        stack, user, steps, name = _scenario()
        run = Interleaver(stack, [steps[first], steps[second]], schedule=[0] * switch_at + [1] * 10_000)
        run.run()
        for index in sorted(run.errors):  # a step that lost a race is redelivered
            step, err = (first, second)[index], run.errors[index]
            assert isinstance(err, (TransientFailure, FaceTransientError)), f"{where}: {step} raised {err!r}"
            stack.clock.advance(seconds=31)  # past the processing and work-item leases
            if step == "enroll":
                stack.put(name, photo(17))  # the event still carries the blob's content
            steps[step]()
        stack.services.revocation.erase(Revoke(user, "req-1"))  # a no-op when the pair erased already
        assert_footprint_empty(stack, user, where)
        stack.purge()
        assert_footprint_empty(stack, user, where + ", after purge")


# --- faults through maxDeliveryCount, then purge ------------------------------------------------------
def _face_down(name: str) -> None:
    if name in ("face.delete_person", "face.get_person", "face.list_persons"):
        raise FaceTransientError("Service unavailable", code="ServiceUnavailable", status=503)


def _kept_storage_down(name: str) -> None:
    if name.startswith("photos.delete_kept") or name.startswith("photos.list_kept"):
        raise TransientFailure("storage unavailable")


def _tables_down(name: str) -> None:
    if name == "records.delete:users":
        raise TransientFailure("storage unavailable")


@pytest.mark.parametrize("fault", [_face_down, _kept_storage_down, _tables_down], ids=["face", "blobs", "tables"])
def test_a_dead_lettered_erasure_is_completed_by_purge_with_the_same_receipt(fault: Callable[[str], None]) -> None:
    stack = make_stack()
    user = new_user()
    assert stack.enroll(user, 17) == "accepted"
    request = stack.revoke(user)
    with hooked(stack, fault):
        stack.pump(max_deliveries=10)
    assert [s.message.message_id for s, _ in stack.dead_letters] == [request]
    assert stack.status(user) == "revoked"  # consent is gone at once, whatever is left to erase
    stack.purge()  # the fault is cleared
    assert_footprint_empty(stack, user, "after purge")
    receipt = stack.services.repos.receipts.get(receipt_id_for(request))
    assert receipt is not None and receipt.verified and receipt.checked
    assert {e["kind"]: e["count"] for e in receipt.erased}["faceTemplate"] == 1
    # Later runs and a late redelivery change nothing: one receipt, the same one.
    stack.clock.advance(days=1)
    stack.purge()
    again = stack.services.revocation.erase(Revoke(user, request))
    assert again.receipt_id == receipt.receipt_id and again.completed_at == receipt.completed_at
    assert stack.services.repos.pending_erasures.partition() == []


def test_the_admin_footprint_counts_per_store_and_names_nothing() -> None:
    from shared.commands import ReadFootprint
    from shared.errors import Forbidden
    from tests.service.support import principal

    stack = make_stack()
    user = new_user()
    assert stack.enroll(user, 17) == "accepted"
    admin = principal("admin-1", admin=True)
    before = stack.services.footprint.view(ReadFootprint(admin, user)).as_json()
    assert before["consent"] == "granted" and before["empty"] is False
    assert before["erasable"]["facePersons"] == 1 and before["erasable"]["keptPhotos"] == 1  # type: ignore[index]
    record = stack.user(user)
    text = repr(before)
    assert record.person_id not in text and record.kept_token not in text
    assert before["retained"]["auditRows"] >= 2  # type: ignore[index]  # found by the keyed hash
    with pytest.raises(Forbidden):
        stack.services.footprint.view(ReadFootprint(principal(user), user))
    stack.revoke(user)
    stack.pump()
    after = stack.services.footprint.view(ReadFootprint(admin, user)).as_json()
    assert after["consent"] == "revoked" and after["empty"] is True
    assert after["retained"]["receipts"] == 1  # type: ignore[index]


def test_scheduled_hr_termination_of_a_shared_id_gives_each_account_its_own_receipt() -> None:
    import json

    from shared.ports import OutgoingMessage

    stack = make_stack()
    first, second = new_user(), new_user()
    stack.consent(first, hr_key="E9")
    stack.consent(second, hr_key="E9")
    body = {"specversion": "1.0", "id": "ev-9", "source": "/hr", "type": "hr.employee.terminated",
            "data": {"employeeId": "E9", "effectiveDate": (stack.clock.now + timedelta(days=2)).isoformat()}}
    stack.publisher.send(stack.services.settings.hr_events_topic,
                         [OutgoingMessage(body=json.dumps(body).encode(), message_id="ev-9")])
    stack.pump()
    receipts = {stack.services.enrollment.status(u).receipt_id for u in (first, second)}
    assert len(receipts) == 2 and None not in receipts
    assert stack.records.rows("hrindex") == []
