"""Revocation: erasure that is complete, verified, provable (a receipt) and final (revocation wins).

An ``erasurespending`` row (the intent) and then the ledger's revocation entry, the tombstone, are
written before anything is read: with the tombstone no consent is current, and every enroll or
re-enroll step that keeps data looks for it afterwards and undoes its own work. Then the footprint
(shared/services/footprint.py) is read and erased; each step is idempotent. The footprint is read again:
only when it is empty is the receipt written (``verified: true``) and the pending row deleted; otherwise
the erasure raises and is redelivered, and after a dead-letter purge_timer re-runs it with the same
request id, so there is always one receipt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from shared.adapters.repositories import Repositories
from shared.commands import HrTermination, ReadReceipt, RequestRevocation, Revoke
from shared.domain.enrollment import iso, latest_grant, ledger_entry_id, parse_iso
from shared.domain.erasure import day_key, hr_request_id, minute_key, receipt_id_for, revocation_request_id
from shared.domain.records import Counter, LedgerEntry, PendingErasure, Receipt, ScheduledMessage
from shared.envelopes import revoke_message
from shared.errors import (
    Forbidden,
    LargePersonGroupNotFound,
    NotFound,
    PersonNotFound,
    RecordConflict,
    RecordExists,
    TransientFailure,
)
from shared.ports import FacePort, MessagePublisherPort, PhotoStorePort
from shared.results import ErasedItems, ReceiptView, RevocationRequested
from shared.services.audit import AuditLog
from shared.services.consent import ConsentService
from shared.services.events import EventOutbox
from shared.services.footprint import Footprint, FootprintService, footprint_stores, hr_rows
from shared.settings import Settings

log = logging.getLogger("shared.revocation")

RETAINED = ("consent ledger entries (proof of consent and of its withdrawal)", "this receipt",
            "the door-system events about the user (the user key and what was announced, no face data)")


class RevocationService:
    def __init__(self, *, repos: Repositories, photos: PhotoStorePort, face: FacePort, consent: ConsentService,
                 audit: AuditLog, publisher: MessagePublisherPort, settings: Settings, clock: Callable[[], datetime],
                 footprint: FootprintService, events: EventOutbox) -> None:
        self._footprint = footprint
        self._repos = repos
        self._events = events
        self._photos = photos
        self._face = face
        self._consent = consent
        self._audit = audit
        self._publisher = publisher
        self._settings = settings
        self._clock = clock

    # --- requests ------------------------------------------------------------------------------
    def request(self, command: RequestRevocation) -> RevocationRequested:
        actor, user_key = command.actor, command.user_key
        if actor.user_key != user_key and not actor.is_admin:
            raise Forbidden("Only administrators can revoke another user's enrollment.")
        ledger = self._consent.ledger(user_key)
        grant = latest_grant(ledger)
        if grant is None:
            raise NotFound("There is no consent to revoke for this user.")
        # Deterministic: the same user and the same consent give the same request id, so Service
        # Bus duplicate detection drops repeats and a replay returns the same receipt.
        request_id = revocation_request_id(user_key, grant.entry_id)
        self._publisher.send(self._settings.revocations_queue, [revoke_message(
            Revoke(user_key, request_id, reason=command.reason, requested_by=actor.user_key))])
        self._audit.write("revocation.requested", actor=actor.user_key, subject=user_key, requestId=request_id,
                          reason=command.reason)
        return RevocationRequested(request_id)

    # --- HR terminations -------------------------------------------------------------------------
    def hr_event(self, command: HrTermination | None) -> str:
        if command is None:
            return "ignored"  # not a termination
        accounts = sorted({row.user_key for row in hr_rows(self._repos, command.employee_id) if row.user_key})
        if not accounts:
            self._audit.write("hr.termination.unknown", actor="hr", eventId=command.event_id[:256])
            self._count("hrTerminationsUnknown")
            log.warning("HR termination for an unknown employee id (counted in hrTerminationsUnknown)")
            return "unknown"
        outcome = "erased"
        for user_key in accounts:  # every account with that employee id
            revoke = Revoke(user_key, hr_request_id(command.source, command.event_id, user_key),
                            reason="employment ended", requested_by="hr")
            if command.effective > self._clock():
                # Erasure on the effective date: a scheduled message on the revocations queue, recorded
                # first (keyed by the user) so the footprint shows it and an erasure before then removes it.
                # A redelivered event finds its message scheduled and recorded: scheduling it again would
                # be dropped as a duplicate, and its token would replace the one that withdraws it.
                row = self._repos.scheduled.get(user_key, revoke.request_id)
                if row is None or not row.cancel_token:
                    row = self._repos.scheduled.upsert(ScheduledMessage(
                        user_key=user_key, message_id=revoke.request_id,
                        destination=self._settings.revocations_queue, kind="revocation", due_at=iso(command.effective)))
                    token = self._publisher.schedule(self._settings.revocations_queue,
                                                     revoke_message(revoke, not_before=command.effective))
                    if token:
                        # Recorded so an erasure before the date withdraws it (a replace: an erasure in
                        # between deleted the row, and the message, delivered, is a no-op).
                        row.cancel_token = token
                        self._repos.scheduled.replace_if_present(row)
                self._audit.write("hr.termination.scheduled", actor="hr", subject=user_key,
                                  requestId=revoke.request_id, effectiveDate=iso(command.effective))
                outcome = "scheduled"
            else:
                self.erase(revoke)
        return outcome

    def _count(self, name: str) -> None:
        """A counter: operators read it without scanning the audit log. Best effort, as it always was: a
        counter that keeps changing under five attempts is not worth failing the termination for."""
        def bump(counter: Counter) -> None:
            counter.count += 1

        try:
            self._repos.counters.mutate(bump, rk=name, create=lambda: Counter(name=name))
        except TransientFailure:
            log.warning("a counter kept changing; this increment is lost")

    # --- the erasure ----------------------------------------------------------------------------
    def erase(self, command: Revoke) -> ReceiptView:
        """Erases everything the footprint finds, verifies it by recomputing the footprint, then writes the
        receipt. Any failure raises (the message is redelivered; after a dead-letter, purge_timer re-runs
        it from the ``erasurespending`` row with the same request id, so the receipt is the same)."""
        user_key, request_id, reason, requested_by = (command.user_key, command.request_id, command.reason[:200],
                                                      command.requested_by[:200])
        now = self._clock()
        receipt_id = receipt_id_for(request_id)
        # 1. Intent, then the tombstone, then the reads: whatever an enroll in flight creates after the
        # tombstone, it sees the tombstone and undoes (PersonFactory, EnrollmentService); what it created
        # before, the reads below find.
        pending = self._repos.pending_erasures.get(rk=user_key)
        if pending is None:
            try:
                pending = self._repos.pending_erasures.insert(PendingErasure(
                    user_key=user_key, request_id=request_id, reason=reason, requested_by=requested_by,
                    requested_at=iso(now)))
            except RecordExists:
                pending = self._repos.pending_erasures.get(rk=user_key)
        ledger = self._consent.ledger(user_key)
        tombstone = next((e for e in ledger if e.kind == "revocation" and e.request_id == request_id), None)
        if tombstone is None:
            # The append-only ledger's revocation entry (a replay finds it by requestId).
            tombstone = LedgerEntry(user_key=user_key, entry_id=ledger_entry_id(now, request_id), kind="revocation",
                                    accepted=False, request_id=request_id, receipt_id=receipt_id, reason=reason,
                                    requested_by=requested_by, at=iso(now))
            try:
                self._consent.chain.append(tombstone)
            except RecordExists:
                pass
            ledger = self._consent.ledger(user_key)
        existing = self._repos.receipts.get(receipt_id)
        footprint = self._footprint.of(user_key)
        if existing is not None and footprint.is_empty():
            self._repos.pending_erasures.delete(rk=user_key)
            return self.public_receipt(existing)
        # 2. The plan: what existed when the erasure began (counts only), kept on the pending row so a
        # finishing redelivery or a repair reports it.
        if pending is not None and not pending.plan:
            pending.plan = footprint.counts()
            try:
                pending = self._repos.pending_erasures.update(pending)
            except RecordConflict:
                pending = self._repos.pending_erasures.get(rk=user_key)
        self._erase_footprint(footprint, ledger, request_id=request_id)
        # 3. Verification: the footprint again, from the stores themselves.
        after = self._footprint.of(user_key)
        if not after.is_empty():
            self._audit.write("revocation.unverified", actor="system", subject=user_key, requestId=request_id,
                              left=after.left())
            raise TransientFailure(f"erasure not verified: {', '.join(after.left())} remain; retrying")
        plan = dict(tombstone.plan) | (pending.plan if pending else {})
        erased = {k: max(int(v), int(plan.get(k, 0))) for k, v in footprint.counts().items()}
        if existing is not None:
            # Completed once, then found not empty (a race after the receipt, a repair): same receipt.
            self._repos.pending_erasures.delete(rk=user_key)
            self._audit.write("revocation.repaired", actor="system", subject=user_key, requestId=request_id,
                              receiptId=receipt_id)
            return self.public_receipt(existing)
        tables = self._settings.table_prefix
        receipt = Receipt(
            receipt_id=receipt_id, request_id=request_id, subject=user_key, requested_by=requested_by,
            reason=reason, completed_at=iso(self._clock()),
            erased=[
                {"kind": "faceTemplate", "store": "Azure Face LargePersonGroup (every group)",
                 "count": erased["facePersons"]},
                {"kind": "keptPhotos", "store": f"blob container {self._settings.kept_photos_container}",
                 "count": erased["keptPhotos"]},
                {"kind": "uploads", "store": f"blob container {self._settings.uploads_container}", "count": erased["uploads"]},
                {"kind": "uploadRecords", "store": f"table {tables}{self._repos.uploads.table}",
                 "count": erased["uploadRecords"]},
                {"kind": "enrollmentRecord", "store": f"table {tables}{self._repos.users.table}",
                 "count": erased["users"]},
            ],
            retained=list(RETAINED), verified=True, checked=[*footprint_stores(tables)])
        # The door systems' event, before the receipt (this step's completion marker): a crash in
        # between redelivers the erasure, which queues the same event (same receipt id) again.
        self._events.user_erased(user_key, receipt_id=receipt_id, reason=reason)
        try:
            self._repos.receipts.insert(receipt)
        except RecordExists:
            got = self._repos.receipts.get(receipt_id)
            if got:
                receipt = got
        self._repos.pending_erasures.delete(rk=user_key)
        self._audit.write("revocation.completed", actor=requested_by, subject=user_key, requestId=request_id,
                          receiptId=receipt_id, verified=True)
        log.info("revocation %s completed and verified, receipt %s", request_id, receipt_id)
        return self.public_receipt(receipt)

    def _erase_footprint(self, fp: Footprint, ledger: list[LedgerEntry], *, request_id: str) -> None:
        """Deletes what ``fp`` found. Each step is idempotent; records go after what they point to."""
        user_key, user = fp.user_key, fp.user
        # Face persons, in every group (active, re-enrollment, failed run, superseded); an attempt row
        # goes only after its person's delete is confirmed.
        for person in fp.persons:
            try:
                self._face.delete_person(person.group_id, person.person_id)
            except (PersonNotFound, LargePersonGroupNotFound):
                pass
        for attempt in fp.attempts:
            if attempt.person_id is None and self._footprint.person_of(attempt) is not None:
                continue  # created after the footprint was read: the verification sends us round again
            self._repos.attempts.delete(user_key, attempt.attempt_id)
        for name in fp.kept_photos:
            self._photos.delete_kept(name)
        for upload in fp.uploads:
            self._photos.delete_upload(upload.blob_name)
            self._repos.upload_index.delete(upload.upload_id)
            created = parse_iso(upload.created_at)
            if created is not None:
                self._repos.uploads_due.delete(minute_key(created), upload.upload_id)
            self._repos.uploads.delete(user_key, upload.upload_id)
        for run_id in fp.reenroll_items:
            self._repos.items.delete(run_id, user_key)
        # Scheduled messages naming the user: withdrawn from the bus (not this erasure's own message,
        # which is being delivered), then their rows go. One that cannot be withdrawn is a no-op when
        # delivered: it erases an empty footprint.
        for scheduled in fp.scheduled_rows:
            if scheduled.cancel_token and scheduled.message_id != request_id:
                try:
                    self._publisher.cancel(scheduled.destination, scheduled.cancel_token)
                except Exception:  # best effort: the bus being down must not stop the erasure
                    log.warning("a scheduled message could not be withdrawn; it will be a no-op when delivered")
            self._repos.scheduled.delete(user_key, scheduled.message_id)
        for employee_id in fp.hr_index:
            for row in hr_rows(self._repos, employee_id):
                if row.user_key == user_key:
                    self._repos.hr_index.delete(employee_id, row.row_key)
        self._repos.overrides.delete(user_key)
        for subject, window in fp.quota_windows:
            self._repos.quotas.delete(subject, window)
        for entry in ledger:
            at = parse_iso(entry.at)
            if entry.kind == "consent" and at is not None:
                self._repos.consent_due.delete(day_key(at), user_key)
        if user is not None:
            try:
                # Conditional: a record changed since the footprint read (an enroll recorded a person)
                # is not deleted blind; the verification finds what changed and the erasure runs again.
                self._repos.users.delete_record(user)
            except RecordConflict as exc:
                raise TransientFailure("the enrollment record changed during the erasure; retrying") from exc

    def receipt(self, command: ReadReceipt) -> ReceiptView:
        if not command.actor.is_admin:
            raise Forbidden("Only administrators can read deletion receipts.")
        found = self._repos.receipts.get(command.receipt_id)
        if found is None:
            raise NotFound("No receipt with this id.")
        return self.public_receipt(found)

    @staticmethod
    def public_receipt(receipt: Receipt) -> ReceiptView:
        return ReceiptView(
            receipt_id=receipt.receipt_id, request_id=receipt.request_id, subject=receipt.subject,
            requested_by=receipt.requested_by, reason=receipt.reason, completed_at=receipt.completed_at,
            erased=tuple(ErasedItems(str(e["kind"]), str(e["store"]), int(str(e["count"]))) for e in receipt.erased),
            retained=tuple(receipt.retained), verified=receipt.verified, checked=tuple(receipt.checked))
