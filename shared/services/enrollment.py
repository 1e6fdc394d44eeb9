"""Uploads, the enroll pipeline, training and the status a person sees.

Every step that touches Face writes its intent first and checks it before acting again, so a
duplicate event, a reordered event or a crash between any two external calls neither adds a face
twice, nor gives a user two persons in one group, nor leaves a person the records do not know.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.domain import enrollment as dom
from shared.domain.enrollment import (
    TABLE_OVERRIDES,
    TABLE_STATE,
    TABLE_UPLOAD_INDEX,
    TABLE_UPLOADS,
    TABLE_USERS,
    USER_ROW,
    iso,
    parse_iso,
)
from shared.domain.erasure import TABLE_UPLOADS_BY_MINUTE, minute_key
from shared.domain.principal import Principal
from shared.domain.quality import FaceObservation, evaluate
from shared.errors import (
    FaceInvalidImage,
    LargePersonGroupExists,
    LargePersonGroupNotFound,
    LargePersonGroupNotTrained,
    PersonNotFound,
    RecordConflict,
    RecordExists,
    RequestRejected,
    TransientFailure,
)
from shared.images import TOO_LARGE, ImageRejected, limits_from, validate_image
from shared.ports import FacePort, PhotoStorePort, RecordStorePort
from shared.services.audit import AuditLog
from shared.services.consent import ConsentService
from shared.services.records import update_record
from shared.settings import Settings

log = logging.getLogger("shared.enrollment")

DETECT_ATTRIBUTES = ("headPose", "blur", "exposure", "occlusion", "mask", "qualityForRecognition")
GROUP_ROW = ("group", "active")


@dataclass(frozen=True)
class ActiveGroup:
    group_id: str
    recognition_model: str


class GroupDirectory:
    """The active LargePersonGroup, created on first need and pinned with its model in the state table."""

    def __init__(self, records: RecordStorePort, face: FacePort, settings: Settings, *, clock: Callable[[], datetime]) -> None:
        self._records = records
        self._face = face
        self._settings = settings
        self._clock = clock

    def active(self, *, create: bool = True) -> ActiveGroup | None:
        found = self._records.get(TABLE_STATE, *GROUP_ROW)
        if found is None:
            if not create:
                return None
            model = self._settings.recognition_model
            group_id = f"faceenroll-{model.replace('_', '')}-{uuid.uuid4().hex[:12]}"
            try:
                # Intent first: the row names the group before it exists, so a crash leaves a
                # row whose group is created on the next call (create is idempotent by 409).
                self._records.insert(TABLE_STATE, {"PartitionKey": GROUP_ROW[0], "RowKey": GROUP_ROW[1],
                                                   "groupId": group_id, "recognitionModel": model,
                                                   "createdAt": iso(self._clock()), "created": False})
            except RecordExists:
                pass
            found = self._records.get(TABLE_STATE, *GROUP_ROW)
            assert found is not None
        row, etag = found
        if not row.get("created"):
            try:
                self._face.create_group(row["groupId"], name="face-enrollment", recognition_model=row["recognitionModel"])
            except LargePersonGroupExists:
                pass
            row["created"] = True
            try:
                self._records.update(TABLE_STATE, row, etag=etag)
            except RecordConflict:
                pass
        return ActiveGroup(str(row["groupId"]), str(row["recognitionModel"]))

    def training_row(self) -> tuple[dict[str, Any], str] | None:
        return self._records.get(TABLE_STATE, *GROUP_ROW)

    def save(self, row: dict[str, Any], etag: str) -> str:
        return self._records.update(TABLE_STATE, row, etag=etag)


class TrainingCoordinator:
    """Coalesces trainings: a burst of photos shares one training; status is followed without sleeping.

    While a training runs, new faces only mark the group dirty; when the running training is seen
    to finish (by the next enroll, a status poll or the timer), a dirty group is trained again.
    """

    def __init__(self, groups: GroupDirectory, face: FacePort, *, clock: Callable[[], datetime], coalesce_seconds: float) -> None:
        self._groups = groups
        self._face = face
        self._clock = clock
        self._coalesce = timedelta(seconds=coalesce_seconds)

    def request(self) -> None:
        self._step(mark_dirty=True)

    def refresh(self) -> datetime | None:
        """Follows a running training; returns the start time of the last successful training."""
        return self._step(mark_dirty=False)

    def _step(self, *, mark_dirty: bool) -> datetime | None:
        for _ in range(5):
            found = self._groups.training_row()
            if found is None:
                return None
            row, etag = found
            now = self._clock()
            changed = False
            if mark_dirty and not row.get("dirty"):
                row["dirty"] = True
                changed = True
            if row.get("trainingStatus") == "running":
                status = self._face.training_status(str(row["groupId"])).status
                if status in ("succeeded", "failed"):
                    row["trainingStatus"] = status
                    if status == "succeeded":
                        row["lastSucceededStartedAt"] = row.get("trainingStartedAt")
                    else:
                        row["dirty"] = True  # train again: the faces are still untrained
                    changed = True
            started = parse_iso(row.get("trainingStartedAt"))
            may_start = started is None or now - started >= self._coalesce
            if row.get("dirty") and row.get("trainingStatus") != "running" and may_start:
                # Record the start before calling train: if the call fails the row says running,
                # and the next refresh asks Face, which answers with the truth.
                row.update({"trainingStatus": "running", "trainingStartedAt": iso(now), "dirty": False})
                try:
                    self._groups.save(row, etag)
                except RecordConflict:
                    continue
                try:
                    self._face.train(str(row["groupId"]))
                except Exception:
                    self._mark_dirty_after_failure()
                    raise
                return parse_iso(row.get("lastSucceededStartedAt"))
            if changed:
                try:
                    self._groups.save(row, etag)
                except RecordConflict:
                    continue
            return parse_iso(row.get("lastSucceededStartedAt"))
        raise TransientFailure("training state kept changing")

    def _mark_dirty_after_failure(self) -> None:
        found = self._groups.training_row()
        if found:
            row, etag = found
            row.update({"trainingStatus": "failed", "dirty": True})
            try:
                self._groups.save(row, etag)
            except RecordConflict:
                pass


def blob_name_for(session_id: str, upload_id: str) -> str:
    # Random ids only: a blob name carries no personal data.
    return f"{session_id}/{upload_id}"


class EnrollmentService:
    def __init__(self, *, records: RecordStorePort, photos: PhotoStorePort, face: FacePort, consent: ConsentService,
                 audit: AuditLog, settings: Settings, clock: Callable[[], datetime]) -> None:
        self._records = records
        self._photos = photos
        self._face = face
        self._consent = consent
        self._audit = audit
        self._settings = settings
        self._clock = clock
        self.groups = GroupDirectory(records, face, settings, clock=clock)
        self.training = TrainingCoordinator(self.groups, face, clock=clock, coalesce_seconds=settings.training_coalesce_seconds)
        self._thresholds = settings.quality

    # --- uploads -------------------------------------------------------------------------------
    def create_uploads(self, principal: Principal, count: Any) -> dict[str, Any]:
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 5:
            raise RequestRejected("count must be a whole number from 1 to 5.", status=400)
        if self._consent.current(principal.user_key) is None:
            raise RequestRejected("consent required: accept the current terms first (POST /api/consent).", status=403,
                                  code="ConsentRequired")
        user = self._user(principal.user_key)
        if user is None:
            raise RequestRejected("consent required: accept the current terms first (POST /api/consent).", status=403,
                                  code="ConsentRequired")
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
            uploads.append({"uploadId": upload_id, "url": self._photos.upload_url(blob_name, expires_on=expires),
                            "expiresOn": iso(expires)})
        self._audit.write("uploads.created", actor=principal.user_key, subject=principal.user_key,
                          sessionId=session_id, count=count)
        return {"sessionId": session_id, "uploads": uploads}

    def _user(self, user_key: str) -> dict[str, Any] | None:
        found = self._records.get(TABLE_USERS, user_key, USER_ROW)
        return found[0] if found else None

    # --- the enroll pipeline -------------------------------------------------------------------
    def process_upload(self, *, blob_name: str, content: bytes, declared_size: int | None = None) -> str:
        """Handles one BlobCreated. Returns the outcome (for logs and tests); raises only to be retried.

        ``declared_size`` is the blob's length from the trigger's metadata: a blob larger than the limit
        is refused without its content having been read (``content`` is then empty)."""
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
        # The lease (UPLOAD_PROCESSING_LEASE_SECONDS) outlasts host.json's functionTimeout: the host stops
        # any invocation by then, so a redelivery never runs while the first delivery still can.
        lease = timedelta(seconds=self._settings.upload_processing_lease_seconds)
        if upload.get("status") == dom.PROCESSING and claimed and now - claimed < lease:
            raise TransientFailure("another delivery of this upload is being processed")
        claim = uuid.uuid4().hex
        upload.update({"status": dom.PROCESSING, "claimedAt": iso(now), "claimId": claim})
        try:
            etag = self._records.update(TABLE_UPLOADS, upload, etag=etag)
        except RecordConflict as exc:
            raise TransientFailure("another delivery of this upload is being processed") from exc
        try:
            if declared_size is not None and declared_size > limits_from(self._settings).max_bytes:
                return self._reject(user_key, upload, blob_name, codes=("tooLarge",), reasons=(TOO_LARGE,))
            return self._enroll_photo(user_key, user, upload, blob_name=blob_name, content=content)
        except BaseException:
            # This delivery is over: its claim must not make the redelivery wait out the whole lease.
            self._release_claim(user_key, upload_id, claim)
            raise

    def _release_claim(self, user_key: str, upload_id: str, claim: str) -> None:
        def release(row: dict[str, Any]) -> None:
            if row.get("claimId") == claim and row.get("status") == dom.PROCESSING:
                row["claimedAt"] = None

        try:
            update_record(self._records, TABLE_UPLOADS, user_key, upload_id, release)
        except Exception:  # storage is failing too: the lease then runs out on its own
            log.warning("could not release a processing claim; it lapses with the lease")

    def _enroll_photo(self, user_key: str, user: dict[str, Any], upload: dict[str, Any], *, blob_name: str,
                      content: bytes) -> str:
        upload_id = str(upload["RowKey"])
        try:
            image = validate_image(content, limits_from(self._settings))
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
    def status(self, user_key: str) -> dict[str, Any]:
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
        body: dict[str, Any] = {
            "status": status,
            "photos": [{"uploadId": p["RowKey"], "status": p.get("status"), "reasons": list(p.get("reasons_json") or [])}
                       for p in photos],
            "storePhotos": bool(consent.store_photos) if consent else False,
            "consent": {"termsVersion": consent.terms_version, "grantedAt": consent.granted_at} if consent else None,
        }
        if user is None and status == dom.NONE:
            ledger = self._consent.ledger(user_key)
            latest = max(ledger, key=lambda e: str(e["RowKey"])) if ledger else None
            if latest is not None and latest.get("kind") == "revocation":
                body["status"] = dom.REVOKED
                body["receiptId"] = latest.get("receiptId")
        if status == dom.FAILED and user and user.get("lastError"):
            body["message"] = str(user["lastError"])
        if status == dom.REENROLL_REQUIRED:
            body["message"] = ("The face recognition model was upgraded. Please enroll again: upload new photos "
                               "(POST /api/enrollment/uploads).")
        return body

    def consent_current(self, user_key: str) -> Any:
        return self._consent.current(user_key)

    # --- admin override ------------------------------------------------------------------------
    def grant_override(self, admin: Principal, user_key: str, body: dict[str, Any]) -> dict[str, Any]:
        if not admin.is_admin:
            raise RequestRejected("Only administrators can grant a quality override.", status=403, code="Forbidden")
        reason = body.get("reason")
        hours = body.get("expiresInHours")
        if not isinstance(reason, str) or not reason.strip():
            raise RequestRejected("reason is required: say why the quality checks may be skipped.", status=400)
        if not isinstance(hours, (int, float)) or isinstance(hours, bool) or not 0 < hours <= 168:
            raise RequestRejected("expiresInHours must be a number greater than 0 and at most 168.", status=400)
        now = self._clock()
        expires = now + timedelta(hours=float(hours))
        override_id = uuid.uuid4().hex
        self._records.upsert(TABLE_OVERRIDES, {"PartitionKey": user_key, "RowKey": "override", "overrideId": override_id,
                                               "admin": admin.user_key, "reason": reason[:500], "grantedAt": iso(now),
                                               "expiresAt": iso(expires)})
        self._audit.write("quality.override.granted", actor=admin.user_key, subject=user_key, overrideId=override_id,
                          reason=reason[:500], expiresAt=iso(expires))
        return {"overrideId": override_id, "userKey": user_key, "expiresAt": iso(expires)}

    def _active_override(self, user_key: str) -> dict[str, Any] | None:
        found = self._records.get(TABLE_OVERRIDES, user_key, "override")
        if found is None:
            return None
        expires = parse_iso(found[0].get("expiresAt"))
        return found[0] if expires and expires > self._clock() else None
