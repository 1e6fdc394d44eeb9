"""Re-enrollment after a recognition model update: blue/green onto a new LargePersonGroup.

A group is pinned to its recognition model, so a new model means a new group. The run:

1. **start** (admin API or a message on ``model-updates``): one run at a time (an ETag-guarded
   ``reenroll/current`` row); the run record is written before anything else happens.
2. **fanout** (control messages on ``model-updates``): batches of users with kept photos become one
   work item each on ``reenroll-work`` (items inserted in batch transactions, messages sent in one
   batch), released ``RELEASE_LEAD`` ahead of their share of the Face call budget
   (``FACE_CALLS_PER_SECOND``). The workers' Face calls take tokens from one bucket per process
   (shared/domain/pacing.py), so a slow item's budget is spent by the next instead of being lost.
   Message ids are deterministic, so a redelivered batch re-sends nothing new.
3. **work** (``reenroll-work``): creates the person in the new group and adds the kept photos, which
   Face detects under the new group's model. Intent is written before each Face call; a crash or
   redelivery neither duplicates a person nor a face. Revocation wins: a user without current
   consent is skipped, and a person created concurrently with a revocation is deleted again.
4. **check** (scheduled control messages, never a sleep inside a function): progress is counted
   from the work items; when all are final the new group is trained, training is followed, the new
   group is verified (kept photos identified as their own person), and the active group is switched
   atomically (ETag). The old group is kept for ``GROUP_GRACE_DAYS`` (purge_timer deletes it).
   Users without kept photos see ``reenrollRequired``: their person is in the old group.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from shared.adapters.repositories import Repositories
from shared.commands import (
    CancelReenrollment,
    ReenrollCheck,
    ReenrollControl,
    ReenrollFanout,
    ReenrollWork,
    ResumeReenrollment,
    StartReenrollment,
)
from shared.domain import reenrollment as rr
from shared.domain.enrollment import group_id_for, iso, parse_iso
from shared.domain.records import ReenrollLock, ReenrollRun, SupersededGroup, User, WorkItem
from shared.envelopes import control_message, work_message
from shared.errors import (
    Conflict,
    FaceBadRequest,
    FaceInvalidImage,
    Invalid,
    LargePersonGroupExists,
    LargePersonGroupNotFound,
    NotFound,
    PersonNotFound,
    PhotoNotFound,
    RecordConflict,
    RecordExists,
    TransientFailure,
)
from shared.ports import FacePort, MessagePublisherPort, OutgoingMessage, PhotoStorePort
from shared.results import ReenrollProgress
from shared.services.audit import AuditLog
from shared.services.consent import ConsentService
from shared.services.events import EventOutbox
from shared.services.groups import REENROLL_TARGET, GroupDirectory, PersonFactory
from shared.settings import Settings

log = logging.getLogger("shared.reenrollment")

FANOUT_BATCH = 200
FANOUT_LEAD = timedelta(seconds=20)  # the next batch is queued this long before the current one runs out
FANOUT_CHUNK = 25  # users listed, inserted and sent together within a fan-out batch
LIST_THREADS = 8
RELEASE_LEAD = timedelta(seconds=3)  # a work item is visible this long before its share of the budget
VERIFY_SAMPLE = 3


class _NoKeptPhotos(Exception):
    """The user record no longer keeps photos (found while the person factory reads it)."""


class LeaseLost(Exception):
    """Another delivery took the work item over (this one was too slow): stop touching it."""


class ReenrollmentService:
    def __init__(self, *, repos: Repositories, photos: PhotoStorePort, face: FacePort, audit: AuditLog,
                 publisher: MessagePublisherPort, consent: ConsentService, groups: GroupDirectory,
                 persons: PersonFactory, settings: Settings, clock: Callable[[], datetime], events: EventOutbox) -> None:
        self._repos = repos
        self._events = events
        self._photos = photos
        self._face = face
        self._audit = audit
        self._publisher = publisher
        self._consent = consent
        self._groups = groups
        self._persons = persons
        self._settings = settings
        self._clock = clock

    # --- messages -------------------------------------------------------------------------------
    def _control(self, command: ReenrollControl, *, message_id: str, at: datetime | None = None) -> None:
        self._publisher.send(self._settings.model_updates_queue, [control_message(command, message_id=message_id, at=at)])

    def _send_work(self, run_id: str, user_key: str, *, message_id: str, at: datetime | None = None) -> None:
        self._publisher.send(self._settings.reenroll_work_queue,
                             [work_message(ReenrollWork(run_id, user_key), message_id=message_id, at=at)])

    def _check_later(self, run_id: str, seq: int, delay: float) -> None:
        at = self._clock() + timedelta(seconds=delay)
        self._control(ReenrollCheck(run_id, seq), message_id=f"{run_id}:check:{seq}", at=at)

    # --- start ----------------------------------------------------------------------------------
    def start(self, command: StartReenrollment) -> ReenrollProgress:
        model = command.recognition_model
        if model not in self._settings.recognition_models:  # a start message bypasses the HTTP edge's check
            raise Invalid(f"recognitionModel must be one of {', '.join(self._settings.recognition_models)}.")
        group = self._groups.active(create=False)
        if group is not None and group.recognition_model == model:
            raise Conflict(f"The active group already uses {model}.", code="AlreadyOnModel")
        now = self._clock()
        run_id = uuid.uuid4().hex[:16]
        new_group = group_id_for(model)
        # The new group id on the lock too: purge_timer sweeps orphans in the group being built.
        lock = self._repos.reenroll_lock.get()
        if lock is not None:
            if lock.active:
                running = self._repos.runs.get(lock.run_id)
                if running is None or running.status in rr.ACTIVE_STATES:
                    raise Conflict(f"A re-enrollment is already running: {lock.run_id}.", code="RunInProgress",
                                   runId=lock.run_id)
            lock.run_id, lock.active, lock.new_group_id = run_id, True, new_group
            try:
                self._repos.reenroll_lock.update(lock)
            except RecordConflict as exc:
                raise Conflict("Another re-enrollment was just started.", code="RunInProgress") from exc
        else:
            try:
                self._repos.reenroll_lock.insert(ReenrollLock(run_id=run_id, active=True, new_group_id=new_group))
            except RecordExists as exc:
                raise Conflict("Another re-enrollment was just started.", code="RunInProgress") from exc
        self._repos.runs.insert(ReenrollRun(run_id=run_id, status=rr.FANNING_OUT, target_model=model,
                                            new_group_id=new_group, old_group_id=group.group_id if group else None,
                                            started_at=iso(now), requested_by=command.requested_by[:200]))
        self._control(ReenrollFanout(run_id, "", now), message_id=f"{run_id}:fanout:")
        self._audit.write("reenroll.started", actor=command.requested_by[:200], runId=run_id, targetModel=model)
        log.info("re-enrollment %s started to %s", run_id, model)
        return self.progress(run_id)

    def control(self, command: ReenrollControl) -> None:
        """A model-updates message: start a run, fan out the next batch, or check progress."""
        if isinstance(command, StartReenrollment):
            self.start(command)
        elif isinstance(command, ReenrollFanout):
            self._fanout(command.run_id, after=command.after, slot_at=command.slot_at or self._clock())
        else:
            self._check(command.run_id, seq=command.seq)

    # --- the run record ---------------------------------------------------------------------------
    def _run(self, run_id: str) -> ReenrollRun:
        run = self._repos.runs.get(run_id)
        if run is None:
            raise NotFound(f"unknown re-enrollment run {run_id[:40]!r}")
        return run

    def _save_run(self, run_id: str, change: Callable[[ReenrollRun], object], *, status: str | None = None) -> ReenrollRun:
        """Applies ``change`` (and moves to ``status``, if the state machine allows it) under the ETag."""
        def apply(run: ReenrollRun) -> None:
            if status is not None:
                run.status = rr.transition(run.status, status)
            change(run)

        run = self._repos.runs.mutate(apply, run_id, attempts=10)
        if run is None:
            raise NotFound(f"unknown re-enrollment run {run_id[:40]!r}")
        return run

    # --- fan-out --------------------------------------------------------------------------------
    def _fanout(self, run_id: str, *, after: str, slot_at: datetime) -> None:
        run = self._run(run_id)
        if run.status not in rr.ACTIVE_STATES or run.fanout_done:
            return
        if not run.group_created:
            try:
                self._face.create_group(run.new_group_id, name="face-enrollment", recognition_model=run.target_model)
            except LargePersonGroupExists:
                pass
            except FaceBadRequest as exc:
                # The Face service refuses the model (or the group): no redelivery can change that.
                # The run ends failed, with the reason, and releases the lock for the next start.
                self._fail(run_id, f"the new group could not be created: {exc.code or 'BadArgument'}")
                self._audit.write("reenroll.failed", actor="system", runId=run_id, reason=exc.code or "BadArgument")
                return

            def created(r: ReenrollRun) -> None:
                r.group_created = True

            run = self._save_run(run_id, created)
        per_call = 1.0 / max(self._settings.face_calls_per_second, 0.1)
        batch: list[User] = []
        for user in self._repos.users.range(pk_from=after or None, only=["store_photos", "kept_token"]):
            if user.user_key == after:
                continue
            batch.append(user)
            if len(batch) >= FANOUT_BATCH:
                break
        keepers = [u for u in batch if u.store_photos and u.kept_token]
        for start in range(0, len(keepers), FANOUT_CHUNK):
            slot_at = self._release_work(run_id, keepers[start:start + FANOUT_CHUNK], slot_at, per_call)
        if len(batch) >= FANOUT_BATCH:
            last = batch[-1].user_key
            self._control(ReenrollFanout(run_id, last, slot_at), message_id=f"{run_id}:fanout:{last}",
                          at=max(self._clock(), slot_at - FANOUT_LEAD))
            return
        total = sum(1 for _ in self._repos.items.range(pk=run_id, only=[]))

        def fanned_out(r: ReenrollRun) -> None:
            r.fanout_done, r.total, r.work_ends_at = True, total, iso(slot_at)

        self._save_run(run_id, fanned_out, status=rr.WORKING)
        self._check_later(run_id, 1, max(1.0, (slot_at - self._clock()).total_seconds() + 1.0))

    def _release_work(self, run_id: str, users: list[User], slot_at: datetime, per_call: float) -> datetime:
        """Creates and sends the work items of ``users`` (a chunk, so the first items go out while the
        rest of the batch is still being listed); returns the next free slot of the budget."""
        # The kept photos of the chunk are listed in parallel: one request each, and the first work
        # item cannot be sent before its chunk is listed.
        with ThreadPoolExecutor(max_workers=LIST_THREADS) as pool:
            counts = list(pool.map(lambda u: len(self._photos.list_kept(f"{u.kept_token}/")), users))
        items: list[WorkItem] = []
        messages: list[OutgoingMessage] = []
        now = self._clock()
        for user, kept in zip(users, counts, strict=True):
            if not kept:
                continue
            items.append(WorkItem(run_id=run_id, user_key=user.user_key, status=rr.QUEUED, photos=kept,
                                  scheduled_at=iso(slot_at)))
            # Released RELEASE_LEAD ahead of its share of the budget: the workers' token bucket
            # (shared/domain/pacing.py) paces the Face calls, so an item that starts a little early
            # costs nothing, while one that starts late would lose its budget for good.
            release = slot_at - RELEASE_LEAD
            messages.append(work_message(ReenrollWork(run_id, user.user_key), message_id=f"{run_id}:{user.user_key}",
                                         at=release if release > now else None))
            slot_at += timedelta(seconds=per_call * (1 + kept))
        # One batch transaction for the chunk (the items share the run's partition) and one send.
        # A redelivered batch: the items exist (left as they are), the message ids are duplicates.
        self._repos.items.insert_all(items)
        if messages:
            self._publisher.send(self._settings.reenroll_work_queue, messages)
        return slot_at

    # --- one user -------------------------------------------------------------------------------
    def work(self, command: ReenrollWork) -> str:
        run_id, user_key = command.run_id, command.user_key
        # Read every time, not cached: a cancelled run must stop its items at once.
        run = self._run(run_id)
        token = uuid.uuid4().hex
        claim = self._claim_item(run_id, user_key, token)
        if claim == "final":
            return "duplicate"
        if isinstance(claim, datetime):
            self._send_work(run_id, user_key, message_id=f"{run_id}:{user_key}:deferred:{token}", at=claim)
            return "deferred"
        assert isinstance(claim, WorkItem)
        try:
            return self._work(run, claim, token)
        except LeaseLost:
            return "deferred"

    def _claim_item(self, run_id: str, user_key: str, token: str) -> WorkItem | datetime | str:
        """The item, held by this delivery; "final" when it is done; else when to try again."""
        for _ in range(5):
            item = self._repos.items.get(run_id, user_key)
            if item is None or item.status in rr.FINAL_ITEM_STATES:
                return "final"
            now = self._clock()
            held_until = rr.lease_holder_until(item, now)
            if held_until is not None:
                return held_until
            item.claimed_by, item.claimed_at = token, iso(now)
            try:
                return self._repos.items.update(item)
            except RecordConflict:
                continue
        return self._clock() + rr.ITEM_LEASE

    def _work(self, run: ReenrollRun, item: WorkItem, token: str) -> str:
        user_key = item.user_key
        if run.status not in (rr.FANNING_OUT, rr.WORKING):
            return self._finish_item(item, token, rr.SKIPPED, reason=f"run is {run.status}")
        # No ledger read here: the person factory reads it after recording its intent (and again after
        # the create), and ``allowed`` makes those reads decide consent too (one round trip less).
        group_id = run.new_group_id
        seen: list[User] = []

        def reuse(u: User) -> tuple[str | None, bool]:
            # The person factory reads the user record anyway: what this item needs from it is taken
            # from that read instead of a read of its own.
            if not u.store_photos or not u.kept_token:
                raise _NoKeptPhotos
            seen.append(u)
            if u.new_group_id == group_id and u.new_person_id:
                return u.new_person_id, False
            if u.new_person_id and u.new_group_id and u.new_group_id == run.old_group_id:
                # An earlier run re-enrolled this user into the group this run replaces (it switched):
                # that person is the user's current one. It becomes the primary before this run's
                # target takes the new_* fields, so the record keeps naming it.
                u.previous_group_id, u.previous_person_id = u.group_id, u.person_id
                u.group_id, u.person_id = u.new_group_id, u.new_person_id
                u.new_group_id, u.new_person_id = None, None
                return None, True
            return None, False

        try:
            made = self._persons.ensure(user_key, group_id, slot=REENROLL_TARGET, reuse=reuse,
                                        allowed=self._consent.in_force)
        except _NoKeptPhotos:
            made = None
        if made is None:
            return self._finish_item(item, token, rr.SKIPPED, reason="no current consent to keep photos")
        person_id, created = made
        if not created and self._consent.current(user_key) is None:
            # A redelivery found its person made already, so the factory read no ledger: read it here.
            return self._finish_item(item, token, rr.SKIPPED, reason="no current consent to keep photos")
        try:
            item, added, failed = self._add_kept_faces(item, seen[-1], group_id, person_id, token)
        except (PhotoNotFound, PersonNotFound) as exc:
            # Erased meanwhile (kept photo or person gone): revocation wins below; otherwise try again.
            if self._consent.current(user_key) is None or self._repos.users.get(user_key) is None:
                self._persons.forget(user_key, group_id, person_id)
                return self._finish_item(item, token, rr.SKIPPED, reason="revoked during the run")
            raise TransientFailure("a kept photo or the person vanished during the work item") from exc
        # Revocation wins, also against a race with this very item: look again before reporting done.
        # The ledger alone decides (the user record is not read again): an erasure writes its tombstone
        # there before it deletes the record, and a decline never follows a consent in force. Whatever
        # this item made, an erasure deletes anyway: the person is tracked in personattempts from before
        # its creation, and a face added to a deleted person fails (PersonNotFound, above).
        if self._consent.current(user_key) is None:
            self._persons.forget(user_key, group_id, person_id)
            return self._finish_item(item, token, rr.SKIPPED, reason="revoked during the run",
                                     added=added, rejected=failed)
        if not added:
            return self._finish_item(item, token, rr.ITEM_FAILED, added=added, rejected=failed,
                                     reason=f"no kept photo usable with the new model ({len(failed)})")
        return self._finish_item(item, token, rr.DONE, faces=len(added), added=added, rejected=failed)

    def _finish_item(self, item: WorkItem, token: str, status: str, *, reason: str | None = None,
                     faces: int | None = None, added: list[str] | None = None,
                     rejected: list[str] | None = None) -> str:
        """The final write, which also records the last photo's outcome (one request, not two)."""
        now = iso(self._clock())

        def change(i: WorkItem) -> None:
            i.status, i.finished_at = status, now
            if reason is not None:
                i.reason = reason
            if faces is not None:
                i.faces = faces
            if added is not None:
                i.added, i.adding = list(added), None
            if rejected is not None:
                i.rejected = list(rejected)

        self._write_item(item, token, change)
        return status

    def _write_item(self, item: WorkItem, token: str, change: Callable[[WorkItem], None]) -> WorkItem:
        """Writes ``change`` with the ETag this delivery last wrote (no read first); the lease is renewed
        by the same write. On a conflict the item is read again: LeaseLost if another delivery holds it."""
        change(item)
        item.claimed_at = iso(self._clock())
        for _ in range(5):
            try:
                return self._repos.items.update(item)
            except RecordConflict:
                fresh = self._repos.items.get(item.run_id, item.user_key)
                if fresh is None or fresh.claimed_by != token:
                    raise LeaseLost(item.user_key) from None
                change(fresh)
                fresh.claimed_at = iso(self._clock())
                item = fresh
        raise LeaseLost(item.user_key)

    def _add_kept_faces(self, item: WorkItem, user: User, group_id: str, person_id: str,
                        token: str) -> tuple[WorkItem, list[str], list[str]]:
        """Adds the kept photos not added yet. Each photo's intent (``adding``) is written before its
        Face call, in the same write that records the previous photo's outcome; the last outcome is
        written by ``_finish_item``. So a photo costs one table write, and a crash anywhere leaves
        either the outcome or the intent, which the next delivery checks against Face."""
        done, failed = list(item.added), list(item.rejected)
        existing: set[str] | None = None
        if item.adding:
            # A previous delivery was adding this photo when it stopped: Face may have it already.
            existing = set()
            for face_id in self._face.get_person(group_id, person_id).persisted_face_ids:
                tag = self._face.get_face(group_id, person_id, face_id).get("userData")
                if tag:
                    existing.add(str(tag))
        for name in sorted(self._photos.list_kept(f"{user.kept_token}/")):
            tag = rr.photo_tag(name)
            if tag in done or tag in failed:
                continue
            if existing is not None and tag in existing:
                done.append(tag)
                continue

            item = self._write_item(item, token, _intent(tag, done, failed))
            try:
                self._face.add_face(group_id, person_id, self._photos.read_kept(name), user_data=tag)
                done.append(tag)
            except FaceInvalidImage:
                failed.append(tag)
        return item, done, failed

    # --- progress, training, verification, switch ----------------------------------------------
    def _counts(self, run_id: str, total: int = 0) -> dict[str, int]:
        counts = {rr.QUEUED: 0, rr.DONE: 0, rr.ITEM_FAILED: 0, rr.SKIPPED: 0}
        for item in self._repos.items.range(pk=run_id, only=["status"]):
            counts[item.status] = counts.get(item.status, 0) + 1
        # An erasure deletes the user's work item (it names the user): such a user was skipped.
        counts[rr.SKIPPED] += max(0, total - sum(counts.values()))
        return counts

    def _check(self, run_id: str, *, seq: int) -> None:
        run = self._run(run_id)
        status = run.status
        if status not in rr.ACTIVE_STATES:
            return
        if status == rr.FANNING_OUT:
            self._check_later(run_id, seq + 1, 5.0)
            return
        counts = self._counts(run_id, run.total)

        def counted(r: ReenrollRun) -> None:
            r.done, r.failed, r.skipped = counts[rr.DONE], counts[rr.ITEM_FAILED], counts[rr.SKIPPED]

        run = self._save_run(run_id, counted)
        group_id = run.new_group_id
        if status == rr.WORKING:
            if counts[rr.QUEUED] > 0:
                remaining = parse_iso(run.work_ends_at)
                wait = (remaining - self._clock()).total_seconds() if remaining else 5.0
                self._check_later(run_id, seq + 1, min(30.0, max(2.0, wait)))
                return
            started = iso(self._clock())

            def training(r: ReenrollRun) -> None:
                r.training_started_at = started

            self._save_run(run_id, training, status=rr.TRAINING)
            self._face.train(group_id)
            self._check_later(run_id, seq + 1, 1.0)
            return
        if status == rr.TRAINING:
            training_status = self._face.training_status(group_id).status
            if training_status in ("notStarted", "running"):
                self._check_later(run_id, seq + 1, min(30.0, 1.0 + seq * 0.5))
                return
            if training_status == "failed":
                self._fail(run_id, "training the new group failed")
                return
            run = self._save_run(run_id, _nothing, status=rr.VERIFYING)
            status = rr.VERIFYING
        if status == rr.VERIFYING:
            ok, detail = self._verify(run)
            if not ok:
                self._fail(run_id, f"verification failed: {detail}")
                self._audit.write("reenroll.failed", actor="system", runId=run_id, reason=detail)
                return
            self._switch(run)

    def _fail(self, run_id: str, message: str) -> None:
        def note(r: ReenrollRun) -> None:
            r.message = message

        run = self._save_run(run_id, note, status=rr.FAILED)
        # The failed run's group (and every person in it) goes the way of a superseded group: purge_timer
        # deletes it after GROUP_GRACE_DAYS. Its persons stay tracked (personattempts) until then, so an
        # erasure meanwhile still deletes them.
        self._repos.superseded.upsert(SupersededGroup(group_id=run.new_group_id, superseded_at=iso(self._clock()),
                                                      recognition_model=run.target_model, superseded_by=run_id))
        self._release(run_id)
        self._drop_items(run_id)

    def _drop_items(self, run_id: str) -> None:
        """Work items name users: they go when their run ends (the run keeps the counts)."""
        for item in self._repos.items.range(pk=run_id, only=[]):
            self._repos.items.delete(run_id, item.user_key)

    def _verify(self, run: ReenrollRun) -> tuple[bool, str]:
        """Identifies a sample of kept photos against the new group: each must find its own person."""
        checked = 0
        for item in self._repos.items.range(pk=run.run_id):
            if item.status != rr.DONE:
                continue
            user = self._repos.users.get(item.user_key)
            if user is None or not user.new_person_id or not user.kept_token:
                continue
            names = sorted(self._photos.list_kept(f"{user.kept_token}/"))
            if not names:
                continue
            faces = self._face.detect(self._photos.read_kept(names[0]), recognition_model=run.target_model)
            if not faces or faces[0].face_id is None:
                continue
            result = self._face.identify(run.new_group_id, [faces[0].face_id], max_candidates=1)
            best = result[0].candidates[0].person_id if result and result[0].candidates else None
            if best != user.new_person_id:
                return False, "a kept photo was not identified as its own person in the new group"
            checked += 1
            if checked >= VERIFY_SAMPLE:
                break
        if checked == 0 and run.done > 0:
            return False, "no kept photo could be verified"
        return True, f"{checked} sampled"

    def _switch(self, run: ReenrollRun) -> None:
        now = self._clock()
        for _ in range(10):
            state = self._groups.state()
            if state is None:
                break
            if state.group_id == run.new_group_id:
                break  # switched already (a redelivered check)
            old_group, old_model = state.group_id, state.recognition_model
            state.group_id, state.recognition_model, state.created, state.created_at = (
                run.new_group_id, run.target_model, True, iso(now))
            state.training_status, state.dirty = "succeeded", False
            state.training_started_at = state.last_succeeded_started_at = run.training_started_at
            try:
                # The switch: one conditional write of the active-group row (ETag).
                self._groups.save(state)
            except RecordConflict:
                continue
            self._repos.superseded.upsert(SupersededGroup(group_id=old_group, superseded_at=iso(now),
                                                          recognition_model=old_model, superseded_by=run.run_id))
            break

        # The door systems' events, before the run is marked switched (the completion marker): a
        # redelivered check after a crash finds the group switched and queues the same events again.
        self._events.group_switched(run_id=run.run_id, group_id=run.new_group_id, recognition_model=run.target_model)
        # Everyone still enrolled only in a group other than the new one must enroll again: those
        # without kept photos (never in the run) and those whose photos failed. One pass over the
        # users, as the fan-out made.
        for user in self._repos.users.range(only=["person_id", "group_id", "new_group_id", "new_person_id"]):
            moved = user.new_group_id == run.new_group_id and user.new_person_id
            if user.person_id and user.group_id != run.new_group_id and not moved:
                self._events.user_reenroll_required(user.user_key, run_id=run.run_id)

        def switched(r: ReenrollRun) -> None:
            r.switched_at = iso(now)

        self._save_run(run.run_id, switched, status=rr.SWITCHED)
        self._release(run.run_id)
        self._drop_items(run.run_id)
        self._audit.write("reenroll.switched", actor="system", runId=run.run_id, targetModel=run.target_model)
        log.info("re-enrollment %s switched the active group", run.run_id)

    def _release(self, run_id: str) -> None:
        lock = self._repos.reenroll_lock.get()
        if lock and lock.run_id == run_id:
            lock.active = False
            try:
                self._repos.reenroll_lock.update(lock)
            except RecordConflict:
                pass

    # --- operators ------------------------------------------------------------------------------
    def progress(self, run_id: str) -> ReenrollProgress:
        run = self._run(run_id)
        counts = self._counts(run_id, run.total) if run.status in rr.ACTIVE_STATES else None
        done = counts[rr.DONE] if counts else run.done
        failed = counts[rr.ITEM_FAILED] if counts else run.failed
        skipped = counts[rr.SKIPPED] if counts else run.skipped
        total = run.total or (sum(counts.values()) if counts else 0)
        return ReenrollProgress(run_id=run_id, status=run.status, recognition_model=run.target_model, total=total,
                                done=done, failed=failed, skipped=skipped, started_at=run.started_at,
                                switched_at=run.switched_at, message=run.message)

    def cancel(self, command: CancelReenrollment) -> ReenrollProgress:
        """Stops a run for good: it ends failed ("cancelled"), releases the lock, and its new group,
        which never served anyone, is deleted with every person in it. Work items still in flight
        find the run failed and skip; users keep their enrollment in the active group."""
        run = self._run(command.run_id)
        if run.status not in rr.ACTIVE_STATES:
            raise Conflict(f"Run {run.run_id} is {run.status}; nothing to cancel.", code="NotRunning")
        self._fail(run.run_id, f"cancelled by an administrator at {iso(self._clock())}")
        self._audit.write("reenroll.cancelled", actor=command.actor.user_key, runId=run.run_id)
        self.discard_group(run.run_id)
        return self.progress(run.run_id)

    def discard_group(self, run_id: str) -> None:
        """Deletes a failed run's new group and forgets it on the users it was being built for.
        Idempotent; the group is never the active one (a run fails only before it switches)."""
        run = self._run(run_id)
        active = self._groups.active(create=False)
        if run.status != rr.FAILED or not run.new_group_id or (active and active.group_id == run.new_group_id):
            return
        try:
            self._face.delete_group(run.new_group_id)
        except LargePersonGroupNotFound:
            pass
        # The users it was being built for are found from the attempt rows of its persons (work items
        # are gone once the run ends); the group's delete confirms every person's, so the rows go too.
        group = run.new_group_id
        for attempt in list(self._repos.attempts.range(only=["group_id"])):
            if attempt.group_id != group:
                continue

            def forget(u: User) -> None:
                if u.new_group_id == group:
                    u.new_group_id, u.new_person_id, u.new_person_attempt = None, None, None

            self._repos.users.mutate(forget, attempt.user_key, attempts=10)
            self._repos.attempts.delete(attempt.user_key, attempt.attempt_id)
        self._repos.superseded.delete(rk=group)  # nothing left for purge_timer to delete

    def resume(self, command: ResumeReenrollment) -> ReenrollProgress:
        """Re-emits the run's next control message (a stopped host, a lost message)."""
        run_id = command.run_id
        run = self._run(run_id)
        if run.status not in rr.ACTIVE_STATES:
            raise Conflict(f"Run {run_id} is {run.status}; nothing to resume.", code="NotRunning")
        nonce = uuid.uuid4().hex[:8]
        if run.status == rr.FANNING_OUT:
            # Fan-out restarts from the beginning: items and work messages already sent are deduplicated.
            self._control(ReenrollFanout(run_id, "", self._clock()), message_id=f"{run_id}:fanout:resume:{nonce}")
        else:
            self._control(ReenrollCheck(run_id, 1000), message_id=f"{run_id}:check:resume:{nonce}")
        # Work items still queued may have lost their messages (e.g. dead-lettered): send them again.
        for item in self._repos.items.range(pk=run_id, only=["status"]):
            if item.status == rr.QUEUED:
                self._send_work(run_id, item.user_key, message_id=f"{run_id}:{item.user_key}:resume:{nonce}")
        self._audit.write("reenroll.resumed", actor=command.actor.user_key, runId=run_id)
        return self.progress(run_id)


def _intent(tag: str, done: list[str], failed: list[str]) -> Callable[[WorkItem], None]:
    """The write before a photo's Face call: the outcomes so far, and this photo as in progress."""
    added, rejected = list(done), list(failed)

    def change(item: WorkItem) -> None:
        item.added, item.rejected, item.adding = list(added), list(rejected), tag

    return change


def _nothing(run: ReenrollRun) -> None:
    return None
