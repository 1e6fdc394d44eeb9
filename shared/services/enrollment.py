"""Uploads, the enroll pipeline, training and the status a person sees.

Every step that touches Face writes its intent first and checks it before acting again, so a
duplicate event, a reordered event or a crash between any two external calls neither adds a face
twice, nor gives a user two persons in one group, nor leaves a person the records do not know.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.commands import CreateUploads, GrantOverride, ProcessUpload
from shared.domain import enrollment as dom
from shared.domain.enrollment import (
    TABLE_OVERRIDES,
    TABLE_UPLOAD_INDEX,
    TABLE_UPLOADS,
    TABLE_USERS,
    USER_ROW,
    iso,
    parse_iso,
)
from shared.domain.erasure import TABLE_UPLOADS_BY_MINUTE, minute_key
from shared.domain.quality import FaceObservation, evaluate
from shared.errors import (
    ConsentRequired,
    FaceInvalidImage,
    LargePersonGroupNotFound,
    LargePersonGroupNotTrained,
    PersonNotFound,
    RecordConflict,
    TransientFailure,
)
from shared.images import ImageRejected, validate_image
from shared.ports import FacePort, PhotoStorePort, RecordStorePort
from shared.results import ConsentInForce, EnrollmentStatus, OverrideGranted, PhotoOutcome, UploadsCreated, UploadSlot
from shared.services.audit import AuditLog
from shared.services.consent import ConsentService
from shared.services.groups import ActiveGroup, GroupDirectory, TrainingCoordinator
from shared.services.records import update_record
from shared.settings import Settings

log = logging.getLogger("shared.enrollment")

DETECT_ATTRIBUTES = ("headPose", "blur", "exposure", "occlusion", "mask", "qualityForRecognition")
GROUP_ROW = ("group", "active")
PROCESSING_LEASE = timedelta(seconds=30)


def blob_name_for(session_id: str, upload_id: str) -> str:
    # Random ids only: a blob name carries no personal data.
    return f"{session_id}/{upload_id}"


class EnrollmentService:
    def __init__(self, *, records: RecordStorePort, photos: PhotoStorePort, face: FacePort, consent: ConsentService,
                 audit: AuditLog, groups: GroupDirectory, training: TrainingCoordinator, settings: Settings,
                 clock: Callable[[], datetime]) -> None:
        self._records = records
        self._photos = photos
        self._face = face
        self._consent = consent
        self._audit = audit
        self._settings = settings
        self._clock = clock
        self.groups = groups
        self.training = training
        self._thresholds = settings.quality

    # --- uploads -------------------------------------------------------------------------------
    def create_uploads(self, command: CreateUploads) -> UploadsCreated:
        principal, count = command.principal, command.count
        if self._consent.current(principal.user_key) is None or self._user(principal.user_key) is None:
            raise ConsentRequired("consent required: accept the current terms first (POST /api/consent).")
        now = self._clock()
        expires = now + timedelta(minutes=self._settings.sas_ttl_minutes)
        session_id = uuid.uuid4().hex
        uploads = []
        for _ in range(count):
            upload_id = uuid.uuid4().hex
            blob_name = blob_name_for(session_id, upload_id)
            # The expiry index first (purge_timer finds every slot by its creation minute), then
            # the index row: an upload that arrives is always recognised as ours.
            self._records.insert(TABLE_UPLOADS_BY_MINUTE, {"PartitionKey": minute_key(now), "RowKey": upload_id,
                                                           "userKey": principal.user_key, "createdAt": iso(now)})
            self._records.insert(TABLE_UPLOAD_INDEX, {"PartitionKey": upload_id, "RowKey": "u",
                                                      "userKey": principal.user_key, "sessionId": session_id,
                                                      "createdAt": iso(now)})
            self._records.insert(TABLE_UPLOADS, {"PartitionKey": principal.user_key, "RowKey": upload_id,
                                                 "sessionId": session_id, "blobName": blob_name,
                                                 "status": dom.AWAITING, "createdAt": iso(now),
                                                 "expiresOn": iso(expires)})
            uploads.append(UploadSlot(upload_id, self._photos.upload_url(blob_name, expires_on=expires), iso(expires)))
        self._audit.write("uploads.created", actor=principal.user_key, subject=principal.user_key,
                          sessionId=session_id, count=count)
        return UploadsCreated(session_id, tuple(uploads))

    def _user(self, user_key: str) -> dict[str, Any] | None:
        found = self._records.get(TABLE_USERS, user_key, USER_ROW)
        return found[0] if found else None

    # --- the enroll pipeline -------------------------------------------------------------------
    def process_upload(self, command: ProcessUpload) -> str:
        """Handles one BlobCreated. Returns the outcome (for logs and tests); raises only to be retried."""
        blob_name, content = command.blob_name, command.content
        session_id, _, upload_id = blob_name.partition("/")
        index = self._records.get(TABLE_UPLOAD_INDEX, upload_id, "u") if upload_id else None
        if index is None or index[0].get("sessionId") != session_id:
            self._photos.delete_upload(blob_name)
            self._audit.write("upload.unknown", actor="system", blobName=blob_name[:200])
            return "unknown"
        user_key = str(index[0]["userKey"])
        found = self._records.get(TABLE_UPLOADS, user_key, upload_id)
        user = self._user(user_key)
        if found is None or user is None:
            # Erased meanwhile (revocation deletes upload rows): the blob must not survive.
            self._photos.delete_upload(blob_name)
            self._audit.write("upload.discarded", actor="system", subject=user_key, reason="no upload record")
            return "discarded"
        upload, etag = found
        if upload.get("status") in dom.FINAL_PHOTO_STATUSES:
            self._dispose(user, upload, content=None)
            return "duplicate"
        consent = self._consent.current(user_key)
        if consent is None:
            self._photos.delete_upload(blob_name)
            self._finish(user_key, upload_id, dom.DISCARDED, codes=("consentWithdrawn",),
                         reasons=("This photo was discarded because consent was withdrawn.",))
            self._audit.write("upload.discarded", actor="system", subject=user_key, reason="no current consent")
            return "discarded"
        # Claim the upload (ETag) with a lease: a duplicate delivery while another is at work backs
        # off and is redelivered; a claim left by a crashed delivery expires and is taken over.
        now = self._clock()
        claimed = parse_iso(upload.get("claimedAt"))
        if upload.get("status") == dom.PROCESSING and claimed and now - claimed < PROCESSING_LEASE:
            raise TransientFailure("another delivery of this upload is being processed")
        upload.update({"status": dom.PROCESSING, "claimedAt": iso(now)})
        try:
            etag = self._records.update(TABLE_UPLOADS, upload, etag=etag)
        except RecordConflict as exc:
            raise TransientFailure("another delivery of this upload is being processed") from exc
        return self._enroll_photo(user_key, user, upload, blob_name=blob_name, content=content)

    def _enroll_photo(self, user_key: str, user: dict[str, Any], upload: dict[str, Any], *, blob_name: str,
                      content: bytes) -> str:
        upload_id = str(upload["RowKey"])
        try:
            image = validate_image(content)
        except ImageRejected as exc:
            return self._reject(user_key, upload, blob_name, codes=(exc.code,), reasons=(exc.reason,))
        group = self.groups.active()
        assert group is not None
        try:
            faces = self._face.detect(image.data, attributes=DETECT_ATTRIBUTES, recognition_model=group.recognition_model,
                                      return_face_id=False)
        except FaceInvalidImage:
            return self._reject(user_key, upload, blob_name, codes=("notAnImage",),
                                reasons=("The file is not a photo we can read; upload a JPEG, PNG, BMP or GIF.",))
        observations = [FaceObservation.from_face_attributes(
            {"width": f.rectangle.width, "height": f.rectangle.height}, f.attributes) for f in faces]
        override = self._active_override(user_key)
        verdict = evaluate(observations, self._thresholds, override=override is not None)
        if not verdict.accepted:
            return self._reject(user_key, upload, blob_name, codes=verdict.codes, reasons=verdict.reasons)
        if verdict.overridden:
            self._audit.write("quality.overridden", actor=str(override.get("admin") if override else "admin"),
                              subject=user_key, uploadId=upload_id, codes=list(verdict.codes))
        person_id = self._ensure_person(user_key, group)
        rect = faces[0].rectangle
        self._add_face_once(user_key, upload, person_id, group, image.data, rect)
        current = self._mark_face_added(user_key)
        if current is None or self._consent.current(user_key) is None:
            # Revoked while this photo was being added: revocation wins. The erasure has deleted
            # (or will delete) the person; this delivery must not keep the photo it still holds.
            try:
                self._face.delete_person(group.group_id, person_id)
            except PersonNotFound:
                pass
            self._photos.delete_upload(blob_name)
            self._audit.write("upload.discarded", actor="system", subject=user_key, reason="revoked during enrollment")
            return "discarded"
        self.training.request()
        kept = self._dispose(current, upload, content=image.data)
        self._finish(user_key, upload_id, dom.ACCEPTED, kept=kept)
        log.info("upload %s accepted", upload_id)
        return "accepted"

    def _reject(self, user_key: str, upload: dict[str, Any], blob_name: str, *, codes: Any, reasons: Any) -> str:
        self._photos.delete_upload(blob_name)
        self._finish(user_key, str(upload["RowKey"]), dom.REJECTED, codes=tuple(codes), reasons=tuple(reasons))
        log.info("upload %s rejected: %s", upload["RowKey"], ",".join(codes))
        return "rejected"

    def _finish(self, user_key: str, upload_id: str, status: str, *, codes: tuple[str, ...] = (),
                reasons: tuple[str, ...] = (), kept: bool = False) -> None:
        row = update_record(self._records, TABLE_UPLOADS, user_key, upload_id, lambda r: r.update({
            "status": status, "codes_json": list(codes), "reasons_json": list(reasons),
            "processedAt": iso(self._clock()), "kept": kept}))
        created = parse_iso(row.get("createdAt")) if row else None
        if created is not None and status in dom.FINAL_PHOTO_STATUSES:
            self._records.delete(TABLE_UPLOADS_BY_MINUTE, minute_key(created), upload_id)  # no longer due

    def _dispose(self, user: dict[str, Any], upload: dict[str, Any], *, content: bytes | None) -> bool:
        """After processing: keep the photo only with storePhotos consent; the upload blob goes either way."""
        blob_name = str(upload["blobName"])
        kept = False
        if content is not None and user.get("storePhotos") and user.get("keptToken"):
            self._photos.keep(f"{user['keptToken']}/{upload['RowKey']}.jpg", content)
            kept = True
        self._photos.delete_upload(blob_name)
        return kept

    def _ensure_person(self, user_key: str, group: ActiveGroup) -> str:
        for _ in range(5):
            found = self._records.get(TABLE_USERS, user_key, USER_ROW)
            if found is None:
                raise TransientFailure("user record vanished")
            user, etag = found
            if user.get("personId") and user.get("groupId") == group.group_id:
                return str(user["personId"])
            if user.get("newPersonId") and user.get("newGroupId") == group.group_id:
                # Re-enrolled into this group by a model update: it becomes the user's person. The
                # old one stays named until its superseded group is deleted, so erasure finds it.
                user.update({"previousGroupId": user.get("groupId"), "previousPersonId": user.get("personId"),
                             "groupId": user["newGroupId"], "personId": user["newPersonId"],
                             "newGroupId": None, "newPersonId": None})
                try:
                    self._records.update(TABLE_USERS, user, etag=etag)
                except RecordConflict:
                    continue
                return str(user["personId"])
            if user.get("personAttempt"):
                # A previous attempt may have created a person and crashed before recording it.
                # It has no faces, so it can never be identified; purge_timer deletes it by its attempt id.
                abandoned = list(user.get("abandonedAttempts_json") or [])
                abandoned.append(user["personAttempt"])
                user["abandonedAttempts_json"] = abandoned
            attempt = uuid.uuid4().hex
            user.update({"personAttempt": attempt, "groupId": group.group_id})
            try:
                etag = self._records.update(TABLE_USERS, user, etag=etag)
            except RecordConflict:
                continue
            person_id = self._face.create_person(group.group_id, name=dom.person_label(attempt), user_data=attempt)
            user.update({"personId": person_id, "personAttempt": None})
            try:
                self._records.update(TABLE_USERS, user, etag=etag)
            except RecordConflict:
                # Someone else changed the user meanwhile (a concurrent upload won the race): drop ours.
                self._face.delete_person(group.group_id, person_id)
                continue
            self._audit.write("person.created", actor="system", subject=user_key)
            return person_id
        raise TransientFailure("could not record the person")

    def _add_face_once(self, user_key: str, upload: dict[str, Any], person_id: str, group: ActiveGroup,
                       data: bytes, rect: Any) -> None:
        upload_id = str(upload["RowKey"])
        if upload.get("persistedFaceId"):
            return
        # A crash after add_face and before recording it: the face is there, tagged with this upload.
        try:
            person = self._face.get_person(group.group_id, person_id)
        except PersonNotFound as exc:
            self._forget_person(user_key, person_id)
            raise TransientFailure("the recorded person no longer exists; a new one will be created") from exc
        for face_id in person.persisted_face_ids:
            if self._face_user_data(group.group_id, person_id, face_id) == upload_id:
                self._record_face(user_key, upload_id, face_id)
                return
        face_id = self._face.add_face(group.group_id, person_id, data, user_data=upload_id, target_face=rect)
        self._record_face(user_key, upload_id, face_id)

    def _face_user_data(self, group_id: str, person_id: str, face_id: str) -> str | None:
        result = self._face.get_face(group_id, person_id, face_id)
        return str(result["userData"]) if result.get("userData") else None

    def _record_face(self, user_key: str, upload_id: str, face_id: str) -> None:
        update_record(self._records, TABLE_UPLOADS, user_key, upload_id, lambda r: r.update(persistedFaceId=face_id))

    def _forget_person(self, user_key: str, person_id: str) -> None:
        found = self._records.get(TABLE_USERS, user_key, USER_ROW)
        if found and found[0].get("personId") == person_id:
            user, etag = found
            user.update({"personId": None, "faceAddedAt": None})
            try:
                self._records.update(TABLE_USERS, user, etag=etag)
            except RecordConflict:
                pass

    def _mark_face_added(self, user_key: str) -> dict[str, Any] | None:
        return update_record(self._records, TABLE_USERS, user_key, USER_ROW, lambda u: u.update(
            faceAddedAt=iso(self._clock()), reenrollRequired=False, lastError=None))

    # --- status ------------------------------------------------------------------------------
    def status(self, user_key: str) -> EnrollmentStatus:
        user = self._user(user_key)
        photos = sorted(self._records.partition(TABLE_UPLOADS, user_key), key=lambda p: str(p.get("createdAt")))
        consent = self._consent.current(user_key)
        trained_through = None
        active = self.groups.active(create=False)
        if user and user.get("personId") and active and user.get("groupId") == active.group_id:
            try:
                trained_through = self.training.refresh()
            except (LargePersonGroupNotFound, LargePersonGroupNotTrained):
                trained_through = None
        status = dom.overall_status(user, photos, has_consent=consent is not None, last_trained_through=trained_through,
                                    active_group_id=active.group_id if active else None)
        receipt_id: str | None = None
        message: str | None = None
        if user is None and status == dom.NONE:
            ledger = self._consent.ledger(user_key)
            latest = max(ledger, key=lambda e: str(e["RowKey"])) if ledger else None
            if latest is not None and latest.get("kind") == "revocation":
                status = dom.REVOKED
                receipt_id = str(latest.get("receiptId"))
        if status == dom.FAILED and user and user.get("lastError"):
            message = str(user["lastError"])
        if status == dom.REENROLL_REQUIRED:
            message = ("The face recognition model was upgraded. Please enroll again: upload new photos "
                       "(POST /api/enrollment/uploads).")
        return EnrollmentStatus(
            status=status,
            photos=tuple(PhotoOutcome(str(p["RowKey"]), str(p.get("status")), tuple(p.get("reasons_json") or ()))
                         for p in photos),
            store_photos=bool(consent.store_photos) if consent else False,
            consent=ConsentInForce(consent.terms_version, consent.granted_at) if consent else None,
            receipt_id=receipt_id, message=message)

    # --- admin override ------------------------------------------------------------------------
    def grant_override(self, command: GrantOverride) -> OverrideGranted:
        now = self._clock()
        expires = now + timedelta(hours=command.expires_in_hours)
        override_id = uuid.uuid4().hex
        self._records.upsert(TABLE_OVERRIDES, {"PartitionKey": command.user_key, "RowKey": "override",
                                               "overrideId": override_id, "admin": command.admin.user_key,
                                               "reason": command.reason, "grantedAt": iso(now), "expiresAt": iso(expires)})
        self._audit.write("quality.override.granted", actor=command.admin.user_key, subject=command.user_key,
                          overrideId=override_id, reason=command.reason, expiresAt=iso(expires))
        return OverrideGranted(override_id, command.user_key, iso(expires))

    def _active_override(self, user_key: str) -> dict[str, Any] | None:
        found = self._records.get(TABLE_OVERRIDES, user_key, "override")
        if found is None:
            return None
        expires = parse_iso(found[0].get("expiresAt"))
        return found[0] if expires and expires > self._clock() else None
