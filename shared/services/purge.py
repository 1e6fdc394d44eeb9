"""purge_timer: the scheduled sweep. Every run writes a report (counts per kind) to the audit log.

Nine steps, each idempotent and each tolerant of a crash of the one before (the next run resumes):

0. Erasures that began and were not verified complete (``erasurespending``), run again.
1. Expired consents: the ``consentbyday`` rows up to the cutoff day (a key-range query), checked
   against the ledger, are erased exactly as a revocation is (same request id as a revocation of
   that consent, so the two cannot produce two receipts).
2. Stale uploads: the ``uploadsbyminute`` rows up to the cutoff minute; uploads still waiting for
   their photo (or stuck processing) lose their blob, their record and their index rows.
3. Orphans, both directions: persons in the active (and re-enrollment) group that no record knows,
   records whose person is gone (marked failed, with a message the user sees), kept photos without
   ``storePhotos`` consent. A scan by nature, spread over ``ORPHAN_SCAN_DAYS`` nights: each night
   reads one range of personIds, kept tokens and user keys (shared/domain/erasure.scan_range), with
   queries the store filters; its cost is reported apart, in ``orphanScan`` and ``orphanScanRange``.
4. Superseded groups: ``state`` rows ``supersededgroup/<groupId>`` past ``GROUP_GRACE_DAYS``.
5. Audit rows past the audit retention of the published policy.
6. Photo replacements whose new faces are trained (nobody polled for them).
7. The consent ledger's anchor: once a day, a Merkle root over the heads of the chains written since
   the last anchor (every chain, the first time), written to the WORM container
   (shared/services/ledger.py). A filtered read of the ledger by Timestamp, reported in
   ``ledgerAnchor``; a second run the same day writes nothing. After the erasures of steps 0-1, so the
   anchor covers the tombstones they wrote.
8. Revoked users still holding data and with no ``erasurespending`` row (a revocation written before
   that table existed, or whose row was lost): the ledger's tombstones (a filtered query) against who
   step 3 found holding a user record or an attempt row tonight; a candidate's chain is read to see
   that the revocation is its latest entry. At most ``REPAIR_LIMIT`` erasures a run (the rest next run), each with the tombstone's request id, so the
   receipt is the one it promised. Counted in ``repairedErasures`` and ``rowsRead.repairedErasures``.

Steps 1, 2 and 4 read index rows that are due (plus a few stale ones), never the whole user base:
``rowsRead`` per step in the report shows it. Steps 1 and 2 act on a *settled* index row as it is and
confirm only the others against the ledger or the upload records (shared/domain/erasure.trusts_*_row;
docs/erasure.md says who settles and unsettles them). A dry run reads the same and deletes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.repositories import Repositories, Repository
from shared.adapters.retention_policy import RetentionPolicy, load_policy
from shared.commands import Revoke, RunPurge
from shared.domain import erasure as plan
from shared.domain.enrollment import AWAITING, blob_name_for, iso
from shared.domain.records import PurgeStats, Upload, User
from shared.errors import LargePersonGroupNotFound, PersonNotFound
from shared.ports import FacePort, PhotoStorePort
from shared.results import PurgeReport
from shared.services.audit import AuditLog
from shared.services.groups import GroupDirectory, TrainingCoordinator
from shared.services.ledger import ConsentLedger
from shared.services.revocation import RevocationService
from shared.settings import Settings

log = logging.getLogger("shared.purge")

PERSON_PAGE = 1000
CONFIRM_BATCH = 15  # partition keys per query: Table storage allows 15 comparisons in a filter
PAGE = 1000  # entities per page of a Table storage query
#: What the orphan scan reads of each user record.
USER_FIELDS = ["person_id", "group_id", "new_person_id", "new_group_id", "person_attempt", "new_person_attempt",
               "kept_token", "store_photos", "replace_session"]
MAX_ERRORS_REPORTED = 20
#: Step 8's erasures per run: each costs a footprint read and deletes; a backlog drains over a few runs.
REPAIR_LIMIT = 50


class _Unchanged(Exception):
    """The record no longer names what the change was for: leave it as it is."""


class PurgeService:
    def __init__(self, *, repos: Repositories, photos: PhotoStorePort, face: FacePort, revocation: RevocationService,
                 audit: AuditLog, groups: GroupDirectory, training: TrainingCoordinator, ledger: ConsentLedger,
                 settings: Settings, clock: Callable[[], datetime], policy: RetentionPolicy | None = None,
                 finish_replacement: Callable[[str], str] | None = None) -> None:
        self._finish_replacement = finish_replacement
        self._repos = repos
        self._ledger = ledger
        self._policy = policy or load_policy()
        self._groups_dir = groups
        self._photos = photos
        self._face = face
        self._revocation = revocation
        self._audit = audit
        self._training = training
        self._settings = settings
        self._clock = clock
        self._loaded_stats: PurgeStats | None = None
        self._counted: dict[str, int] = {}
        # Filled by step 3 of a run, read by step 8 (None: that step did not complete this run).
        self._holding: set[str] | None = None
        self._pending: set[str] | None = None
        self._users: list[User] | None = None  # step 3's scan of the user records, which step 6 reuses
        self._stats_changed = False

    def run(self, command: RunPurge) -> PurgeReport:
        dry_run, trigger = command.dry_run, command.trigger
        now = self._clock()
        started = time.perf_counter()
        report = PurgeReport(dry_run=dry_run, trigger=trigger, started_at=iso(now))
        self._loaded_stats, self._counted = None, {}
        self._holding, self._pending, self._users = None, None, None
        self._stats_changed = False
        steps: list[tuple[str, Callable[[PurgeReport, bool, datetime], None]]] = [
            ("repairedErasures", self._repair_erasures),
            ("expiredConsents", self._expired_consents), ("staleUploads", self._stale_uploads),
            ("orphans", self._orphans), ("supersededGroups", self._superseded_groups),
            ("expiredAuditRows", self._expired_audit_rows), ("replacements", self._replacements),
            ("ledgerAnchor", self._ledger_anchor), ("revokedNotErased", self._revoked_not_erased)]
        for name, step in steps:
            began = time.perf_counter()
            try:
                step(report, dry_run, now)
            except Exception as exc:  # one failing step must not stop the others; the next run retries
                self._error(report, name, exc)
            report.step_ms[name] = round((time.perf_counter() - began) * 1000)
        self._save_stats()
        # Follow a running training, so a coalesced training completes without a user polling.
        if not dry_run:
            try:
                self._training.refresh()
            except Exception:
                log.warning("training refresh failed during purge", exc_info=False)
        report.duration_ms = round((time.perf_counter() - started) * 1000)
        body = report.as_json()
        self._audit.record("purge.report", actor=f"purge:{trigger}", details=body)
        log.info("purge finished: %s", {k: v for k, v in body.items() if k != "errors"})
        return report

    def periods(self) -> dict[str, int]:
        """The periods this purge enforces: the published retention policy's, or shorter where a setting says so
        (Settings.from_env refuses longer ones; a Settings built in code is capped here too)."""
        s, p = self._settings, self._policy
        return {"consentDays": min(s.consent_retention_days, p.consent_days),
                "uploadMinutes": min(s.upload_max_age_minutes, p.upload_minutes),
                "auditDays": min(s.audit_retention_days, p.audit_days)}

    @staticmethod
    def _error(report: PurgeReport, step: str, exc: BaseException) -> None:
        # The class only: messages of storage or Face errors may name records.
        log.warning("purge step %s: %s", step, exc.__class__.__name__)
        if len(report.errors) < MAX_ERRORS_REPORTED:
            report.errors.append({"step": step, "error": exc.__class__.__name__})

    def _erasing(self) -> set[str]:
        """Users with an erasure pending (read by step 0; again if step 0 failed this run)."""
        if self._pending is None:
            self._pending = {row.user_key for row in self._repos.pending_erasures.partition()}
        return self._pending

    # --- 0. erasures requested and not verified complete ------------------------------------------
    def _repair_erasures(self, report: PurgeReport, dry_run: bool, now: datetime) -> None:
        """Every ``erasurespending`` row is an erasure that began (its intent was written before the
        tombstone) and was not verified complete: a dead-lettered revocation, a crash past the last
        redelivery. It is run again with its own request id, so the receipt is the one it would have had."""
        rows = self._repos.pending_erasures.partition()
        self._pending = {row.user_key for row in rows}
        report.rows_read["repairedErasures"] += len(rows)
        for row in rows:
            report.repaired_erasures += 1
            if dry_run:
                continue
            try:
                self._revocation.erase(Revoke(row.user_key, row.request_id, reason=row.reason or "revoked",
                                              requested_by=row.requested_by or "system"))
                self._audit.write("revocation.repairedByPurge", actor="purge", subject=row.user_key,
                                  requestId=row.request_id)
            except Exception as exc:
                self._error(report, "repairedErasures", exc)

    # --- 6. photo replacements whose new faces are trained -----------------------------------------
    def _replacements(self, report: PurgeReport, dry_run: bool, now: datetime) -> None:
        """Completes replacements nobody polled for (the user closed the app after uploading), found in the
        orphan step's scan of the user records (a scan of its own only if that step failed this run)."""
        if self._finish_replacement is None:
            return
        users = self._users if self._users is not None else self._repos.users.where(
            [("replace_session", "gt", "")], only=["replace_session"])
        for user in users:
            if not user.replace_session:
                continue
            report.pending_replacements += 1
            if dry_run:
                continue
            try:
                if self._finish_replacement(user.user_key) in ("replaced", "abandoned"):
                    report.finished_replacements += 1
            except Exception as exc:
                self._error(report, "replacements", exc)

    # --- 5. audit rows past their retention -------------------------------------------------------
    def _expired_audit_rows(self, report: PurgeReport, dry_run: bool, now: datetime) -> None:
        before = now - timedelta(days=self.periods()["auditDays"])
        report.expired_audit_rows += self._audit.expire(before=before, dry_run=dry_run)

    # --- 7. the ledger's daily anchor ------------------------------------------------------------
    def _ledger_anchor(self, report: PurgeReport, dry_run: bool, now: datetime) -> None:
        """The chains written since the last anchor (its watermark is kept with the purge's stats)."""
        stats = self._stats
        report.ledger_anchor = self._ledger.anchor(dry_run=dry_run, since=stats.anchored_through or None)
        watermark = str(report.ledger_anchor.get("watermark") or "")
        if report.ledger_anchor.get("written") and watermark != stats.anchored_through:
            stats.anchored_through = watermark
            self._stats_changed = True

    # --- 8. revocations with data left and no pending row ---------------------------------------------
    def _revoked_not_erased(self, report: PurgeReport, dry_run: bool, now: datetime) -> None:
        """Erasures step 0 cannot see: the revocation has no ``erasurespending`` row (it was written
        before that table existed, or the row was lost), yet the user still has a record or an attempt.
        Among who step 3 found holding data tonight (over a cycle of nights, everyone who does): the users
        with a tombstone in the ledger (a query the store filters: it returns the revocations, not the
        ledger) whose latest entry is that revocation; re-run with the tombstone's request id."""
        if self._holding is None:
            return  # the step it relies on failed this run; the next cycle retries
        revoked = {entry.user_key for entry in self._repos.ledger.where([("kind", "eq", "revocation")], only=["kind"])}
        candidates = sorted(revoked & self._holding - self._erasing())
        report.rows_read["repairedErasures"] += len(revoked)
        for user_key in candidates[:REPAIR_LIMIT]:
            chain = self._repos.ledger_rows.of(user_key)  # a reconsented user holds data rightly
            report.rows_read["repairedErasures"] += len(chain)
            tombstone = chain[-1].entry if chain else None
            if tombstone is None or tombstone.kind != "revocation":
                continue
            request_id = tombstone.request_id or ""
            if not request_id:
                self._error(report, "revokedNotErased", ValueError("revocation entry without a request id"))
                continue
            report.repaired_erasures += 1
            if dry_run:
                continue
            try:
                self._revocation.erase(Revoke(user_key, request_id, reason=tombstone.reason or "revoked",
                                              requested_by=tombstone.requested_by or "system"))
                self._audit.write("revocation.repairedByPurge", actor="purge", subject=user_key,
                                  requestId=request_id, found="ledger")
            except Exception as exc:
                self._error(report, "revokedNotErased", exc)

    # --- 1. consents not renewed within the retention --------------------------------------------
    def _expired_consents(self, report: PurgeReport, dry_run: bool, now: datetime) -> None:
        """Settled rows are acted on as they are (the row names the latest grant and its time); only the
        others, a crash's leftovers and rows from before ``settled``, are confirmed against the ledger."""
        retention = timedelta(days=self.periods()["consentDays"])
        cutoff = now - retention
        rows = list(self._repos.consent_due.range(pk_to=plan.days_through(cutoff)))
        report.rows_read["expiredConsents"] += len(rows)
        erasing = self._erasing()
        rows = [r for r in rows if r.user_key not in erasing]  # that erasure deletes them
        trusted = {(r.day, r.user_key) for r in rows if plan.trusts_consent_row(r, erasing=erasing)}
        ledgers, read = self._confirming_rows(report, "expiredConsents", self._repos.ledger,
                                              [r.user_key for r in rows if (r.day, r.user_key) not in trusted],
                                              estimate=self._stats.ledger_rows,
                                              only=["kind", "accepted", "at", "terms_version", "store_photos"])
        report.rows_read["expiredConsents"] += read
        for row in rows:
            day, user_key = row.day, row.user_key
            try:
                grant_id: str | None
                if (day, user_key) in trusted:
                    verdict, grant_id = plan.settled_consent_verdict(row, now=now, retention=retention), row.grant_entry_id
                else:
                    ledger = ledgers.get(user_key, [])
                    verdict = plan.consent_verdict(day, ledger, now=now, retention=retention)
                    grant = plan.latest_grant(ledger)
                    grant_id = grant.entry_id if grant is not None else None
                if verdict == plan.NOT_DUE:
                    continue
                if verdict == plan.STALE:
                    report.stale_index_rows += 1
                else:
                    report.expired_consents += 1
                    assert grant_id
                    if not dry_run:
                        self._revocation.erase(Revoke(user_key, plan.revocation_request_id(user_key, grant_id),
                                                      reason="consent retention expired", requested_by="purge"))
                if not dry_run:
                    self._repos.consent_due.delete(day, user_key)
            except Exception as exc:
                self._error(report, "expiredConsents", exc)

    # --- 2. uploads and sessions never completed -------------------------------------------------
    def _stale_uploads(self, report: PurgeReport, dry_run: bool, now: datetime) -> None:
        max_age = timedelta(minutes=self.periods()["uploadMinutes"])
        cutoff = now - max_age
        rows = list(self._repos.uploads_due.range(pk_to=plan.minutes_through(cutoff)))
        report.rows_read["staleUploads"] += len(rows)
        # The cutoff minute's bucket holds some rows that are not old enough yet: they are skipped.
        rows = [r for r in rows if plan.is_due(r.created_at, now=now, max_age=max_age)]
        # Settled rows are acted on as they are; only the others are confirmed against the records.
        trusted = {r.upload_id for r in rows if plan.trusts_upload_row(r)}
        by_user, read = self._confirming_rows(report, "staleUploads", self._repos.uploads,
                                              [r.user_key for r in rows if r.user_key and r.upload_id not in trusted],
                                              estimate=self._stats.upload_rows,
                                              only=["status", "created_at", "session_id", "blob_name"])
        report.rows_read["staleUploads"] += read
        uploads = {(u.user_key, u.upload_id): u for found in by_user.values() for u in found}
        sessions: set[str] = set()
        for row in rows:
            try:
                upload: Upload | None
                if row.upload_id in trusted:
                    upload = Upload(user_key=row.user_key, upload_id=row.upload_id, session_id=str(row.session_id),
                                    blob_name=blob_name_for(str(row.session_id), row.upload_id),
                                    status=AWAITING, created_at=row.created_at)
                else:
                    upload = uploads.get((row.user_key, row.upload_id)) if row.user_key else None
                if upload is not None and plan.upload_is_stale(upload, now=now, max_age=max_age):
                    report.stale_uploads += 1
                    sessions.add(upload.session_id)
                    if not dry_run:
                        # The blob first, the index row that found it last: a crash resumes next run.
                        self._photos.delete_upload(upload.blob_name)
                        self._repos.upload_index.delete(row.upload_id)
                        self._repos.uploads.delete(row.user_key, row.upload_id)
                else:
                    report.stale_index_rows += 1
                if not dry_run:
                    self._repos.uploads_due.delete(row.minute, row.upload_id)
            except Exception as exc:
                self._error(report, "staleUploads", exc)
        report.stale_sessions += len(sessions)

    # --- the read plan of steps 1 and 2 -------------------------------------------------------------
    def _confirming_rows(self, report: PurgeReport, step: str, repo: Repository[Any], keys: list[str], *,
                         estimate: int, only: list[str] | None = None) -> tuple[dict[str, list[Any]], int]:
        """The rows that confirm the due index rows (each user's ledger, each user's uploads), read
        with the cheaper of two plans, chosen from the index count before reading:

        - ``batched``: the due users' partitions, 15 to a request (a point read each cost a request,
          and a thousand due items cost more than scanning the table);
        - ``scan``: the whole table in pages of 1,000, keeping the due users' rows, when that is fewer
          requests (many due items; the table's size is what the last purge counted).
        """
        wanted = sorted(set(keys))
        if not wanted:
            report.read_plans[step] = "none"
            return {}, 0
        batched = -(-len(wanted) // CONFIRM_BATCH)
        scan = -(-estimate // PAGE) if estimate else None
        found: dict[str, list[Any]] = {}
        read = 0
        if scan is not None and scan < batched:
            report.read_plans[step] = "scan"
            keep = set(wanted)
            for record in repo.range(only=only):
                read += 1
                key = str(getattr(record, str(repo.layout.pk)))
                if key in keep:
                    found.setdefault(key, []).append(record)
            self._counted[repo.table] = read
            return found, read
        report.read_plans[step] = "batched"
        for start in range(0, len(wanted), CONFIRM_BATCH * 20):
            for key, records in repo.partitions(wanted[start:start + CONFIRM_BATCH * 20]).items():
                found[key] = records
                read += len(records)
        return found, read

    @property
    def _stats(self) -> PurgeStats:
        if self._loaded_stats is None:
            try:
                self._loaded_stats = self._repos.purge_stats.get() or PurgeStats()
            except Exception:  # a missing stats row only costs the cheaper plan
                self._loaded_stats = PurgeStats()
        return self._loaded_stats

    def _save_stats(self) -> None:
        """Table sizes seen by this run, for the next run's choice of plan (one write)."""
        stats = self._stats
        changed = self._stats_changed
        for table, count in self._counted.items():
            name = {self._repos.users.table: "user_rows", self._repos.ledger.table: "ledger_rows",
                    self._repos.uploads.table: "upload_rows"}.get(table)
            if name and getattr(stats, name) != count:
                setattr(stats, name, count)
                changed = True
        if stats.user_rows and not (stats.ledger_rows and stats.upload_rows):
            # Until a scan has counted them: at least one grant per user, about one upload per user.
            stats.ledger_rows = stats.ledger_rows or stats.user_rows
            stats.upload_rows = stats.upload_rows or stats.user_rows
            changed = True
        if changed:
            try:
                self._repos.purge_stats.upsert(stats)
            except Exception:
                log.warning("purge stats not saved", exc_info=False)

    # --- 3. orphans, both directions -------------------------------------------------------------
    def _groups(self) -> list[str]:
        groups = []
        active = self._groups_dir.state()
        if active and active.created and active.group_id:
            groups.append(active.group_id)
        reenroll = self._repos.reenroll_lock.get()
        # Only a run in progress: a finished run's group is the active one, or superseded (failed runs too).
        if reenroll and reenroll.active and reenroll.new_group_id and reenroll.new_group_id not in groups:
            groups.append(reenroll.new_group_id)
        return groups

    def _orphans(self, report: PurgeReport, dry_run: bool, now: datetime) -> None:
        """Tonight's key range (``ORPHAN_SCAN_DAYS`` ranges, one a night: shared/domain/erasure.scan_range)
        of three scans by nature, each filtered by its store, so a night reads about 1/N of them:

        - persons in the range of personIds, listed from Face, against the records that name one of them;
        - kept photos in the range of kept tokens, against the records that hold those tokens;
        - who holds data (the records read, and the attempt rows in the range of user keys), for step 8.

        One filtered query of the user records serves the first two and step 8, and also finds the
        replacements of step 6; the attempt rows are read by their key range.
        """
        scan = report.orphan_scan
        low, high = plan.scan_range(now.date(), self._settings.orphan_scan_days)
        report.orphan_scan_range = {"from": low or "", "to": high or "", "nights": self._settings.orphan_scan_days}
        # Listings first, records second: a person or kept photo is always recorded (its attempt id,
        # its user's keptToken) before it is created, so what the listing saw the records know.
        listed: dict[str, dict[str, str | None]] = {}
        for group_id in self._groups():
            persons: dict[str, str | None] = {}
            start = plan.listing_start(low)
            try:
                while True:
                    page = self._face.list_persons(group_id, start=start, top=PERSON_PAGE)
                    scan["facePages"] += 1
                    scan["facePersonsListed"] += len(page)
                    persons.update({p.person_id: p.user_data for p in page if plan.in_range(p.person_id, low, high)})
                    if len(page) < PERSON_PAGE or not plan.in_range(page[-1].person_id, None, high):
                        break
                    start = page[-1].person_id
            except LargePersonGroupNotFound:
                continue
            listed[group_id] = persons
            scan["groups"] += 1
        kept = [name for prefix in plan.kept_prefixes(low, high) for name in self._photos.list_kept(prefix)]
        scan["keptBlobsListed"] += len(kept)
        if low is None and high is None:
            users = list(self._repos.users.range(only=USER_FIELDS))
            self._counted[self._repos.users.table] = len(users)
        else:
            users = list(self._repos.users.where(
                plan.range_conditions("person_id", low, high), plan.range_conditions("new_person_id", low, high),
                plan.range_conditions("kept_token", low, high), [("replace_session", "gt", "")], only=USER_FIELDS))
        self._users = users
        scan["userRowsRead"] += len(users)
        known, in_flight = plan.known_persons(users)
        attempts = list(self._repos.attempts.range(pk_from=low, pk_to=high))
        scan["attemptRowsRead"] += len(attempts)
        # Step 8: who still has a record (every record has a kept token: each is read on its token's
        # night) or an attempt row (read on its user key's night).
        self._holding = {u.user_key for u in users} | {a.user_key for a in attempts}
        # A person no record names is an orphan (attempts in flight are named on the user record).
        candidates = [(g, p, d) for g, persons in listed.items() for p, d in persons.items()
                      if plan.is_orphan_person(p, d, persons=known, in_flight=in_flight)]
        confirmed = self._not_named(candidates, scan)
        for group_id, person_id, user_data in confirmed:
            report.orphan_persons += 1
            if dry_run:
                continue
            try:
                try:
                    self._face.delete_person(group_id, person_id)
                except PersonNotFound:
                    pass
                # The attempt rows that track it go once it is deleted: by personId, or by the attempt id
                # it carries as userData when a crash kept the personId from being recorded.
                for attempt in self._repos.attempts.where([("person_id", "eq", person_id)],
                                                          *([[("attempt_id", "eq", user_data)]] if user_data else [])):
                    self._repos.attempts.delete(attempt.user_key, attempt.attempt_id)
            except Exception as exc:
                self._error(report, "orphans", exc)
        # Records whose person is gone: checked one by one only when the listing did not show it.
        for user in users:
            recorded, in_group = user.person_id, user.group_id
            if not recorded or not in_group or not plan.in_range(recorded, low, high) or \
                    recorded in listed.get(in_group, {}):
                continue
            scan["personChecks"] += 1
            try:
                self._face.get_person(in_group, recorded)
                continue
            except (PersonNotFound, LargePersonGroupNotFound):
                pass
            except Exception as exc:
                self._error(report, "orphans", exc)
                continue
            report.missing_persons += 1
            if not dry_run:
                self._mark_failed(user.user_key, recorded)
        # Kept photos without storePhotos consent (or whose user is gone).
        by_token = {u.kept_token: u for u in users if u.kept_token}
        for name in kept:
            owner = by_token.get(plan.kept_token(name))
            if owner is not None and owner.store_photos:
                continue
            if owner is None and not plan.in_range(plan.kept_token(name), low, high):
                continue  # a name outside tonight's range (its prefix is, its token is not): another night's
            report.orphan_kept_photos += 1
            if not dry_run:
                try:
                    self._photos.delete_kept(name)
                except Exception as exc:
                    self._error(report, "orphans", exc)

    def _not_named(self, candidates: list[tuple[str, str, str | None]],
                   scan: dict[str, int]) -> list[tuple[str, str, str | None]]:
        """The candidates no user record names, asked again of the store, three to a query: a record read
        once answers either way (a person's attempt id in flight, then its personId; or a re-enrollment
        moving it between the two slots), whatever changed since the range's query."""
        orphans = []
        for start in range(0, len(candidates), 3):
            chunk = candidates[start:start + 3]
            groups: list[list[tuple[str, str, str]]] = []
            for _group, person_id, user_data in chunk:
                groups += [[("person_id", "eq", person_id)], [("new_person_id", "eq", person_id)]]
                if user_data:
                    groups += [[("person_attempt", "eq", user_data)], [("new_person_attempt", "eq", user_data)]]
            named = list(self._repos.users.where(*groups, only=USER_FIELDS))
            scan["userRowsRead"] += len(named)
            known, in_flight = plan.known_persons(named)
            orphans += [c for c in chunk if plan.is_orphan_person(c[1], c[2], persons=known, in_flight=in_flight)]
        return orphans

    def _mark_failed(self, user_key: str, person_id: str) -> None:
        group_id = [""]

        def change(user: User) -> None:
            if user.person_id != person_id:
                raise _Unchanged
            user.person_id, user.face_added_at, user.last_error = None, None, plan.MISSING_PERSON_MESSAGE
            group_id[0] = user.group_id or ""

        try:
            if self._repos.users.mutate(change, user_key) is None:
                return
        except _Unchanged:
            return
        for attempt in self._repos.attempts.partition(user_key):
            if attempt.person_id == person_id and attempt.group_id == group_id[0]:
                self._repos.attempts.delete(user_key, attempt.attempt_id)  # confirmed gone from Face
        self._audit.write("person.missing", actor="purge", subject=user_key)

    # --- 4. groups superseded by a re-enrollment ----------------------------------------------
    def _superseded_groups(self, report: PurgeReport, dry_run: bool, now: datetime) -> None:
        grace = timedelta(days=self._settings.group_grace_days)
        rows = self._repos.superseded.partition()
        report.rows_read["supersededGroups"] += len(rows)
        in_use = set(self._groups()) if rows else set()
        for row in rows:
            group_id = row.group_id
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
                # The group's persons are gone with it: their attempt rows may go now (confirmed delete).
                for attempt in self._repos.attempts.range(only=["group_id"]):
                    if attempt.group_id == group_id:
                        self._repos.attempts.delete(attempt.user_key, attempt.attempt_id)
                self._repos.superseded.delete(rk=group_id)
                self._audit.write("group.deleted", actor="purge", groupId=group_id, reason="superseded")
            except Exception as exc:
                self._error(report, "supersededGroups", exc)
