"""purge_timer: the scheduled sweep. Every run writes a report (counts per kind) to the audit log.

Four steps, each idempotent and each tolerant of a crash of the one before (the next run resumes):

1. Expired consents: the ``consentbyday`` rows up to the cutoff day (a key-range query), checked
   against the ledger, are erased exactly as a revocation is (same request id as a revocation of
   that consent, so the two cannot produce two receipts).
2. Stale uploads: the ``uploadsbyminute`` rows up to the cutoff minute; uploads still waiting for
   their photo (or stuck processing) lose their blob, their record and their index rows.
3. Orphans, both directions: persons in the active (and re-enrollment) group that no record knows,
   records whose person is gone (marked failed, with a message the user sees), kept photos without
   ``storePhotos`` consent. This step is a scan by nature (of the group, the users and the kept
   photos); it is paged and its cost is reported apart, in ``orphanScan``.
4. Superseded groups: ``state`` rows ``supersededgroup/<groupId>`` past ``GROUP_GRACE_DAYS``.

Steps 1, 2 and 4 read index rows that are due (plus a few stale ones), never the whole user base:
``rowsRead`` per step in the report shows it. A dry run reads the same and deletes nothing.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.commands import Revoke, RunPurge
from shared.domain import erasure as plan
from shared.domain.enrollment import (
    TABLE_CONSENT,
    TABLE_STATE,
    TABLE_UPLOAD_INDEX,
    TABLE_UPLOADS,
    TABLE_USERS,
    USER_ROW,
    iso,
)
from shared.errors import LargePersonGroupNotFound, PersonNotFound, RecordConflict
from shared.ports import FacePort, PhotoStorePort, RecordStorePort
from shared.results import PurgeReport
from shared.services.audit import AuditLog
from shared.services.groups import TrainingCoordinator
from shared.services.revocation import RevocationService
from shared.settings import Settings

log = logging.getLogger("shared.purge")

#: The same namespace and name as RevocationService.request: one consent, one erasure, one receipt.
RECEIPT_NAMESPACE = uuid.UUID("6f1c3e1a-8d52-4b0e-9a55-1d7f0c2b9e41")
PERSON_PAGE = 1000
USER_COLUMNS = ["PartitionKey", "RowKey", "personId", "groupId", "newPersonId", "newGroupId", "personAttempt",
                "newPersonAttempt", "keptToken", "storePhotos", "state"]
MAX_ERRORS_REPORTED = 20


def retention_request_id(user_key: str, grant_row_key: str) -> str:
    return uuid.uuid5(RECEIPT_NAMESPACE, f"{user_key}|{grant_row_key}").hex


class PurgeService:
    def __init__(self, *, records: RecordStorePort, photos: PhotoStorePort, face: FacePort, revocation: RevocationService,
                 audit: AuditLog, training: TrainingCoordinator, settings: Settings, clock: Callable[[], datetime]) -> None:
        self._records = records
        self._photos = photos
        self._face = face
        self._revocation = revocation
        self._audit = audit
        self._training = training
        self._settings = settings
        self._clock = clock

    def run(self, command: RunPurge) -> PurgeReport:
        dry_run, trigger = command.dry_run, command.trigger
        now = self._clock()
        started = time.perf_counter()
        report = PurgeReport(dry_run=dry_run, trigger=trigger, started_at=iso(now))
        steps: list[tuple[str, Callable[[PurgeReport, bool, datetime], None]]] = [
            ("expiredConsents", self._expired_consents), ("staleUploads", self._stale_uploads),
            ("orphans", self._orphans), ("supersededGroups", self._superseded_groups)]
        for name, step in steps:
            began = time.perf_counter()
            try:
                step(report, dry_run, now)
            except Exception as exc:  # one failing step must not stop the others; the next run retries
                self._error(report, name, exc)
            report.step_ms[name] = round((time.perf_counter() - began) * 1000)
        # Follow a running training, so a coalesced training completes without a user polling.
        if not dry_run:
            try:
                self._training.refresh()
            except Exception:
                log.warning("training refresh failed during purge", exc_info=False)
        report.duration_ms = round((time.perf_counter() - started) * 1000)
        body: dict[str, Any] = report.as_json()
        self._audit.write("purge.report", actor=f"purge:{trigger}", **body)
        log.info("purge finished: %s", {k: v for k, v in body.items() if k != "errors"})
        return report

    @staticmethod
    def _error(report: PurgeReport, step: str, exc: BaseException) -> None:
        # The class only: messages of storage or Face errors may name records.
        log.warning("purge step %s: %s", step, exc.__class__.__name__)
        if len(report.errors) < MAX_ERRORS_REPORTED:
            report.errors.append({"step": step, "error": exc.__class__.__name__})

    # --- 1. consents not renewed within the retention --------------------------------------------
    def _expired_consents(self, report: PurgeReport, dry_run: bool, now: datetime) -> None:
        retention = timedelta(days=self._settings.consent_retention_days)
        cutoff = now - retention
        rows = list(self._records.range(plan.TABLE_CONSENT_BY_DAY, pk_to=plan.days_through(cutoff)))
        report.rows_read["expiredConsents"] += len(rows)
        for row in rows:
            day, user_key = str(row["PartitionKey"]), str(row["RowKey"])
            try:
                ledger = self._records.partition(TABLE_CONSENT, user_key)
                report.rows_read["expiredConsents"] += len(ledger)
                verdict = plan.consent_verdict(day, ledger, now=now, retention=retention)
                if verdict == plan.NOT_DUE:
                    continue
                if verdict == plan.STALE:
                    report.stale_index_rows += 1
                else:
                    report.expired_consents += 1
                    grant = plan.latest_grant(ledger)
                    assert grant is not None
                    if not dry_run:
                        self._revocation.erase(Revoke(user_key, retention_request_id(user_key, str(grant["RowKey"])),
                                                      reason="consent retention expired", requested_by="purge"))
                if not dry_run:
                    self._records.delete(plan.TABLE_CONSENT_BY_DAY, day, user_key)
            except Exception as exc:
                self._error(report, "expiredConsents", exc)

    # --- 2. uploads and sessions never completed -------------------------------------------------
    def _stale_uploads(self, report: PurgeReport, dry_run: bool, now: datetime) -> None:
        max_age = timedelta(minutes=self._settings.upload_max_age_minutes)
        cutoff = now - max_age
        rows = list(self._records.range(plan.TABLE_UPLOADS_BY_MINUTE, pk_to=plan.minutes_through(cutoff)))
        report.rows_read["staleUploads"] += len(rows)
        sessions: set[str] = set()
        for row in rows:
            bucket, upload_id, user_key = str(row["PartitionKey"]), str(row["RowKey"]), str(row.get("userKey") or "")
            try:
                if not plan.upload_is_stale({"status": "awaitingUpload", "createdAt": row.get("createdAt")},
                                            now=now, max_age=max_age):
                    continue  # the cutoff minute's bucket: not old enough yet
                found = self._records.get(TABLE_UPLOADS, user_key, upload_id)
                report.rows_read["staleUploads"] += 1
                upload = found[0] if found else None
                if plan.upload_is_stale(upload, now=now, max_age=max_age):
                    assert upload is not None
                    report.stale_uploads += 1
                    sessions.add(str(upload.get("sessionId") or ""))
                    if not dry_run:
                        # The blob first, the index row that found it last: a crash resumes next run.
                        self._photos.delete_upload(str(upload.get("blobName") or ""))
                        self._records.delete(TABLE_UPLOAD_INDEX, upload_id, "u")
                        self._records.delete(TABLE_UPLOADS, user_key, upload_id)
                else:
                    report.stale_index_rows += 1
                if not dry_run:
                    self._records.delete(plan.TABLE_UPLOADS_BY_MINUTE, bucket, upload_id)
            except Exception as exc:
                self._error(report, "staleUploads", exc)
        report.stale_sessions += len(sessions)

    # --- 3. orphans, both directions -------------------------------------------------------------
    def _groups(self) -> list[str]:
        groups = []
        active = self._records.get(TABLE_STATE, "group", "active")
        if active and active[0].get("created") and active[0].get("groupId"):
            groups.append(str(active[0]["groupId"]))
        reenroll = self._records.get(TABLE_STATE, *plan.REENROLL_ROW)
        if reenroll and reenroll[0].get("newGroupId") and str(reenroll[0]["newGroupId"]) not in groups:
            groups.append(str(reenroll[0]["newGroupId"]))
        return groups

    def _orphans(self, report: PurgeReport, dry_run: bool, now: datetime) -> None:
        scan = report.orphan_scan
        # Listings first, records second: a person or kept photo is always recorded (its attempt id,
        # its user's keptToken) before it is created, so what the listing saw the records know.
        listed: dict[str, dict[str, str | None]] = {}
        for group_id in self._groups():
            persons: dict[str, str | None] = {}
            start: str | None = None
            try:
                while True:
                    page = self._face.list_persons(group_id, start=start, top=PERSON_PAGE)
                    scan["facePages"] += 1
                    scan["facePersonsListed"] += len(page)
                    persons.update({p.person_id: p.user_data for p in page})
                    if len(page) < PERSON_PAGE:
                        break
                    start = page[-1].person_id
            except LargePersonGroupNotFound:
                continue
            listed[group_id] = persons
            scan["groups"] += 1
        kept = self._photos.list_kept("")
        scan["keptBlobsListed"] += len(kept)
        users = [u for u in self._records.range(TABLE_USERS, select=USER_COLUMNS) if u.get("RowKey") == USER_ROW]
        scan["userRowsRead"] += len(users)
        known, in_flight = plan.known_persons(users)
        # Persons no record knows (including abandoned creation attempts).
        for group_id, persons in listed.items():
            for person_id, user_data in persons.items():
                if not plan.is_orphan_person(person_id, user_data, persons=known, in_flight=in_flight):
                    continue
                report.orphan_persons += 1
                if not dry_run:
                    try:
                        self._face.delete_person(group_id, person_id)
                    except PersonNotFound:
                        pass
                    except Exception as exc:
                        self._error(report, "orphans", exc)
        # Records whose person is gone: checked one by one only when the listing did not show it.
        for user in users:
            recorded, in_group = user.get("personId"), user.get("groupId")
            if not recorded or not in_group or str(recorded) in listed.get(str(in_group), {}):
                continue
            scan["personChecks"] += 1
            try:
                self._face.get_person(str(in_group), str(recorded))
                continue
            except (PersonNotFound, LargePersonGroupNotFound):
                pass
            except Exception as exc:
                self._error(report, "orphans", exc)
                continue
            report.missing_persons += 1
            if not dry_run:
                self._mark_failed(str(user["PartitionKey"]), str(recorded))
        # Kept photos without storePhotos consent (or whose user is gone).
        by_token = {str(u["keptToken"]): u for u in users if u.get("keptToken")}
        for name in kept:
            owner = by_token.get(plan.kept_token(name))
            if owner is not None and owner.get("storePhotos") and owner.get("state", "active") == "active":
                continue
            report.orphan_kept_photos += 1
            if not dry_run:
                try:
                    self._photos.delete_kept(name)
                except Exception as exc:
                    self._error(report, "orphans", exc)

    def _mark_failed(self, user_key: str, person_id: str) -> None:
        for _ in range(5):
            found = self._records.get(TABLE_USERS, user_key, USER_ROW)
            if found is None or found[0].get("personId") != person_id:
                return
            user, etag = found
            user.update({"personId": None, "faceAddedAt": None, "lastError": plan.MISSING_PERSON_MESSAGE})
            try:
                self._records.update(TABLE_USERS, user, etag=etag)
            except RecordConflict:
                continue
            self._audit.write("person.missing", actor="purge", subject=user_key)
            return

    # --- 4. groups superseded by a re-enrollment ----------------------------------------------
    def _superseded_groups(self, report: PurgeReport, dry_run: bool, now: datetime) -> None:
        grace = timedelta(days=self._settings.group_grace_days)
        rows = list(self._records.range(TABLE_STATE, pk=plan.SUPERSEDED_GROUP_PK))
        report.rows_read["supersededGroups"] += len(rows)
        in_use = set(self._groups()) if rows else set()
        for row in rows:
            group_id = str(row["RowKey"])
            if not plan.group_is_due(row, now=now, grace=grace):
                continue
            if group_id in in_use:
                log.warning("a superseded-group row names a group in use; not deleted")
                continue
            report.superseded_groups += 1
            if dry_run:
                continue
            try:
                try:
                    self._face.delete_group(group_id)
                except LargePersonGroupNotFound:
                    pass
                self._records.delete(TABLE_STATE, plan.SUPERSEDED_GROUP_PK, group_id)
                self._audit.write("group.deleted", actor="purge", groupId=group_id, reason="superseded")
            except Exception as exc:
                self._error(report, "supersededGroups", exc)
