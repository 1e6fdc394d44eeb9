"""Re-enrollment after a recognition model update: blue/green onto a new LargePersonGroup.

A group is pinned to its recognition model, so a new model means a new group. The run:

1. **start** (admin API or a message on ``model-updates``): one run at a time (an ETag-guarded
   ``reenroll/current`` row); the run record is written before anything else happens.
2. **fanout** (control messages on ``model-updates``): batches of users with kept photos become one
   work item each on ``reenroll-work``, with scheduled enqueue times that spend the Face call budget
   evenly (``FACE_CALLS_PER_SECOND``): item i starts when the calls of items before it are paid for.
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

import hashlib
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.commands import (
    ReenrollCheck,
    ReenrollControl,
    ReenrollFanout,
    ReenrollWork,
    ResumeReenrollment,
    StartReenrollment,
)
from shared.domain import enrollment as dom
from shared.domain.enrollment import TABLE_STATE, TABLE_USERS, USER_ROW, iso, parse_iso
from shared.envelopes import control_message, work_message
from shared.errors import (
    Conflict,
    FaceInvalidImage,
    LargePersonGroupExists,
    NotFound,
    PersonNotFound,
    RecordConflict,
    RecordExists,
    TransientFailure,
)
from shared.ports import FacePort, MessagePublisherPort, PhotoStorePort, RecordStorePort
from shared.results import ReenrollProgress
from shared.services.audit import AuditLog
from shared.services.consent import ConsentService
from shared.services.groups import GroupDirectory
from shared.services.records import update_record
from shared.settings import Settings

log = logging.getLogger("shared.reenrollment")

TABLE_RUNS, TABLE_ITEMS = "reenrollruns", "reenrollitems"
CURRENT = ("reenroll", "current")
ACTIVE_STATES = frozenset({"fanningOut", "working", "training", "verifying"})
FINAL_ITEM_STATES = frozenset({"done", "failed", "skipped"})
FANOUT_BATCH = 200
FANOUT_LEAD = timedelta(seconds=20)  # the next batch is queued this long before the current one runs out
VERIFY_SAMPLE = 3
# A work item is worked on by one delivery at a time: the holder refreshes this lease at every step.
# Another delivery meanwhile (a redelivery after a lost lock, a resume) defers itself to the lease's
# end instead of racing the holder (two racing deliveries could add the same face twice).
ITEM_LEASE = timedelta(seconds=20)


class LeaseLost(Exception):
    """Another delivery took the work item over (this one was too slow): stop touching it."""


def _photo_tag(name: str) -> str:
    # The userData a re-enrolled face carries: which kept photo it came from (no personal data).
    return hashlib.sha256(name.encode()).hexdigest()[:32]


class ReenrollmentService:
    def __init__(self, *, records: RecordStorePort, photos: PhotoStorePort, face: FacePort, audit: AuditLog,
                 publisher: MessagePublisherPort, consent: ConsentService, groups: GroupDirectory, settings: Settings,
                 clock: Callable[[], datetime]) -> None:
        self._records = records
        self._photos = photos
        self._face = face
        self._audit = audit
        self._publisher = publisher
        self._consent = consent
        self._groups = groups
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
        recognition_model, requested_by = command.recognition_model, command.requested_by
        group = self._groups.active(create=False)
        if group is not None and group.recognition_model == recognition_model:
            raise Conflict(f"The active group already uses {recognition_model}.", code="AlreadyOnModel")
        now = self._clock()
        run_id = uuid.uuid4().hex[:16]
        new_group = f"faceenroll-{recognition_model.replace('_', '')}-{uuid.uuid4().hex[:12]}"
        found = self._records.get(TABLE_STATE, *CURRENT)
        # newGroupId here too: purge_timer sweeps orphans in the group being built.
        current = {"PartitionKey": CURRENT[0], "RowKey": CURRENT[1], "runId": run_id, "active": True,
                   "newGroupId": new_group}
        if found is not None:
            row, etag = found
            if row.get("active"):
                running = self._records.get(TABLE_RUNS, str(row["runId"]), "run")
                if running is None or running[0].get("status") in ACTIVE_STATES:
                    raise Conflict(f"A re-enrollment is already running: {row['runId']}.", code="RunInProgress",
                                   runId=str(row["runId"]))
            try:
                self._records.update(TABLE_STATE, current, etag=etag)
            except RecordConflict as exc:
                raise Conflict("Another re-enrollment was just started.", code="RunInProgress") from exc
        else:
            try:
                self._records.insert(TABLE_STATE, current)
            except RecordExists as exc:
                raise Conflict("Another re-enrollment was just started.", code="RunInProgress") from exc
        run = {"PartitionKey": run_id, "RowKey": "run", "runId": run_id, "status": "fanningOut",
               "targetModel": recognition_model, "newGroupId": new_group,
               "oldGroupId": group.group_id if group else None, "startedAt": iso(now), "requestedBy": requested_by[:200],
               "total": 0, "done": 0, "failed": 0, "skipped": 0, "fanoutDone": False, "groupCreated": False}
        self._records.insert(TABLE_RUNS, run)
        self._control(ReenrollFanout(run_id, "", now), message_id=f"{run_id}:fanout:")
        self._audit.write("reenroll.started", actor=requested_by[:200], runId=run_id, targetModel=recognition_model)
        log.info("re-enrollment %s started to %s", run_id, recognition_model)
        return self.progress(run_id)

    def control(self, command: ReenrollControl) -> None:
        """A model-updates message: start a run, fan out the next batch, or check progress."""
        if isinstance(command, StartReenrollment):
            self.start(command)
        elif isinstance(command, ReenrollFanout):
            self._fanout(command.run_id, after=command.after, slot_at=command.slot_at or self._clock())
        else:
            self._check(command.run_id, seq=command.seq)

    # --- fan-out --------------------------------------------------------------------------------
    def _run(self, run_id: str) -> tuple[dict[str, Any], str]:
        found = self._records.get(TABLE_RUNS, run_id, "run")
        if found is None:
            raise NotFound(f"unknown re-enrollment run {run_id[:40]!r}")
        return found

    def _save_run(self, run_id: str, **changes: Any) -> dict[str, Any]:
        run = update_record(self._records, TABLE_RUNS, run_id, "run", lambda r: r.update(changes), attempts=10)
        if run is None:
            raise NotFound(f"unknown re-enrollment run {run_id[:40]!r}")
        return run

    def _fanout(self, run_id: str, *, after: str, slot_at: datetime) -> None:
        run, _ = self._run(run_id)
        if run.get("status") not in ACTIVE_STATES or run.get("fanoutDone"):
            return
        if not run.get("groupCreated"):
            try:
                self._face.create_group(str(run["newGroupId"]), name="face-enrollment", recognition_model=str(run["targetModel"]))
            except LargePersonGroupExists:
                pass
            run = self._save_run(run_id, groupCreated=True)
        per_call = 1.0 / max(self._settings.face_calls_per_second, 0.1)
        rows = self._records.range(TABLE_USERS, pk_from=after or None,
                                   select=["PartitionKey", "RowKey", "storePhotos", "keptToken"])
        batch: list[dict[str, Any]] = []
        for row in rows:
            if row["PartitionKey"] == after or row.get("RowKey") != USER_ROW:
                continue
            batch.append(row)
            if len(batch) >= FANOUT_BATCH:
                break
        for row in batch:
            user_key = str(row["PartitionKey"])
            if not row.get("storePhotos") or not row.get("keptToken"):
                continue
            kept = sorted(self._photos.list_kept(f"{row['keptToken']}/"))
            if not kept:
                continue
            try:
                self._records.insert(TABLE_ITEMS, {"PartitionKey": run_id, "RowKey": user_key, "status": "queued",
                                                   "photos": len(kept), "scheduledAt": iso(slot_at)})
            except RecordExists:
                pass  # a redelivered batch: the message id below makes the send a duplicate too
            self._send_work(run_id, user_key, message_id=f"{run_id}:{user_key}",
                            at=slot_at if slot_at > self._clock() else None)
            slot_at += timedelta(seconds=per_call * (1 + len(kept)))
        if len(batch) >= FANOUT_BATCH:
            last = str(batch[-1]["PartitionKey"])
            self._control(ReenrollFanout(run_id, last, slot_at), message_id=f"{run_id}:fanout:{last}",
                          at=max(self._clock(), slot_at - FANOUT_LEAD))
            return
        total = sum(1 for _ in self._records.range(TABLE_ITEMS, pk=run_id, select=["RowKey"]))
        self._save_run(run_id, fanoutDone=True, total=total, status="working", workEndsAt=iso(slot_at))
        self._check_later(run_id, 1, max(1.0, (slot_at - self._clock()).total_seconds() + 1.0))

    # --- one user -------------------------------------------------------------------------------
    def work(self, command: ReenrollWork) -> str:
        run_id, user_key = command.run_id, command.user_key
        run, _ = self._run(run_id)
        token = uuid.uuid4().hex
        claim = self._claim_item(run_id, user_key, token)
        if claim == "final":
            return "duplicate"
        if isinstance(claim, datetime):
            self._send_work(run_id, user_key, message_id=f"{run_id}:{user_key}:deferred:{token}", at=claim)
            return "deferred"
        try:
            return self._work(run, run_id, user_key, token)
        except LeaseLost:
            return "deferred"

    def _claim_item(self, run_id: str, user_key: str, token: str) -> datetime | str | None:
        """None when this delivery holds the item; "final" when it is done; else when to try again."""
        for _ in range(5):
            found = self._records.get(TABLE_ITEMS, run_id, user_key)
            if found is None or found[0].get("status") in FINAL_ITEM_STATES:
                return "final"
            item, etag = found
            now = self._clock()
            held = parse_iso(item.get("claimedAt"))
            if item.get("claimedBy") and held is not None and now - held < ITEM_LEASE:
                return held + ITEM_LEASE + timedelta(seconds=1)
            item.update({"claimedBy": token, "claimedAt": iso(now)})
            try:
                self._records.update(TABLE_ITEMS, item, etag=etag)
                return None
            except RecordConflict:
                continue
        return self._clock() + ITEM_LEASE

    def _work(self, run: dict[str, Any], run_id: str, user_key: str, token: str) -> str:
        if run.get("status") not in ("fanningOut", "working"):
            return self._finish_item(run_id, user_key, "skipped", reason=f"run is {run.get('status')}")
        user = self._user(user_key)
        if user is None or not user.get("storePhotos") or self._consent.current(user_key) is None:
            return self._finish_item(run_id, user_key, "skipped", reason="no current consent to keep photos")
        group_id = str(run["newGroupId"])
        person_id = self._ensure_new_person(user_key, group_id)
        if person_id is None:
            return self._finish_item(run_id, user_key, "skipped", reason="revoked during the run")
        added, failed = self._add_kept_faces(run_id, user_key, user, group_id, person_id, token)
        # Revocation wins, also against a race with this very item: look again before reporting done.
        if self._consent.current(user_key) is None or self._user(user_key) is None:
            try:
                self._face.delete_person(group_id, person_id)
            except PersonNotFound:
                pass
            return self._finish_item(run_id, user_key, "skipped", reason="revoked during the run")
        if added == 0:
            return self._finish_item(run_id, user_key, "failed", reason=f"no kept photo usable with the new model ({failed})")
        return self._finish_item(run_id, user_key, "done", faces=added)

    def _user(self, user_key: str) -> dict[str, Any] | None:
        found = self._records.get(TABLE_USERS, user_key, USER_ROW)
        return found[0] if found else None

    def _finish_item(self, run_id: str, user_key: str, status: str, **fields: Any) -> str:
        update_record(self._records, TABLE_ITEMS, run_id, user_key,
                      lambda r: r.update({"status": status, "finishedAt": iso(self._clock()), **fields}))
        return status

    def _ensure_new_person(self, user_key: str, group_id: str) -> str | None:
        for _ in range(5):
            found = self._records.get(TABLE_USERS, user_key, USER_ROW)
            if found is None:
                return None
            user, etag = found
            if user.get("newGroupId") == group_id and user.get("newPersonId"):
                return str(user["newPersonId"])
            if user.get("newGroupId") == group_id and user.get("newPersonAttempt"):
                abandoned = list(user.get("abandonedAttempts_json") or [])
                abandoned.append(user["newPersonAttempt"])
                user["abandonedAttempts_json"] = abandoned
            attempt = uuid.uuid4().hex
            user.update({"newGroupId": group_id, "newPersonAttempt": attempt, "newPersonId": None})
            try:
                etag = self._records.update(TABLE_USERS, user, etag=etag)
            except RecordConflict:
                continue
            person_id = self._face.create_person(group_id, name=dom.person_label(attempt), user_data=attempt)
            user.update({"newPersonId": person_id, "newPersonAttempt": None})
            try:
                self._records.update(TABLE_USERS, user, etag=etag)
                return person_id
            except RecordConflict:
                # Revoked (row gone) or changed meanwhile: the person must not outlive this attempt.
                self._face.delete_person(group_id, person_id)
                continue
        raise TransientFailure("could not record the new person")

    def _add_kept_faces(self, run_id: str, user_key: str, user: dict[str, Any], group_id: str,
                        person_id: str, token: str) -> tuple[int, int]:
        found = self._records.get(TABLE_ITEMS, run_id, user_key)
        item = found[0] if found else {}
        done: list[str] = list(item.get("added_json") or [])
        failed: list[str] = list(item.get("rejected_json") or [])
        pending = item.get("adding")
        existing: set[str] | None = None
        if pending:
            # A previous delivery was adding this photo when it stopped: Face may have it already.
            existing = set()
            for face_id in self._face.get_person(group_id, person_id).persisted_face_ids:
                tag = self._face.get_face(group_id, person_id, face_id).get("userData")
                if tag:
                    existing.add(str(tag))
        for name in sorted(self._photos.list_kept(f"{user['keptToken']}/")):
            tag = _photo_tag(name)
            if tag in done or tag in failed:
                continue
            if existing is not None and tag in existing:
                done.append(tag)
                self._update_item(run_id, user_key, token, added_json=done, adding=None)
                continue
            self._update_item(run_id, user_key, token, adding=tag)
            try:
                self._face.add_face(group_id, person_id, self._photos.read_kept(name), user_data=tag)
                done.append(tag)
            except FaceInvalidImage:
                failed.append(tag)
            self._update_item(run_id, user_key, token, added_json=done, rejected_json=failed, adding=None)
        return len(done), len(failed)

    def _update_item(self, run_id: str, user_key: str, token: str, **fields: Any) -> None:
        """Records progress and renews the lease; LeaseLost if another delivery holds the item now."""
        def change(row: dict[str, Any]) -> None:
            if row.get("claimedBy") != token:
                raise LeaseLost(user_key)
            row.update(fields, claimedAt=iso(self._clock()))

        update_record(self._records, TABLE_ITEMS, run_id, user_key, change)

    # --- progress, training, verification, switch ----------------------------------------------
    def _counts(self, run_id: str) -> dict[str, int]:
        counts = {"queued": 0, "done": 0, "failed": 0, "skipped": 0}
        for row in self._records.range(TABLE_ITEMS, pk=run_id, select=["RowKey", "status"]):
            counts[str(row.get("status"))] = counts.get(str(row.get("status")), 0) + 1
        return counts

    def _check(self, run_id: str, *, seq: int) -> None:
        run, _ = self._run(run_id)
        status = run.get("status")
        if status not in ACTIVE_STATES:
            return
        if status == "fanningOut":
            self._check_later(run_id, seq + 1, 5.0)
            return
        counts = self._counts(run_id)
        run = self._save_run(run_id, done=counts["done"], failed=counts["failed"], skipped=counts["skipped"])
        group_id = str(run["newGroupId"])
        if status == "working":
            if counts["queued"] > 0:
                remaining = parse_iso(run.get("workEndsAt"))
                wait = (remaining - self._clock()).total_seconds() if remaining else 5.0
                self._check_later(run_id, seq + 1, min(30.0, max(2.0, wait)))
                return
            self._save_run(run_id, status="training", trainingStartedAt=iso(self._clock()))
            self._face.train(group_id)
            self._check_later(run_id, seq + 1, 1.0)
            return
        if status == "training":
            training = self._face.training_status(group_id).status
            if training in ("notStarted", "running"):
                self._check_later(run_id, seq + 1, min(30.0, 1.0 + seq * 0.5))
                return
            if training == "failed":
                self._save_run(run_id, status="failed", message="training the new group failed")
                self._release(run_id)
                return
            self._save_run(run_id, status="verifying")
            status = "verifying"
        if status == "verifying":
            ok, detail = self._verify(run_id, run)
            if not ok:
                self._save_run(run_id, status="failed", message=f"verification failed: {detail}")
                self._audit.write("reenroll.failed", actor="system", runId=run_id, reason=detail)
                self._release(run_id)
                return
            self._switch(run_id, run)

    def _verify(self, run_id: str, run: dict[str, Any]) -> tuple[bool, str]:
        """Identifies a sample of kept photos against the new group: each must find its own person."""
        checked = 0
        for item in self._records.range(TABLE_ITEMS, pk=run_id):
            if item.get("status") != "done":
                continue
            user = self._user(str(item["RowKey"]))
            if user is None or not user.get("newPersonId") or not user.get("keptToken"):
                continue
            names = sorted(self._photos.list_kept(f"{user['keptToken']}/"))
            if not names:
                continue
            faces = self._face.detect(self._photos.read_kept(names[0]), recognition_model=str(run["targetModel"]))
            if not faces or faces[0].face_id is None:
                continue
            result = self._face.identify(str(run["newGroupId"]), [faces[0].face_id], max_candidates=1)
            best = result[0].candidates[0].person_id if result and result[0].candidates else None
            if best != user["newPersonId"]:
                return False, "a kept photo was not identified as its own person in the new group"
            checked += 1
            if checked >= VERIFY_SAMPLE:
                break
        if checked == 0 and int(run.get("done") or 0) > 0:
            return False, "no kept photo could be verified"
        return True, f"{checked} sampled"

    def _switch(self, run_id: str, run: dict[str, Any]) -> None:
        now = self._clock()
        for _ in range(10):
            found = self._groups.training_row()
            if found is None:
                break
            row, etag = found
            if row.get("groupId") == run["newGroupId"]:
                break  # switched already (a redelivered check)
            old_group, old_model = row.get("groupId"), row.get("recognitionModel")
            new_row = {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"], "groupId": run["newGroupId"],
                       "recognitionModel": run["targetModel"], "created": True, "createdAt": iso(now),
                       "trainingStatus": "succeeded", "trainingStartedAt": run.get("trainingStartedAt"),
                       "lastSucceededStartedAt": run.get("trainingStartedAt"), "dirty": False}
            try:
                # The switch: one conditional write of the active-group row (ETag).
                self._groups.save(new_row, etag)
            except RecordConflict:
                continue
            self._records.upsert(TABLE_STATE, {"PartitionKey": "supersededgroup", "RowKey": str(old_group),
                                               "supersededAt": iso(now), "recognitionModel": old_model,
                                               "supersededBy": run_id})
            break
        self._save_run(run_id, status="switched", switchedAt=iso(now))
        self._release(run_id)
        self._audit.write("reenroll.switched", actor="system", runId=run_id, targetModel=run["targetModel"])
        log.info("re-enrollment %s switched the active group", run_id)

    def _release(self, run_id: str) -> None:
        found = self._records.get(TABLE_STATE, *CURRENT)
        if found and found[0].get("runId") == run_id:
            row, etag = found
            row["active"] = False
            try:
                self._records.update(TABLE_STATE, row, etag=etag)
            except RecordConflict:
                pass

    # --- operators ------------------------------------------------------------------------------
    def progress(self, run_id: str) -> ReenrollProgress:
        run, _ = self._run(run_id)
        counts = self._counts(run_id) if run.get("status") in ACTIVE_STATES else None
        done = counts["done"] if counts else int(run.get("done") or 0)
        failed = counts["failed"] if counts else int(run.get("failed") or 0)
        skipped = counts["skipped"] if counts else int(run.get("skipped") or 0)
        total = int(run.get("total") or 0) or (sum(counts.values()) if counts else 0)
        return ReenrollProgress(run_id=run_id, status=run.get("status"), recognition_model=run.get("targetModel"),
                                total=total, done=done, failed=failed, skipped=skipped, started_at=run.get("startedAt"),
                                switched_at=run.get("switchedAt"), message=run.get("message"))

    def resume(self, command: ResumeReenrollment) -> ReenrollProgress:
        """Re-emits the run's next control message (a stopped host, a lost message)."""
        run_id = command.run_id
        run, _ = self._run(run_id)
        if run.get("status") not in ACTIVE_STATES:
            raise Conflict(f"Run {run_id} is {run.get('status')}; nothing to resume.", code="NotRunning")
        nonce = uuid.uuid4().hex[:8]
        if run.get("status") == "fanningOut":
            # Fan-out restarts from the beginning: items and work messages already sent are deduplicated.
            self._control(ReenrollFanout(run_id, "", self._clock()), message_id=f"{run_id}:fanout:resume:{nonce}")
        else:
            self._control(ReenrollCheck(run_id, 1000), message_id=f"{run_id}:check:resume:{nonce}")
        # Work items still queued may have lost their messages (e.g. dead-lettered): send them again.
        for item in self._records.range(TABLE_ITEMS, pk=run_id, select=["RowKey", "status"]):
            if item.get("status") == "queued":
                self._send_work(run_id, str(item["RowKey"]), message_id=f"{run_id}:{item['RowKey']}:resume:{nonce}")
        self._audit.write("reenroll.resumed", actor=command.actor.user_key, runId=run_id)
        return self.progress(run_id)
