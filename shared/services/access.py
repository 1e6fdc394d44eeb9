"""Access and self-service (GDPR Art. 15): everything held about one user, as one JSON bundle.

Built on the footprint (shared/services/footprint.py), which knows every store: the bundle is what the
footprint finds, read out, minus what identifies something inside a store (personIds, face templates,
blob names and the kept-photo token, which are locators and never leave the app). Audit rows name users by
a keyed hash, so the user's are found by computing it (``AuditLog.subject_of``).

Readers: the user (``GET /api/me``, MFA), an admin (``GET /api/admin/users/{userKey}/export``, audited);
the user's own kept photos (``GET /api/me/photos/{photoId}``: a read-only SAS for minutes) and receipts
(``GET /api/me/receipts/{receiptId}``: they outlive the erasure).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.repositories import Repositories
from shared.adapters.retention_policy import POLICY_ROUTE
from shared.commands import ExportUser, ReadOwn
from shared.domain.enrollment import iso, kept_name_for
from shared.domain.erasure import day_key
from shared.domain.records import LedgerEntry
from shared.errors import Forbidden, NotFound
from shared.ports import PhotoStorePort
from shared.results import PhotoLink, ReceiptView
from shared.services.audit import SYSTEM_ACTORS, AuditLog
from shared.services.consent import ConsentService
from shared.services.enrollment import EnrollmentService
from shared.services.footprint import FootprintService
from shared.services.revocation import RevocationService

#: Ledger fields a user sees, by column name (never a personId: the ledger holds none).
LEDGER_FIELDS = (("kind", "kind"), ("at", "at"), ("accepted", "accepted"), ("terms_version", "termsVersion"),
                 ("terms_sha256", "termsSha256"), ("store_photos", "storePhotos"), ("client", "client"),
                 ("request_id", "requestId"), ("receipt_id", "receiptId"), ("reason", "reason"),
                 # the hash chain (shared/domain/ledger_chain.py): with these a user can check their own chain
                 ("seq", "seq"), ("prev_sha256", "prevSha256"))
LEDGER_EVENT = {"consent": "consented", "decline": "declined", "revocation": "withdrawn"}


class AccessService:
    def __init__(self, *, repos: Repositories, photos: PhotoStorePort, audit: AuditLog, consent: ConsentService,
                 enrollment: EnrollmentService, footprint: FootprintService, revocation: RevocationService,
                 clock: Callable[[], datetime], sas_ttl_minutes: int, audit_retention_days: int) -> None:
        self._repos = repos
        self._photos = photos
        self._audit = audit
        self._consent = consent
        self._enrollment = enrollment
        self._footprint = footprint
        self._revocation = revocation
        self._clock = clock
        self._sas_minutes = sas_ttl_minutes
        self._audit_days = audit_retention_days

    # --- the bundle --------------------------------------------------------------------------------
    def mine(self, user_key: str) -> dict[str, object]:
        self._audit.write("access.read", actor=user_key, subject=user_key)
        return self.bundle(user_key)

    def export(self, command: ExportUser) -> dict[str, object]:
        if not command.admin.is_admin:
            raise Forbidden("Only administrators can export a user's data.")
        self._audit.write("access.exported", actor=command.admin.user_key, subject=command.user_key)
        return self.bundle(command.user_key)

    def bundle(self, user_key: str) -> dict[str, object]:
        status = self._enrollment.status(user_key)  # completes a replacement that can be completed
        fp = self._footprint.of(user_key)  # its audit count is taken from the rows read below (one scan, not two)
        ledger = sorted(self._consent.ledger(user_key), key=lambda e: e.entry_id)
        uploads = sorted(fp.uploads, key=lambda u: str(u.created_at))
        by_id = {u.upload_id: u for u in uploads}
        kept = []
        for name in fp.kept_photos:
            photo_id = name.split("/", 1)[-1].removesuffix(".jpg")
            upload = by_id.get(photo_id)
            kept.append({"photoId": photo_id, "keptAt": upload.processed_at if upload else None,
                         "link": f"/api/me/photos/{photo_id}"})
        receipts = [self._revocation.public_receipt(r).as_json()
                    for r in (self._repos.receipts.get(e.receipt_id) for e in ledger if e.receipt_id) if r is not None]
        photos = [{"uploadId": u.upload_id, "sessionId": u.session_id, "status": u.status, "codes": list(u.codes),
                   "reasons": list(u.reasons), "createdAt": u.created_at, "processedAt": u.processed_at,
                   "kept": any(k["photoId"] == u.upload_id for k in kept)} for u in uploads]
        history = [{"at": e.at, "event": LEDGER_EVENT.get(e.kind, e.kind), "termsVersion": e.terms_version}
                   for e in ledger]
        history += [{"at": u.processed_at, "event": f"photo{u.status[:1].upper()}{u.status[1:]}", "uploadId": u.upload_id}
                    for u in uploads if u.processed_at]
        audit = self._audit_events(user_key)
        fp.audit_rows = len(audit)
        history += [{"at": a["at"], "event": a["action"]} for a in audit
                    if str(a["action"]).startswith(("replacement.", "person.", "revocation.completed"))]
        user = fp.user
        return {
            "userKey": user_key,
            "generatedAt": iso(self._clock()),
            "retentionPolicy": {"href": POLICY_ROUTE, "version": self._consent.policy().version},
            "consentLedger": [self._ledger_entry(e, user_key) for e in ledger],
            "enrollment": {**status.as_json(), "history": sorted(history, key=lambda h: str(h["at"]))},
            "photos": photos,
            "keptPhotos": {"count": len(kept), "photos": kept,
                           "storePhotos": bool(user.store_photos) if user else False},
            "receipts": receipts,
            "audit": audit,
            "doorEvents": self._door_events(user_key),
            "held": {"erasable": fp.counts(), "retained": fp.retained(),
                     "faceTemplates": {"count": len(fp.persons),
                                       "note": "Face templates are held by Azure Face and are never exported."}},
        }

    def _ledger_entry(self, entry: LedgerEntry, user_key: str) -> dict[str, Any]:
        out: dict[str, Any] = {"entryId": entry.entry_id}
        for name, column in LEDGER_FIELDS:
            value = getattr(entry, name)
            if value is not None:
                out[column] = value
        if entry.requested_by is not None:
            out["requestedBy"] = self._who(entry.requested_by, user_key)
        return out

    @staticmethod
    def _who(actor: str, user_key: str) -> str:
        """Another person's user key is theirs, not the subject's: an admin is shown as ``administrator``."""
        if actor == user_key:
            return "you"
        return actor if actor in SYSTEM_ACTORS or actor.startswith("purge") else "administrator"

    def _audit_events(self, user_key: str) -> list[dict[str, Any]]:
        """Every audit row within the retention that names the user (as subject or actor), by the keyed hash."""
        me = self._audit.subject_of(user_key)
        since = day_key(self._clock() - timedelta(days=self._audit_days))
        out = []
        for row in self._repos.audit.range(pk_from=since):
            if me not in (row.subject, row.actor):
                continue
            actor = "you" if row.actor == me else (row.actor if row.actor in SYSTEM_ACTORS or row.actor.startswith("purge")
                                                  else "administrator")
            out.append({"at": row.at, "action": row.action, "actor": actor,
                        "about": "you" if row.subject == me else None, "details": dict(row.details)})
        return sorted(out, key=lambda a: str(a["at"]))

    def _door_events(self, user_key: str) -> list[dict[str, Any]]:
        """What the door systems were told about the user (the outbox keeps it, with the user key): a scan of
        the outbox table, as the audit events are a scan of the audit retention (an access request is rare)."""
        subject = f"users/{user_key}"
        out = []
        for event in self._repos.outbox.range(only=["type", "subject", "time", "status", "sent_at", "data"]):
            if event.subject != subject:
                continue  # another user's, a group's, or a row of the sender's work list
            data = {k: v for k, v in event.data.items() if k != "userKey"}
            out.append({"type": event.type, "at": event.time, "status": event.status, "sentAt": event.sent_at,
                        "data": data})
        return sorted(out, key=lambda e: str(e["at"]))

    # --- one's own kept photo, one's own receipt ------------------------------------------------------
    def photo_link(self, command: ReadOwn) -> PhotoLink:
        """A read-only SAS for minutes to a kept photo of the caller's; 404 for anything else (someone else's
        photo and no photo are indistinguishable)."""
        user = self._repos.users.get(command.principal.user_key)
        if user is None or not user.kept_token:
            raise NotFound("No such photo.")
        name = kept_name_for(user.kept_token, command.item_id)
        if name not in self._photos.list_kept(f"{user.kept_token}/"):
            raise NotFound("No such photo.")
        expires = self._clock() + timedelta(minutes=self._sas_minutes)
        url = self._photos.kept_read_url(name, expires_on=expires)
        self._audit.write("photo.linked", actor=user.user_key, subject=user.user_key, photoId=command.item_id)
        return PhotoLink(command.item_id, url, iso(expires))

    def receipt(self, command: ReadOwn) -> ReceiptView:
        """The caller's own deletion receipt (it outlives the erasure: receipts are retained)."""
        found = self._repos.receipts.get(command.item_id)
        if found is None or found.subject != command.principal.user_key:
            raise NotFound("No such receipt.")
        return self._revocation.public_receipt(found)
