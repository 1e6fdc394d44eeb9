"""The enroll pipeline on the fakes: outcomes, duplicates, and a crash before every external call."""

from __future__ import annotations

import pytest

from shared.domain.enrollment import iso
from shared.errors import ConsentRequired, FaceTransientError
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


# --- found by the chaos bench (issue 13): a photo stuck in "processing" for good ------------------------
def test_a_failed_training_request_leaves_the_blob_for_the_retry() -> None:
    """Under Face faults, the training request after add_face failed; the delivery had already deleted
    the blob, so the retry found nothing to process and the photo stayed "processing" for ever."""
    stack = make_stack()
    user = new_user()
    stack.consent(user)
    (name,) = stack.slots(user)
    stack.put(name, photo(17))

    def face_down_for_training(call: str) -> None:
        if call in ("face.train", "face.training_status"):
            raise FaceTransientError("Face 503 after the retries", code="ServiceUnavailable", status=503)

    with hooked(stack, face_down_for_training), pytest.raises(FaceTransientError):
        stack.blob_created(name)
    (upload,) = stack.services.repos.uploads.partition(user)
    # The retry (Event Grid redelivers; the host reads the blob) needs the blob, unless the photo is final.
    assert upload.status in ("accepted", "rejected", "discarded") or name in stack.photos.uploads
    if name in stack.photos.uploads:
        assert stack.blob_created(name) == "accepted"
    assert stack.status(user) in ("enrolled", "training")
    assert stack.photos.uploads == {}


def test_a_training_recorded_as_running_that_face_never_started_is_started_again() -> None:
    """The state row says running (written before the train call), but the call never reached Face
    (failed, and marking the failure lost a race): Face answers "not trained". That is the truth the
    coordinator asks for, not an error that fails every enrollment after it."""
    stack = make_stack()
    stack.services.groups.active()
    state = stack.services.groups.state()
    assert state is not None
    state.training_status, state.training_started_at, state.dirty = "running", iso(stack.clock()), False
    stack.services.groups.save(state)
    stack.clock.advance(seconds=10)
    stack.services.training.request()
    after = stack.services.groups.state()
    assert after is not None and after.training_status in ("running", "succeeded")
    assert stack.face.training_status(after.group_id).status in ("running", "succeeded")


def test_a_delivery_that_fails_after_deleting_the_blob_is_completed_by_a_status_read() -> None:
    """The blob is gone, so no retry will come; the delivery failed (not died) and released its claim.
    The status read completes the upload once the lease has passed, as it does for a delivery that died."""
    stack = make_stack()
    user = new_user()
    stack.consent(user, store_photos=False)
    (name,) = stack.slots(user)
    stack.put(name, photo(17))
    deleted = [False]

    def storage_fails_once_after_the_delete(call: str) -> None:
        if call == "photos.delete_upload":
            deleted[0] = True
        elif deleted[0] and call == "records.update:uploads":
            deleted[0] = False
            raise RuntimeError("storage unavailable")

    with hooked(stack, storage_fails_once_after_the_delete), pytest.raises(RuntimeError):
        stack.blob_created(name)
    assert name not in stack.photos.uploads
    stack.clock.advance(seconds=stack.services.settings.upload_processing_lease_seconds + 1)
    assert stack.status(user) in ("enrolled", "training")
    (upload,) = stack.services.repos.uploads.partition(user)
    assert upload.status == "accepted"
