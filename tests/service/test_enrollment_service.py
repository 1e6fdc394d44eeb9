"""The enroll pipeline on the fakes: outcomes, duplicates, and a crash before every external call."""

from __future__ import annotations

import pytest

from shared.errors import ConsentRequired
from tests.fakes import photo
from tests.service.support import CallCounter, Crash, Stack, hooked, make_stack, new_user


@pytest.fixture
def stack() -> Stack:
    return make_stack()


def test_a_good_photo_is_enrolled_kept_and_trained(stack: Stack) -> None:
    user = new_user()
    assert stack.enroll(user, 17) == "accepted"
    record = stack.user(user)
    assert record.person_id and record.face_added_at
    assert [(g, n) for g, _, n in stack.persons()] == [(record.group_id, 1)]
    assert stack.photos.uploads == {}  # the upload blob is gone
    assert list(stack.photos.kept) and all(k.startswith(f"{record.kept_token}/") for k in stack.photos.kept)
    assert stack.status(user) == "enrolled"


def test_without_store_photos_nothing_is_kept(stack: Stack) -> None:
    user = new_user()
    assert stack.enroll(user, 17, store_photos=False) == "accepted"
    assert stack.photos.kept == {}


def test_a_photo_without_a_face_is_rejected_with_a_reason(stack: Stack) -> None:
    user = new_user()
    assert stack.enroll(user, 0) == "rejected"
    status = stack.services.enrollment.status(user)
    assert status.status == "failed" and status.photos[0].reasons
    assert stack.persons() == [] and stack.photos.uploads == {}


def test_low_quality_is_rejected_unless_an_admin_overrides(stack: Stack) -> None:
    from shared.commands import GrantOverride
    from tests.service.support import principal

    user = new_user()
    stack.face.quality[23] = {"qualityForRecognition": "low"}
    assert stack.enroll(user, 23) == "rejected"
    stack.services.enrollment.grant_override(GrantOverride(principal("admin", admin=True), user, "badge photo", 1))
    (name,) = stack.slots(user)
    stack.put(name, photo(23))
    assert stack.blob_created(name) == "accepted"
    stack.clock.advance(hours=2)  # the override expires
    (late,) = stack.slots(user)
    stack.put(late, photo(23))
    assert stack.blob_created(late) == "rejected"


def test_slots_need_consent(stack: Stack) -> None:
    with pytest.raises(ConsentRequired):
        stack.slots(new_user())


def test_duplicate_and_unknown_deliveries(stack: Stack) -> None:
    user = new_user()
    stack.consent(user)
    (name,) = stack.slots(user)
    data = photo(17)
    stack.put(name, data)
    assert stack.blob_created(name) == "accepted"
    stack.put(name, data)  # Event Grid delivers BlobCreated again
    assert stack.blob_created(name) == "duplicate"
    assert [n for _, _, n in stack.persons()] == [1]
    stack.put("nosession/noupload", data)
    assert stack.blob_created("nosession/noupload") == "unknown"
    assert stack.photos.uploads == {}


def _clean_calls() -> list[str]:
    stack = make_stack()
    user = new_user()
    stack.consent(user)
    (name,) = stack.slots(user)
    stack.put(name, photo(17))
    counter = CallCounter()
    with hooked(stack, counter):
        assert stack.blob_created(name) == "accepted"
    return counter.calls


CLEAN = _clean_calls()


@pytest.mark.parametrize("crash_at", range(len(CLEAN)), ids=[f"{i}-{c}" for i, c in enumerate(CLEAN)])
def test_a_crash_before_any_call_converges_on_redelivery(crash_at: int) -> None:
    stack = make_stack()
    user = new_user()
    stack.consent(user)
    (name,) = stack.slots(user)
    data = photo(17)
    stack.put(name, data)
    with hooked(stack, CallCounter(crash_at)), pytest.raises(Crash):
        stack.blob_created(name)
    stack.clock.advance(seconds=31)  # past the processing lease of the crashed delivery
    if name not in stack.photos.uploads:
        stack.put(name, data)  # the event still carries the blob's content
    assert stack.blob_created(name) in ("accepted", "duplicate")
    # One person with one face, recorded; the photo kept once; nothing left in uploads.
    record = stack.user(user)
    persons = stack.persons()
    recorded = [p for p in persons if p[1] == record.person_id]
    assert recorded and recorded[0][2] == 1
    assert stack.photos.uploads == {}
    assert len(stack.photos.kept) == 1
    # A person created by the crashed attempt but never recorded has no face and is purged.
    stack.purge()
    assert [p for p in stack.persons() if p[1] != record.person_id] == []
    assert stack.status(user) == "enrolled"
