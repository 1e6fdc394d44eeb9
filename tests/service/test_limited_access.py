"""The enroll pipeline when Face answers 403 UnsupportedFeature (Limited Access not approved): a final
status that says so, nothing kept, nothing retried, nothing lost, and the consent still in force."""

from __future__ import annotations

from shared.services.enrollment import BLOB_CREATED_HEARTBEAT, SERVICE_NOT_APPROVED
from tests.fakes import photo
from tests.service.support import Stack, make_stack, new_user


def _upload(stack: Stack, user: str, *, store_photos: bool = True) -> str:
    stack.consent(user, store_photos=store_photos)
    (name,) = stack.slots(user)
    stack.put(name, photo(17))
    return name


def test_not_approved_gives_a_final_status_with_an_actionable_reason_and_keeps_nothing() -> None:
    stack = make_stack()
    user = new_user()
    name = _upload(stack, user)
    stack.face.limited_access_approved = False
    calls_before = len(stack.face.calls)
    assert stack.blob_created(name) == "rejected"  # returned, not raised: the event is not redelivered
    limited = [c for c in stack.face.calls[calls_before:] if c != "detect"]
    assert len(limited) == 1, limited  # one refused call, no retry loop in the pipeline
    status = stack.services.enrollment.status(user)
    assert status.status == "failed"
    assert [(p.status, p.reasons) for p in status.photos] == [("rejected", (SERVICE_NOT_APPROVED,))]
    upload = stack.services.repos.uploads.partition(user)[0]
    assert upload.codes == ["serviceNotApproved"] and upload.kept is False
    # The photo is gone from uploads and was never kept; no person and no group exist in Face.
    assert stack.photos.uploads == {} and stack.photos.kept == {}
    assert stack.persons() == []
    # The consent stays: once approved, the same user enrolls with a new upload, no new consent needed.
    assert stack.services.consent.current(user) is not None
    stack.face.limited_access_approved = True
    (again,) = stack.slots(user)
    stack.put(again, photo(17))
    assert stack.blob_created(again) == "accepted"
    assert len(stack.photos.kept) == 1


def test_a_redelivered_event_after_the_refusal_is_a_duplicate() -> None:
    stack = make_stack()
    user = new_user()
    name = _upload(stack, user)
    stack.face.limited_access_approved = False
    assert stack.blob_created(name) == "rejected"
    stack.put(name, photo(17))  # Event Grid delivers BlobCreated again
    assert stack.blob_created(name) == "duplicate"
    assert stack.photos.uploads == {} and stack.photos.kept == {}


def test_refused_after_the_person_exists_leaves_the_person_known_to_the_records() -> None:
    """Approval withdrawn between creating the person and adding the face: the person is recorded, so the
    erasure of a later revocation still deletes it; nothing is orphaned."""
    stack = make_stack()
    user = new_user()
    name = _upload(stack, user)
    real_add = stack.face.add_face

    def refuse(*args: object, **kwargs: object) -> str:
        stack.face.limited_access_approved = False
        return real_add(*args, **kwargs)  # type: ignore[arg-type]

    stack.face.add_face = refuse  # type: ignore[method-assign]
    assert stack.blob_created(name) == "rejected"
    record = stack.user(user)
    assert [(p, n) for _, p, n in stack.persons()] == [(record.person_id, 0)]
    assert stack.photos.uploads == {} and stack.photos.kept == {}
    stack.face.limited_access_approved = True
    stack.revoke(user)
    stack.pump()
    assert stack.persons() == []


def test_every_delivered_event_records_the_blob_created_heartbeat() -> None:
    stack = make_stack()
    assert stack.services.repos.heartbeats.get(rk=BLOB_CREATED_HEARTBEAT) is None
    stack.put("nosession/noupload", b"x")
    assert stack.blob_created("nosession/noupload") == "unknown"
    beat = stack.services.repos.heartbeats.get(rk=BLOB_CREATED_HEARTBEAT)
    assert beat is not None and beat.at
