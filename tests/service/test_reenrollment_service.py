"""Re-enrollment on the fakes: a whole run through the bus, duplicates, a crash at every call of a work
item, and messages that break the contract."""

from __future__ import annotations

import pytest

from shared.commands import ReenrollWork, Revoke, StartReenrollment
from shared.errors import Conflict
from shared.ports import OutgoingMessage
from tests.service.support import CallCounter, Crash, Stack, hooked, make_stack, new_user


def enrolled_users(stack: Stack, n: int, *, store_photos: bool = True) -> list[str]:
    users = []
    for i in range(n):
        user = new_user()
        assert stack.enroll(user, 10 + i, store_photos=store_photos) == "accepted"
        users.append(user)
    return users


def test_a_run_moves_everyone_with_kept_photos_to_the_new_group() -> None:
    stack = make_stack()
    keepers = enrolled_users(stack, 3)
    other = enrolled_users(stack, 1, store_photos=False)[0]
    old_group = stack.services.groups.active()
    assert old_group is not None
    progress = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    with pytest.raises(Conflict):
        stack.services.reenrollment.start(StartReenrollment("recognition_04", "admin"))
    stack.pump()
    final = stack.services.reenrollment.progress(progress.run_id)
    assert (final.status, final.total, final.done) == ("switched", 3, 3), final
    active = stack.services.groups.active()
    assert active is not None and active.recognition_model == "recognition_05"
    for user in keepers:
        assert stack.status(user) == "enrolled"
    assert stack.status(other) == "reenrollRequired"
    # The superseded group is deleted by purge after its grace period, with its persons.
    stack.clock.advance(days=8)
    stack.purge()
    assert old_group.group_id not in stack.face.groups
    with pytest.raises(Conflict):  # already on that model
        stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))


def _work_calls() -> tuple[list[str], int]:
    stack = make_stack()
    enrolled_users(stack, 1)
    run = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    stack.pump(limit=1)  # the fan-out: one work message
    counter = CallCounter()
    with hooked(stack, counter):
        stack.pump(limit=1)
    assert stack.services.repos.items.partition(run.run_id)[0].status == "done"
    return counter.calls, 0


WORK, _ = _work_calls()


@pytest.mark.parametrize("crash_at", range(len(WORK)), ids=[f"{i}-{c}" for i, c in enumerate(WORK)])
def test_a_work_item_crashed_anywhere_adds_each_face_once(crash_at: int) -> None:
    stack = make_stack()
    (user,) = enrolled_users(stack, 1)
    run = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    stack.pump(limit=1)
    (sent,) = stack.publisher.due(stack.clock.now, stack.services.settings.reenroll_work_queue)
    with hooked(stack, CallCounter(crash_at)), pytest.raises(Crash):
        stack.services.reenrollment.work(ReenrollWork(run.run_id, user))
    stack.clock.advance(seconds=25)  # past the crashed delivery's lease
    assert stack.services.reenrollment.work(ReenrollWork(run.run_id, user)) in ("done", "duplicate")
    stack.pump()
    assert stack.services.reenrollment.progress(run.run_id).status == "switched"
    record = stack.user(user)
    new_persons = [p for p in stack.persons() if p[0] == record.group_id]
    assert [n for _, p, n in new_persons if p == record.person_id] == [1]
    stack.purge()
    assert [p for p in stack.persons() if p[0] == record.group_id and p[1] != record.person_id] == []
    assert sent.message.message_id.startswith(run.run_id)


def test_messages_against_the_contract_are_dead_lettered() -> None:
    stack = make_stack()
    settings = stack.services.settings
    stack.publisher.send(settings.model_updates_queue, [
        OutgoingMessage(body=b"not json", message_id="m1"),
        OutgoingMessage(body=b'{"action": "teleport", "runId": "r"}', message_id="m2"),
        OutgoingMessage(body=b'{"recognitionModel": "resnet"}', message_id="m3"),
        OutgoingMessage(body=b'{"action": "check", "runId": "no-such-run"}', message_id="m4")])
    stack.publisher.send(settings.reenroll_work_queue, [OutgoingMessage(body=b'{"runId": 1}', message_id="w1")])
    stack.pump()
    assert sorted(s.message.message_id for s, _ in stack.dead_letters) == ["m1", "m2", "m3", "m4", "w1"]


def test_a_failed_training_fails_the_run_and_releases_the_lock() -> None:
    stack = make_stack()
    enrolled_users(stack, 1)
    stack.face.fail_training = True  # the enrollment's training already ran; the run's will fail
    run = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    stack.pump()
    final = stack.services.reenrollment.progress(run.run_id)
    assert (final.status, final.message) == ("failed", "training the new group failed")
    again = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))  # the lock is free
    assert again.run_id != run.run_id


def test_a_failed_verification_keeps_the_old_group_active() -> None:
    stack = make_stack()
    enrolled_users(stack, 1)
    old = stack.services.groups.active()
    run = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    stack.pump(limit=2)  # fan-out and the work item
    stack.face.detected.clear()
    real_identify = stack.face.identify

    def nobody(group_id: str, face_ids: list[str], **kw: object) -> list[object]:
        return [type(r)(r.face_id, ()) for r in real_identify(group_id, face_ids)]

    stack.face.identify = nobody  # type: ignore[method-assign,assignment]
    stack.pump()
    final = stack.services.reenrollment.progress(run.run_id)
    assert final.status == "failed" and "verification failed" in str(final.message)
    assert stack.services.groups.active() == old


def test_resume_re_emits_lost_messages_and_refuses_finished_runs() -> None:
    from shared.commands import ResumeReenrollment
    from tests.service.support import principal

    stack = make_stack()
    enrolled_users(stack, 2)
    run = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    stack.publisher.pending.clear()  # the host stopped: the fan-out message is lost
    admin = principal("admin", admin=True)
    assert stack.services.reenrollment.resume(ResumeReenrollment(admin, run.run_id)).status == "fanningOut"
    stack.pump(limit=1)  # the fan-out
    stack.publisher.pending.clear()  # and the work messages are lost too
    stack.services.reenrollment.resume(ResumeReenrollment(admin, run.run_id))
    stack.pump()
    assert stack.services.reenrollment.progress(run.run_id).status == "switched"
    with pytest.raises(Conflict):
        stack.services.reenrollment.resume(ResumeReenrollment(admin, run.run_id))


def test_a_second_delivery_defers_to_the_lease_holder() -> None:
    from tests.service.support import Interleaver

    stack = make_stack()
    (user,) = enrolled_users(stack, 1)
    run = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    stack.pump(limit=1)
    stack.publisher.pending.clear()
    work = stack.services.reenrollment.work
    steps = Interleaver(stack, [lambda: work(ReenrollWork(run.run_id, user)), lambda: work(ReenrollWork(run.run_id, user))],
                        schedule=[0] * 6 + [1] * 1000)
    steps.run()
    assert steps.errors == {}
    assert sorted(str(r) for r in steps.results.values()) == ["deferred", "done"]
    deferred = stack.publisher.pending
    assert len(deferred) == 1 and deferred[0].message.scheduled_enqueue_time is not None
    record = stack.user(user)
    assert [n for g, p, n in stack.persons() if p == record.new_person_id] == [1]


def test_users_revoked_or_without_consent_are_skipped() -> None:
    stack = make_stack()
    kept, revoked = enrolled_users(stack, 2)
    run = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    stack.pump(limit=1)  # fan-out: two work items
    stack.services.revocation.erase(Revoke(revoked, "req"))  # erased before its work item runs
    stack.pump()
    items = {i.user_key: i.status for i in stack.services.repos.items.partition(run.run_id)}
    assert items == {kept: "done", revoked: "skipped"}
    assert stack.status(kept) == "enrolled"
