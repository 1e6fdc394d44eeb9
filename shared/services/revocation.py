"""Revocation: erasure that is complete, provable (a receipt) and final (revocation wins).

The ledger's revocation entry is written first and is the tombstone: with it, no consent is
current, so every later or in-flight enroll or re-enroll work item for the user is a no-op. Then
every store is erased; each step is idempotent, so a crash anywhere ends, after redelivery, in the
same complete erasure and the same receipt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from shared.adapters.repositories import Repositories
from shared.commands import HrTermination, ReadReceipt, RequestRevocation, Revoke
from shared.domain.enrollment import iso, latest_grant, ledger_entry_id, parse_iso
from shared.domain.erasure import day_key, hr_request_id, minute_key, receipt_id_for, revocation_request_id
from shared.domain.records import LedgerEntry, Receipt, User
from shared.envelopes import revoke_message
from shared.errors import Forbidden, LargePersonGroupNotFound, NotFound, PersonNotFound, RecordExists
from shared.ports import FacePort, MessagePublisherPort, PhotoStorePort
from shared.results import ErasedItems, ReceiptView, RevocationRequested
from shared.services.audit import AuditLog
from shared.services.consent import ConsentService
from shared.services.events import EventOutbox
from shared.settings import Settings

log = logging.getLogger("shared.revocation")

RETAINED = ("consent ledger entries (proof of consent and of its withdrawal)", "this receipt")


class RevocationService:
    def __init__(self, *, repos: Repositories, photos: PhotoStorePort, face: FacePort, consent: ConsentService,
                 audit: AuditLog, publisher: MessagePublisherPort, settings: Settings, clock: Callable[[], datetime],
                 events: EventOutbox) -> None:
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
        found = self._repos.hr_index.get(command.employee_id)
        if found is None:
            self._audit.write("hr.termination.unknown", actor="hr", eventId=command.event_id[:256])
            return "unknown"
        user_key = found.user_key
        revoke = Revoke(user_key, hr_request_id(command.source, command.event_id), reason="employment ended",
                        requested_by="hr")
        if command.effective > self._clock():
            # Erasure on the effective date: a scheduled message on the revocations queue.
            self._publisher.send(self._settings.revocations_queue, [revoke_message(revoke, not_before=command.effective)])
            self._audit.write("hr.termination.scheduled", actor="hr", subject=user_key, requestId=revoke.request_id,
                              effectiveDate=iso(command.effective))
            return "scheduled"
        self.erase(revoke)
        return "erased"

    # --- the erasure ----------------------------------------------------------------------------
    def erase(self, command: Revoke) -> ReceiptView:
        user_key, request_id, reason, requested_by = (command.user_key, command.request_id, command.reason,
                                                      command.requested_by)
        now = self._clock()
        receipt_id = receipt_id_for(request_id)
        existing = self._repos.receipts.get(receipt_id)
        ledger = self._consent.ledger(user_key)
        tombstone = next((e for e in ledger if e.kind == "revocation" and e.request_id == request_id), None)
        if existing is not None and tombstone is not None:
            return self.public_receipt(existing)
        user = self._repos.users.get(user_key)
        if tombstone is None:
            # 1. The tombstone, in the append-only ledger (a replay finds it by requestId). It carries
            # the erasure plan: what existed when the erasure began, so the receipt reports it even
            # when a crash interrupts the erasure and a redelivery finishes it.
            tombstone = LedgerEntry(user_key=user_key, entry_id=ledger_entry_id(now, request_id), kind="revocation",
                                    accepted=False, request_id=request_id, receipt_id=receipt_id, reason=reason[:200],
                                    requested_by=requested_by[:200], at=iso(now), plan=self._plan(user_key, user))
            try:
                self._consent.chain.append(tombstone)
            except RecordExists:
                pass
        erased: dict[str, int] = {"facePersons": 0, "keptPhotos": 0, "uploads": 0, "uploadRecords": 0,
                                  "enrollmentRecords": 0}
        # 2. Face persons, in every group the user is in (the active one, a re-enrollment target, the
        # superseded one).
        for group_id, person_id in user.persons() if user else ():
            try:
                self._face.delete_person(group_id, person_id)
                erased["facePersons"] += 1
            except (PersonNotFound, LargePersonGroupNotFound):
                pass
        # 3. Kept photos.
        if user and user.kept_token:
            for name in self._photos.list_kept(f"{user.kept_token}/"):
                erased["keptPhotos"] += int(self._photos.delete_kept(name))
        # 4. Uploads, pending or not, their records and their index.
        for upload in self._repos.uploads.partition(user_key):
            erased["uploads"] += int(self._photos.delete_upload(upload.blob_name))
            self._repos.upload_index.delete(upload.upload_id)
            created = parse_iso(upload.created_at)
            if created is not None:
                self._repos.uploads_due.delete(minute_key(created), upload.upload_id)
            self._repos.uploads.delete(user_key, upload.upload_id)
            erased["uploadRecords"] += 1
        # 5. Enrollment records.
        if user and user.hr_key:
            self._repos.hr_index.delete(user.hr_key)
        if user:
            self._repos.users.delete(user_key)
            erased["enrollmentRecords"] += 1
        self._repos.overrides.delete(user_key)
        # The retention index row of the consent in force (only the latest grant has one; a
        # leftover is dropped by purge_timer when its day comes).
        grant = latest_grant(ledger)
        granted = parse_iso(grant.at) if grant else None
        if granted is not None:
            self._repos.consent_due.delete(day_key(granted), user_key)
        # 6. The receipt: what kinds were erased, where, when, on which request. No biometrics, no personId.
        # The plan's counts, when this erasure was interrupted and is being finished, cover what an
        # earlier delivery already erased.
        for kind, count in tombstone.plan.items():
            if kind in erased:
                erased[kind] = max(erased[kind], int(count))
        tables = self._settings.table_prefix
        receipt = Receipt(
            receipt_id=receipt_id, request_id=request_id, subject=user_key, requested_by=requested_by[:200],
            reason=reason[:200], completed_at=iso(self._clock()),
            erased=[
                {"kind": "faceTemplate", "store": "Azure Face LargePersonGroup", "count": erased["facePersons"]},
                {"kind": "keptPhotos", "store": f"blob container {self._settings.kept_photos_container}",
                 "count": erased["keptPhotos"]},
                {"kind": "uploads", "store": f"blob container {self._settings.uploads_container}", "count": erased["uploads"]},
                {"kind": "uploadRecords", "store": f"table {tables}{self._repos.uploads.table}",
                 "count": erased["uploadRecords"]},
                {"kind": "enrollmentRecord", "store": f"table {tables}{self._repos.users.table}",
                 "count": erased["enrollmentRecords"]},
            ],
            retained=list(RETAINED))
        # The door systems' event, before the receipt (this step's completion marker): a crash in
        # between redelivers the erasure, which queues the same event (same receipt id) again.
        self._events.user_erased(user_key, receipt_id=receipt_id, reason=reason)
        try:
            self._repos.receipts.insert(receipt)
        except RecordExists:
            got = self._repos.receipts.get(receipt_id)
            if got:
                return self.public_receipt(got)
        self._audit.write("revocation.completed", actor=requested_by[:200], subject=user_key, requestId=request_id,
                          receiptId=receipt_id)
        log.info("revocation %s completed, receipt %s", request_id, receipt_id)
        return self.public_receipt(receipt)

    def _plan(self, user_key: str, user: User | None) -> dict[str, int]:
        """Counts what the erasure will remove (counts only: no identifiers, no biometrics)."""
        kept = len(self._photos.list_kept(f"{user.kept_token}/")) if user and user.kept_token else 0
        uploads = self._repos.uploads.partition(user_key)
        names = {u.blob_name for u in uploads if u.status in ("awaitingUpload", "processing")}
        sessions = {n.split("/", 1)[0] for n in names}
        present = sum(1 for session in sessions for n in self._photos.list_uploads(f"{session}/") if n in names)
        return {"facePersons": len(user.persons()) if user else 0, "keptPhotos": kept, "uploads": present,
                "uploadRecords": len(uploads), "enrollmentRecords": 1 if user else 0}

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
            retained=tuple(receipt.retained))
