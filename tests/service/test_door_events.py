"""Door-system events from the outbox, on the fakes: each change is announced once, with the user
key and no personId, and a crash at any call between the change and the publish loses nothing."""

from __future__ import annotations

import json

import pytest

from shared.commands import Revoke
from shared.services import events as ev
from tests.service.support import Crash, Stack, make_stack

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


@pytest.mark.parametrize("crash_at", range(40))
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
        if name.startswith("records.") or name.startswith("face.") or name.startswith("photos."):
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
