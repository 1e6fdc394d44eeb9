"""Revocation: erasure that is complete, provable (a receipt) and final (revocation wins).

The ledger's revocation entry is written first and is the tombstone: with it, no consent is
current, so every later or in-flight enroll or re-enroll work item for the user is a no-op. Then
every store is erased; each step is idempotent, so a crash anywhere ends, after redelivery, in the
same complete erasure and the same receipt.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.commands import HrTermination, ReadReceipt, RequestRevocation, Revoke
from shared.domain.enrollment import (
    TABLE_CONSENT,
    TABLE_HR_INDEX,
    TABLE_OVERRIDES,
    TABLE_RECEIPTS,
    TABLE_UPLOAD_INDEX,
    TABLE_UPLOADS,
    TABLE_USERS,
    USER_ROW,
    iso,
    ledger_row_key,
    parse_iso,
)
from shared.domain.erasure import TABLE_CONSENT_BY_DAY, TABLE_UPLOADS_BY_MINUTE, day_key, latest_grant, minute_key
from shared.envelopes import revoke_message
from shared.errors import Forbidden, LargePersonGroupNotFound, NotFound, PersonNotFound, RecordExists
from shared.ports import FacePort, MessagePublisherPort, PhotoStorePort, RecordStorePort
from shared.results import ErasedItems, ReceiptView, RevocationRequested
from shared.services.audit import AuditLog
from shared.services.consent import ConsentService
from shared.settings import Settings

log = logging.getLogger("shared.revocation")

RECEIPT_NAMESPACE = uuid.UUID("6f1c3e1a-8d52-4b0e-9a55-1d7f0c2b9e41")


class RevocationService:
    def __init__(self, *, records: RecordStorePort, photos: PhotoStorePort, face: FacePort, consent: ConsentService,
                 audit: AuditLog, publisher: MessagePublisherPort, settings: Settings, clock: Callable[[], datetime]) -> None:
        self._records = records
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
        grants = sorted(str(e["RowKey"]) for e in ledger if e.get("kind") == "consent")
        if not grants:
            raise NotFound("There is no consent to revoke for this user.")
        # Deterministic: the same user and the same consent give the same request id, so Service
        # Bus duplicate detection drops repeats and a replay returns the same receipt.
        request_id = uuid.uuid5(RECEIPT_NAMESPACE, f"{user_key}|{grants[-1]}").hex
        self._publisher.send(self._settings.revocations_queue, [revoke_message(
            Revoke(user_key, request_id, reason=command.reason, requested_by=actor.user_key))])
        self._audit.write("revocation.requested", actor=actor.user_key, subject=user_key, requestId=request_id,
                          reason=command.reason)
        return RevocationRequested(request_id)

    # --- HR terminations -------------------------------------------------------------------------
    def hr_event(self, command: HrTermination | None) -> str:
        if command is None:
            return "ignored"  # not a termination
        found = self._records.get(TABLE_HR_INDEX, command.employee_id, "u")
        if found is None:
            self._audit.write("hr.termination.unknown", actor="hr", eventId=command.event_id[:256])
            return "unknown"
        user_key = str(found[0]["userKey"])
        revoke = Revoke(user_key, uuid.uuid5(RECEIPT_NAMESPACE, f"hr|{command.source}|{command.event_id}").hex,
                        reason="employment ended", requested_by="hr")
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
        receipt_id = uuid.uuid5(RECEIPT_NAMESPACE, f"receipt|{request_id}").hex
        existing = self._records.get(TABLE_RECEIPTS, receipt_id, "receipt")
        ledger = self._consent.ledger(user_key)
        revoked_entry = next((e for e in ledger if e.get("kind") == "revocation" and e.get("requestId") == request_id), None)
        if existing is not None and revoked_entry is not None:
            return self.public_receipt(existing[0])
        user_found = self._records.get(TABLE_USERS, user_key, USER_ROW)
        user = user_found[0] if user_found else {}
        if revoked_entry is None:
            # 1. The tombstone, in the append-only ledger (a replay finds it by requestId). It carries
            # the erasure plan: what existed when the erasure began, so the receipt reports it even
            # when a crash interrupts the erasure and a redelivery finishes it.
            plan = self._plan(user_key, user)
            revoked_entry = {
                "PartitionKey": user_key, "RowKey": ledger_row_key(now, request_id), "kind": "revocation",
                "accepted": False, "requestId": request_id, "receiptId": receipt_id, "reason": reason[:200],
                "requestedBy": requested_by[:200], "at": iso(now), "plan_json": plan}
            try:
                self._records.insert(TABLE_CONSENT, revoked_entry)
            except RecordExists:
                pass
        erased: dict[str, int] = {"facePersons": 0, "keptPhotos": 0, "uploads": 0, "uploadRecords": 0,
                                  "enrollmentRecords": 0}
        # 2. Face persons, in every group the user is in (the active one and a re-enrollment target).
        for group_key, person_key in (("groupId", "personId"), ("newGroupId", "newPersonId"),
                                      ("previousGroupId", "previousPersonId")):
            if user.get(group_key) and user.get(person_key):
                try:
                    self._face.delete_person(str(user[group_key]), str(user[person_key]))
                    erased["facePersons"] += 1
                except (PersonNotFound, LargePersonGroupNotFound):
                    pass
        # 3. Kept photos.
        if user.get("keptToken"):
            for name in self._photos.list_kept(f"{user['keptToken']}/"):
                erased["keptPhotos"] += int(self._photos.delete_kept(name))
        # 4. Uploads, pending or not, their records and their index.
        for row in self._records.partition(TABLE_UPLOADS, user_key):
            erased["uploads"] += int(self._photos.delete_upload(str(row.get("blobName") or "")))
            self._records.delete(TABLE_UPLOAD_INDEX, str(row["RowKey"]), "u")
            created = parse_iso(row.get("createdAt"))
            if created is not None:
                self._records.delete(TABLE_UPLOADS_BY_MINUTE, minute_key(created), str(row["RowKey"]))
            self._records.delete(TABLE_UPLOADS, user_key, str(row["RowKey"]))
            erased["uploadRecords"] += 1
        # 5. Enrollment records.
        if user.get("hrKey"):
            self._records.delete(TABLE_HR_INDEX, str(user["hrKey"]), "u")
        if user_found:
            self._records.delete(TABLE_USERS, user_key, USER_ROW)
            erased["enrollmentRecords"] += 1
        self._records.delete(TABLE_OVERRIDES, user_key, "override")
        # The retention index row of the consent in force (only the latest grant has one; a
        # leftover is dropped by purge_timer when its day comes).
        grant = latest_grant(ledger)
        granted = parse_iso(str(grant.get("at"))) if grant else None
        if granted is not None:
            self._records.delete(TABLE_CONSENT_BY_DAY, day_key(granted), user_key)
        # 6. The receipt: what kinds were erased, where, when, on which request. No biometrics, no personId.
        # The plan's counts, when this erasure was interrupted and is being finished, cover what an
        # earlier delivery already erased.
        for kind, count in dict(revoked_entry.get("plan_json") or {}).items():
            if kind in erased:
                erased[kind] = max(erased[kind], int(count))
        receipt = {
            "PartitionKey": receipt_id, "RowKey": "receipt", "receiptId": receipt_id, "requestId": request_id,
            "subject": user_key, "requestedBy": requested_by[:200], "reason": reason[:200], "completedAt": iso(self._clock()),
            "erased_json": [
                {"kind": "faceTemplate", "store": "Azure Face LargePersonGroup", "count": erased["facePersons"]},
                {"kind": "keptPhotos", "store": f"blob container {self._settings.kept_photos_container}",
                 "count": erased["keptPhotos"]},
                {"kind": "uploads", "store": f"blob container {self._settings.uploads_container}", "count": erased["uploads"]},
                {"kind": "uploadRecords", "store": f"table {self._settings.table_prefix}{TABLE_UPLOADS}",
                 "count": erased["uploadRecords"]},
                {"kind": "enrollmentRecord", "store": f"table {self._settings.table_prefix}{TABLE_USERS}",
                 "count": erased["enrollmentRecords"]},
            ],
            "retained_json": ["consent ledger entries (proof of consent and of its withdrawal)", "this receipt"],
        }
        try:
            self._records.insert(TABLE_RECEIPTS, receipt)
        except RecordExists:
            got = self._records.get(TABLE_RECEIPTS, receipt_id, "receipt")
            if got:
                return self.public_receipt(got[0])
        self._audit.write("revocation.completed", actor=requested_by[:200], subject=user_key, requestId=request_id,
                          receiptId=receipt_id)
        log.info("revocation %s completed, receipt %s", request_id, receipt_id)
        return self.public_receipt(receipt)

    def _plan(self, user_key: str, user: dict[str, Any]) -> dict[str, int]:
        """Counts what the erasure will remove (counts only: no identifiers, no biometrics)."""
        persons = sum(1 for g, p in (("groupId", "personId"), ("newGroupId", "newPersonId"),
                                      ("previousGroupId", "previousPersonId")) if user.get(g) and user.get(p))
        kept = len(self._photos.list_kept(f"{user['keptToken']}/")) if user.get("keptToken") else 0
        uploads = self._records.partition(TABLE_UPLOADS, user_key)
        names = {str(u.get("blobName")) for u in uploads if u.get("status") in ("awaitingUpload", "processing")}
        sessions = {n.split("/", 1)[0] for n in names}
        present = sum(1 for session in sessions for n in self._photos.list_uploads(f"{session}/") if n in names)
        return {"facePersons": persons, "keptPhotos": kept, "uploads": present, "uploadRecords": len(uploads),
                "enrollmentRecords": 1 if user else 0}

    def receipt(self, command: ReadReceipt) -> ReceiptView:
        if not command.actor.is_admin:
            raise Forbidden("Only administrators can read deletion receipts.")
        found = self._records.get(TABLE_RECEIPTS, command.receipt_id, "receipt")
        if found is None:
            raise NotFound("No receipt with this id.")
        return self.public_receipt(found[0])

    @staticmethod
    def public_receipt(row: dict[str, Any]) -> ReceiptView:
        return ReceiptView(
            receipt_id=str(row["receiptId"]), request_id=str(row["requestId"]), subject=row.get("subject"),
            requested_by=row.get("requestedBy"), reason=row.get("reason"), completed_at=row.get("completedAt"),
            erased=tuple(ErasedItems(str(e["kind"]), str(e["store"]), int(e["count"])) for e in row.get("erased_json") or ()),
            retained=tuple(str(r) for r in row.get("retained_json") or ()))
