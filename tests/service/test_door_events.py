"""Door-system events from the outbox, on the fakes: each change is announced once, with the user
key and no personId, and a crash at any call between the change and the publish loses nothing."""

from __future__ import annotations

import json

import pytest

from shared.commands import Revoke
from shared.services import events as ev
from tests.fakes import photo
from tests.service.support import CallCounter, Crash, Stack, hooked, make_stack
from tests.service.test_replacement_service import _calls_of_finish, enrolled, replace_session

PERSON_FIELDS = ("personId", "person_id", "persistedFaceId")


def published(stack: Stack) -> list[tuple[str, str]]:
    return [(e.type, str(e.data.get("userKey", e.data.get("groupId")))) for e in stack.events.published]


def test_enrollment_and_erasure_are_announced_once_with_the_receipt_and_no_person_id() -> None:
    stack = make_stack()
    assert stack.enroll("alice", 7) == "accepted"
    (name,) = stack.slots("alice")  # a second photo of the same enrollment
    stack.put(name, __import__("tests.fakes", fromlist=["photo"]).photo(7))
    stack.blob_created(name)
    assert stack.events.published == []  # nothing leaves before the sender runs
    assert stack.services.events.send()["sent"] == 1
    receipt = stack.services.revocation.erase(Revoke("alice", "req-1", reason="test"))
    stack.services.revocation.erase(Revoke("alice", "req-1", reason="test"))  # redelivered
    stack.services.events.send()
    stack.services.events.send()
    assert published(stack) == [(ev.USER_ENROLLED, "alice"), (ev.USER_ERASED, "alice")]
    erased = stack.events.published[1]
    assert erased.data["receiptId"] == receipt.receipt_id
    text = json.dumps([dict(e.data) for e in stack.events.published])
    for person in stack.face.all_persons():
        assert person[1] not in text
    assert not any(f in text for f in PERSON_FIELDS)


def test_a_failed_publish_is_retried_and_sent_once() -> None:
    stack = make_stack()
    stack.enroll("bob", 9)

    def fail(name: str) -> None:
        if name == "events.publish":
            raise ConnectionError("Event Grid unreachable")

    stack.set_hook(fail)
    with pytest.raises(ConnectionError):
        stack.services.events.send()
    stack.clear_hook()
    assert stack.services.events.send()["sent"] == 1
    assert stack.services.events.send()["sent"] == 0
    assert published(stack) == [(ev.USER_ENROLLED, "bob")]


def test_event_ids_are_deterministic() -> None:
    assert ev.event_id(ev.USER_ERASED, "r1") == ev.event_id(ev.USER_ERASED, "r1")
    assert ev.event_id(ev.USER_ERASED, "r1") != ev.event_id(ev.USER_ENROLLED, "r1")


def _external(name: str) -> bool:
    return name.startswith(("records.", "face.", "photos."))


def _calls_of_erasure() -> int:
    """How many external calls the erasure below makes (the footprint reads every store twice)."""
    stack = make_stack()
    stack.enroll("carol", 11)
    stack.services.events.send()
    counter = CallCounter(only=_external)
    with hooked(stack, counter):
        stack.services.revocation.erase(Revoke("carol", "req-c", reason="test"))
    return len(counter.calls)


@pytest.mark.parametrize("crash_at", range(_calls_of_erasure()))
def test_no_erasure_event_is_lost_when_the_host_dies_anywhere_in_the_step(crash_at: int) -> None:
    """The erasure dies at its n-th external call (before the receipt, the step's completion marker,
    or after it); the redelivery finishes it. The door systems hear of it exactly once."""
    stack = make_stack()
    stack.enroll("carol", 11)
    stack.services.events.send()
    stack.events.published.clear()
    calls = 0

    def die(name: str) -> None:
        nonlocal calls
        if _external(name):
            if calls == crash_at:
                calls += 1
                raise Crash(name)
            calls += 1

    stack.set_hook(die)
    try:
        stack.services.revocation.erase(Revoke("carol", "req-c", reason="test"))
    except Crash:
        pass
    stack.clear_hook()
    stack.services.revocation.erase(Revoke("carol", "req-c", reason="test"))  # the redelivery
    stack.services.events.send()
    stack.services.events.send()
    assert published(stack) == [(ev.USER_ERASED, "carol")]


@pytest.mark.parametrize("crash_at", range(12))
def test_no_event_is_lost_when_the_sender_dies(crash_at: int) -> None:
    """The sender dies at its n-th call (before or after the publish, before or after marking):
    every event still goes out; one published before the crash may go out again with the same id."""
    stack = make_stack()
    for user, identity in (("d1", 21), ("d2", 22)):
        stack.enroll(user, identity)
    calls = 0

    def die(name: str) -> None:
        nonlocal calls
        if calls == crash_at:
            calls += 1
            raise Crash(name)
        calls += 1

    stack.set_hook(die)
    try:
        stack.services.events.send()
    except Crash:
        pass
    stack.clear_hook()
    stack.services.events.send()
    assert stack.services.events.send()["pending"] == 0
    ids = [e.id for e in stack.events.published]
    assert {e.data["userKey"] for e in stack.events.published} == {"d1", "d2"}
    assert len(set(ids)) == 2  # duplicates, if any, carry the same id (consumers de-duplicate by it)


def test_a_group_switch_announces_the_new_group_and_who_must_enroll_again() -> None:
    from shared.commands import StartReenrollment

    stack = make_stack()
    for user, identity in (("keeper", 31), ("other", 32)):
        assert stack.enroll(user, identity, store_photos=user == "keeper") == "accepted"
    stack.services.events.send()
    stack.events.published.clear()
    progress = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    stack.pump()
    assert stack.services.reenrollment.progress(progress.run_id).status == "switched"
    stack.services.events.send()
    active = stack.services.groups.active()
    assert active is not None
    assert sorted(published(stack)) == sorted([(ev.GROUP_SWITCHED, active.group_id),
                                               (ev.USER_REENROLL_REQUIRED, "other")])
    assert stack.status("other") == "reenrollRequired"


def _calls_of_photo() -> int:
    stack = make_stack()
    stack.consent("dave", store_photos=True)
    (name,) = stack.slots("dave")
    stack.put(name, photo(12))
    counter = CallCounter()
    with hooked(stack, counter):
        assert stack.blob_created(name) == "accepted"
    return len(counter.calls)


@pytest.mark.parametrize("crash_at", range(_calls_of_photo()))
def test_no_enrollment_event_is_lost_when_the_host_dies_anywhere_in_the_photo(crash_at: int) -> None:
    """The photo's processing dies at its n-th call; the blob event is redelivered while the blob exists, and
    once it is gone (a crash after its delete) the next status read completes the upload. The door systems
    hear of the enrollment exactly once: the event is queued before the blob is deleted."""
    stack = make_stack()
    stack.consent("dave", store_photos=True)
    (name,) = stack.slots("dave")
    stack.put(name, photo(12))
    with hooked(stack, CallCounter(crash_at)), pytest.raises(Crash):
        stack.blob_created(name)
    stack.clock.advance(seconds=31)  # past the dead delivery's processing lease
    if name in stack.photos.uploads:
        assert stack.blob_created(name) == "accepted"  # the redelivery
    assert stack.status("dave") in ("enrolled", "pending")
    stack.services.events.send()
    stack.services.events.send()
    assert published(stack) == [(ev.USER_ENROLLED, "dave")]


def test_a_completed_photo_replacement_is_announced_once_as_an_enrollment_of_its_own() -> None:
    """Replacing one's photos (issue 15) changes the faces a door system's identify call matches: it is
    announced as ``user.enrolled`` with its own id (per replacement session), once; abandoning one is not."""
    stack = make_stack()
    enrolled(stack, "erin")
    stack.services.events.send()
    (first,) = stack.events.published
    name = replace_session(stack, "erin")
    assert stack.blob_created(name) == "accepted"
    stack.services.events.send()
    assert len(stack.events.published) == 1  # the new photo alone is not announced: the old faces still count
    assert stack.services.enrollment.finish_replacement("erin") == "replaced"
    stack.services.enrollment.status("erin")
    stack.services.events.send()
    stack.services.events.send()
    assert published(stack) == [(ev.USER_ENROLLED, "erin"), (ev.USER_ENROLLED, "erin")]
    assert stack.events.published[1].id != first.id and dict(stack.events.published[1].data) == {"userKey": "erin"}
    # A replacement whose photos are all rejected is abandoned: the old faces stay, nothing to announce.
    rejected = replace_session(stack, "erin")
    stack.put(rejected, photo(0))  # no face
    assert stack.blob_created(rejected) == "rejected"
    assert stack.services.enrollment.finish_replacement("erin") == "abandoned"
    stack.services.events.send()
    assert len(stack.events.published) == 2


@pytest.mark.parametrize("crash_at", range(_calls_of_finish()))
def test_no_replacement_event_is_lost_when_the_finish_dies_anywhere(crash_at: int) -> None:
    stack = make_stack()
    enrolled(stack, "fay")
    name = replace_session(stack, "fay")
    assert stack.blob_created(name) == "accepted"
    with hooked(stack, CallCounter(crash_at)), pytest.raises(Crash):
        stack.services.enrollment.finish_replacement("fay")
    stack.services.enrollment.status("fay")  # the next read completes it
    stack.services.enrollment.status("fay")
    stack.services.events.send()
    stack.services.events.send()
    assert published(stack) == [(ev.USER_ENROLLED, "fay"), (ev.USER_ENROLLED, "fay")]
