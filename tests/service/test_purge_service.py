"""purge_timer on the fakes: retention, stale uploads, orphans both ways, superseded groups, dry runs."""

from __future__ import annotations

from shared.commands import RunPurge
from tests.fakes import photo
from tests.service.support import make_stack, new_user


def test_consent_not_renewed_within_the_retention_is_erased() -> None:
    stack = make_stack(CONSENT_RETENTION_DAYS="30")
    old, renewed = new_user(), new_user()
    stack.enroll(old, 11)
    stack.enroll(renewed, 12)
    stack.clock.advance(days=20)
    stack.consent(renewed)
    stack.clock.advance(days=11)
    dry = stack.services.purge.run(RunPurge(dry_run=True, trigger="test"))
    assert dry.expired_consents == 1 and stack.status(old) == "enrolled"
    report = stack.purge()
    assert report["expiredConsents"] == 1 and report["rowsRead"]["expiredConsents"] >= 1
    assert stack.status(old) == "revoked"
    assert stack.status(renewed) == "enrolled"


def test_stale_uploads_and_orphans_are_removed() -> None:
    stack = make_stack(UPLOAD_MAX_AGE_MINUTES="60")
    user = new_user()
    stack.enroll(user, 11)
    (never,) = stack.slots(user)
    stack.put(never, photo(11))  # uploaded, but the event was lost
    group = stack.services.groups.active()
    assert group is not None
    stranger = stack.face.create_person(group.group_id, name="p-x", user_data="unknown-attempt")
    stack.photos.keep("nobodys-token/x.jpg", photo(12))
    stack.clock.advance(minutes=61)
    report = stack.purge()
    assert (report["staleUploads"], report["orphanPersons"], report["orphanKeptPhotos"]) == (1, 1, 1)
    assert never not in stack.photos.uploads
    assert stranger not in [p for _, p, _ in stack.persons()]
    # A person the records name but Face lost: the user is told to enroll again.
    record = stack.user(user)
    stack.face.delete_person(record.group_id, record.person_id)
    assert stack.purge()["missingPersons"] == 1
    assert stack.status(user) == "failed"


def test_a_failing_step_is_reported_and_the_others_still_run() -> None:
    stack = make_stack(UPLOAD_MAX_AGE_MINUTES="60")
    user = new_user()
    stack.enroll(user, 11)
    stack.slots(user)  # a slot never used: stale after an hour

    def face_down(name: str) -> None:
        if name == "face.list_persons":
            raise RuntimeError("Face is down")

    stack.set_hook(face_down)
    stack.clock.advance(minutes=61)
    report = stack.purge()
    stack.clear_hook()
    assert report["errors"] == [{"step": "orphans", "error": "RuntimeError"}]
    assert report["staleUploads"] == 1  # the step before still ran


def test_superseded_groups_wait_for_their_grace_period() -> None:
    from shared.commands import StartReenrollment

    stack = make_stack(GROUP_GRACE_DAYS="7")
    stack.enroll(new_user(), 11)
    old = stack.services.groups.active()
    assert old is not None
    stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    stack.pump()
    stack.clock.advance(days=6)
    assert stack.purge()["supersededGroups"] == 0 and old.group_id in stack.face.groups
    stack.clock.advance(days=2)
    dry = stack.services.purge.run(RunPurge(dry_run=True, trigger="test"))
    assert dry.superseded_groups == 1 and old.group_id in stack.face.groups
    assert stack.purge()["supersededGroups"] == 1 and old.group_id not in stack.face.groups
