"""Revocation: erasure that is complete, provable (a receipt) and final (revocation wins).

The ledger's revocation entry is written first and is the tombstone: with it, no consent is
current, so every later or in-flight enroll or re-enroll work item for the user is a no-op. Then
every store is erased; each step is idempotent, so a crash anywhere ends, after redelivery, in the
same complete erasure and the same receipt.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

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
from shared.domain.principal import Principal
from shared.errors import LargePersonGroupNotFound, MessageRejected, PersonNotFound, RecordExists, RequestRejected
from shared.ports import FacePort, MessagePublisherPort, OutgoingMessage, PhotoStorePort, RecordStorePort
from shared.services.audit import AuditLog
from shared.services.consent import ConsentService
from shared.settings import Settings

log = logging.getLogger("shared.revocation")

# Package data beside the code: the deployment package ships shared/ but not docs/.
HR_SCHEMA = Path(__file__).resolve().parents[1] / "contracts" / "hr-events.schema.json"
RECEIPT_NAMESPACE = uuid.UUID("6f1c3e1a-8d52-4b0e-9a55-1d7f0c2b9e41")


@lru_cache(maxsize=1)
def _hr_validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(HR_SCHEMA.read_text()))


def parse_effective(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


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
    def request(self, actor: Principal, user_key: str, *, reason: str) -> dict[str, Any]:
        if actor.user_key != user_key and not actor.is_admin:
            raise RequestRejected("Only administrators can revoke another user's enrollment.", status=403, code="Forbidden")
        ledger = self._consent.ledger(user_key)
        grants = sorted(str(e["RowKey"]) for e in ledger if e.get("kind") == "consent")
        if not grants:
            raise RequestRejected("There is no consent to revoke for this user.", status=404, code="NotFound")
        # Deterministic: the same user and the same consent give the same request id, so Service
        # Bus duplicate detection drops repeats and a replay returns the same receipt.
        request_id = uuid.uuid5(RECEIPT_NAMESPACE, f"{user_key}|{grants[-1]}").hex
        self._send(user_key, request_id, requested_by=actor.user_key, reason=reason)
        self._audit.write("revocation.requested", actor=actor.user_key, subject=user_key, requestId=request_id, reason=reason)
        return {"requestId": request_id}

    def _send(self, user_key: str, request_id: str, *, requested_by: str, reason: str,
              not_before: datetime | None = None) -> None:
        body = json.dumps({"userKey": user_key, "requestId": request_id, "requestedBy": requested_by,
                           "reason": reason}).encode()
        self._publisher.send(self._settings.revocations_queue, [OutgoingMessage(
            body=body, message_id=request_id, scheduled_enqueue_time=not_before,
            application_properties={"kind": "revocation"})])

    # --- the revoke function -------------------------------------------------------------------
    def handle_command(self, body: bytes, *, message_id: str, delivery_count: int = 1) -> dict[str, Any]:
        try:
            doc = json.loads(body)
            user_key, request_id = str(doc["userKey"]), str(doc["requestId"])
        except (ValueError, KeyError, TypeError) as exc:
            if delivery_count <= 1:  # redelivered until dead-lettered: one audit entry, not one per delivery
                self._audit.write("message.rejected", actor="system", queue=self._settings.revocations_queue,
                                  messageId=message_id[:128], reason="malformed revocation command")
            raise MessageRejected("malformed revocation command", description=str(exc)[:200]) from exc
        return self.erase(user_key, request_id=request_id, reason=str(doc.get("reason") or "revoked"),
                          requested_by=str(doc.get("requestedBy") or "system"))

    def handle_hr_event(self, body: bytes, *, message_id: str, delivery_count: int = 1) -> str:
        try:
            event = json.loads(body)
        except ValueError as exc:
            self._reject_hr(message_id, delivery_count, "HR event is not JSON")
            raise MessageRejected("HR event is not JSON", description=str(exc)[:200]) from exc
        errors = sorted(_hr_validator().iter_errors(event), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path) or "(root)"
            # The keyword, never the validator's message: that message quotes the value (an employee id).
            reason = (f"HR event does not match shared/contracts/hr-events.schema.json at {where}: "
                      f"the '{errors[0].validator}' rule fails")
            self._reject_hr(message_id, delivery_count, reason)
            raise MessageRejected(reason)
        if event["type"] not in self._settings.termination_event_types:
            return "ignored"
        employee_id = str(event["data"]["employeeId"])
        try:
            effective = parse_effective(str(event["data"]["effectiveDate"]))
        except ValueError as exc:
            self._reject_hr(message_id, delivery_count, "effectiveDate is not a date")
            raise MessageRejected("effectiveDate is not a date") from exc
        found = self._records.get(TABLE_HR_INDEX, employee_id, "u")
        if found is None:
            self._audit.write("hr.termination.unknown", actor="hr", eventId=str(event["id"])[:256])
            return "unknown"
        user_key = str(found[0]["userKey"])
        request_id = uuid.uuid5(RECEIPT_NAMESPACE, f"hr|{event['source']}|{event['id']}").hex
        if effective > self._clock():
            # Erasure on the effective date: a scheduled message on the revocations queue.
            self._send(user_key, request_id, requested_by="hr", reason="employment ended", not_before=effective)
            self._audit.write("hr.termination.scheduled", actor="hr", subject=user_key, requestId=request_id,
                              effectiveDate=iso(effective))
            return "scheduled"
        self.erase(user_key, request_id=request_id, reason="employment ended", requested_by="hr")
        return "erased"

    def _reject_hr(self, message_id: str, delivery_count: int, reason: str) -> None:
        if delivery_count > 1:
            return  # redelivered until dead-lettered: the first delivery recorded the reason
        self._audit.write("message.rejected", actor="system", topic=self._settings.hr_events_topic,
                          messageId=message_id[:128], reason=reason)

    def erase(self, user_key: str, *, request_id: str, reason: str, requested_by: str) -> dict[str, Any]:
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

    def receipt(self, actor: Principal, receipt_id: str) -> dict[str, Any]:
        if not actor.is_admin:
            raise RequestRejected("Only administrators can read deletion receipts.", status=403, code="Forbidden")
        found = self._records.get(TABLE_RECEIPTS, receipt_id, "receipt")
        if found is None:
            raise RequestRejected("No receipt with this id.", status=404, code="NotFound")
        return self.public_receipt(found[0])

    @staticmethod
    def public_receipt(row: dict[str, Any]) -> dict[str, Any]:
        return {"receiptId": row["receiptId"], "requestId": row["requestId"], "subject": row.get("subject"),
                "requestedBy": row.get("requestedBy"), "reason": row.get("reason"), "completedAt": row.get("completedAt"),
                "erased": row.get("erased_json"), "retained": row.get("retained_json")}

    def latest_revocation(self, user_key: str) -> dict[str, Any] | None:
        ledger = self._consent.ledger(user_key)
        if not ledger:
            return None
        latest = max(ledger, key=lambda e: str(e["RowKey"]))
        return latest if latest.get("kind") == "revocation" else None
