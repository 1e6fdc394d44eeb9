"""Re-enroll at any time (issue 15): an enrolled user replaces their photos. The new faces go in, the group
is trained, and only then are the old faces and old kept photos deleted; a crash at any external call of
the replacement is completed by the next read or purge, and the user is recognisable throughout."""

from __future__ import annotations

import pytest

from shared.commands import CreateUploads, ReadFootprint
from shared.errors import Conflict
from tests.fakes import photo
from tests.service.support import CallCounter, Crash, Stack, hooked, make_stack, new_user, principal


def faces(stack: Stack, user: str) -> list[str | None]:
    """The userData (upload ids) of the faces of the user's person."""
    record = stack.user(user)
    person = stack.face.groups[record.group_id].persons[record.person_id]
    return sorted(str(tag) for tag, _ in person.faces.values())


def replace_session(stack: Stack, user: str, identity: int = 17) -> str:
    created = stack.services.enrollment.create_uploads(CreateUploads(principal(user), 1, replace=True))
    name = f"{created.session_id}/{created.uploads[0].upload_id}"
    stack.put(name, photo(identity, size=400))
    return name


def enrolled(stack: Stack, user: str) -> str:
    assert stack.enroll(user, 17) == "accepted"
    (old,) = faces(stack, user)
    return old


def test_old_faces_and_photos_go_only_after_the_new_faces_are_trained() -> None:
    stack = make_stack()
    user = new_user()
    old = enrolled(stack, user)
    old_kept = set(stack.photos.kept)
    name = replace_session(stack, user)
    new = name.split("/")[1]
    admin_view = stack.services.footprint.view(ReadFootprint(principal("admin", admin=True), user)).as_json()
    assert admin_view["replacement"]["pending"] is True  # an admin sees the replacement pending
    stack.face.train_polls = 10_000  # the training with the new face runs on
    assert stack.blob_created(name) == "accepted"
    assert stack.services.enrollment.finish_replacement(user) == "waiting"
    assert faces(stack, user) == sorted([old, new]) and old_kept <= set(stack.photos.kept)
    status = stack.services.enrollment.status(user)
    assert status.replacement is not None and status.status == "pending"
    assert faces(stack, user) == sorted([old, new])
    # The training completes: only now do the old face and the old kept photo go.
    stack.face.train_polls = 0
    assert stack.services.enrollment.finish_replacement(user) == "replaced"
    assert faces(stack, user) == [new]
    assert not old_kept & set(stack.photos.kept) and len(stack.photos.kept) == 1
    after = stack.services.enrollment.status(user)
    assert after.replacement is None and after.status == "enrolled"
    assert {p.upload_id: p.status for p in after.photos}[old] == "replaced"
    assert stack.services.footprint.view(ReadFootprint(principal("admin", admin=True), user)).as_json()[
        "replacement"] == {"pending": False}


def test_all_new_photos_rejected_keeps_the_old_enrollment() -> None:
    stack = make_stack()
    user = new_user()
    old = enrolled(stack, user)
    created = stack.services.enrollment.create_uploads(CreateUploads(principal(user), 1, replace=True))
    name = f"{created.session_id}/{created.uploads[0].upload_id}"
    stack.put(name, photo(0))  # no face
    assert stack.blob_created(name) == "rejected"
    assert stack.services.enrollment.finish_replacement(user) == "abandoned"
    assert faces(stack, user) == [old] and stack.services.enrollment.status(user).replacement is None


def test_nothing_to_replace_and_not_during_a_model_upgrade() -> None:
    stack = make_stack()
    user = new_user()
    stack.consent(user)
    with pytest.raises(Conflict) as nothing:
        stack.services.enrollment.create_uploads(CreateUploads(principal(user), 1, replace=True))
    assert nothing.value.code == "NothingToReplace"


def test_the_purge_completes_a_replacement_nobody_polled() -> None:
    stack = make_stack()
    user = new_user()
    enrolled(stack, user)
    name = replace_session(stack, user)
    assert stack.blob_created(name) == "accepted"
    report = stack.purge()
    assert report["pendingReplacements"] == 1 and report["finishedReplacements"] == 1
    assert faces(stack, user) == [name.split("/")[1]]


def _calls_of_finish() -> int:
    stack = make_stack()
    user = new_user()
    enrolled(stack, user)
    stack.blob_created(replace_session(stack, user))
    counter = CallCounter()
    with hooked(stack, counter):
        assert stack.services.enrollment.finish_replacement(user) == "replaced"
    return len(counter.calls)


@pytest.mark.parametrize("crash_at", range(_calls_of_finish()))
def test_a_crash_at_any_call_of_the_finish_is_completed_by_the_next_read(crash_at: int) -> None:
    stack = make_stack()
    user = new_user()
    old = enrolled(stack, user)
    name = replace_session(stack, user)
    new = name.split("/")[1]
    assert stack.blob_created(name) == "accepted"
    with hooked(stack, CallCounter(crash_at)), pytest.raises(Crash):
        stack.services.enrollment.finish_replacement(user)
    assert new in faces(stack, user)  # recognisable throughout: the new face is never touched
    assert stack.user(user).replace_session or old not in faces(stack, user)  # the marker goes last
    status = stack.services.enrollment.status(user)  # the next read completes it
    assert status.replacement is None and status.status == "enrolled"
    assert faces(stack, user) == [new]
    assert len(stack.photos.kept) == 1 and all(k.endswith(f"/{new}.jpg") for k in stack.photos.kept)


def _calls_of_new_photo() -> int:
    stack = make_stack()
    user = new_user()
    enrolled(stack, user)
    name = replace_session(stack, user)
    counter = CallCounter()
    with hooked(stack, counter):
        stack.blob_created(name)
        stack.services.enrollment.finish_replacement(user)
    return len(counter.calls)


@pytest.mark.parametrize("crash_at", range(0, _calls_of_new_photo(), 2))
def test_a_crash_while_the_new_photo_goes_in_never_leaves_the_user_without_a_face(crash_at: int) -> None:
    stack = make_stack()
    user = new_user()
    old = enrolled(stack, user)
    name = replace_session(stack, user)
    with hooked(stack, CallCounter(crash_at)):
        try:
            stack.blob_created(name)
            stack.services.enrollment.finish_replacement(user)
        except Crash:
            pass
    assert faces(stack, user), "the user lost every face mid-replacement"
    record = stack.user(user)
    if old not in faces(stack, user):  # the old face goes only once the new one is in and trained
        assert name.split("/")[1] in faces(stack, user)
        assert stack.face.groups[record.group_id].training == "succeeded"
    # Redelivery of the blob event, then the next read.
    stack.clock.advance(seconds=stack.services.settings.upload_processing_lease_seconds + 1)  # past the crashed delivery's lease
    if name in stack.photos.uploads:
        stack.blob_created(name)
    stack.services.enrollment.status(user)
    assert faces(stack, user) == [name.split("/")[1]]
    assert stack.services.enrollment.status(user).status == "enrolled"


def test_a_crash_between_deleting_the_blob_and_recording_the_outcome_is_not_pending_forever() -> None:
    """The delivery dies after the face went in and the blob was deleted, before the outcome is recorded: no
    event comes again (the blob is gone), so the next status read completes it as accepted and trains."""
    probe = make_stack()
    probe_user = new_user()
    counter = CallCounter()
    with hooked(probe, counter):
        probe.enroll(probe_user, 17)
    after_delete = counter.calls.index("photos.delete_upload") + 1

    stack = make_stack()
    user = new_user()
    with hooked(stack, CallCounter(after_delete)), pytest.raises(Crash):
        stack.enroll(user, 17)
    assert stack.photos.uploads == {}  # the blob is gone: Event Grid has nothing to redeliver
    stack.clock.advance(seconds=stack.services.settings.upload_processing_lease_seconds + 1)  # past the dead delivery's lease
    status = stack.services.enrollment.status(user)
    assert [p.status for p in status.photos] == ["accepted"]
    assert stack.services.enrollment.status(user).status == "enrolled"
