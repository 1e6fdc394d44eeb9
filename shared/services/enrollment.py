"""Uploads, the enroll pipeline and the status a person sees.

Every step that touches Face writes its intent first and checks it before acting again, so a
duplicate event, a reordered event or a crash between any two external calls neither adds a face
twice, nor gives a user two persons in one group, nor leaves a person the records do not know.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from shared.adapters.repositories import Repositories
from shared.adapters.retention_policy import RetentionPolicy, load_policy
from shared.commands import CreateUploads, GrantOverride, ProcessUpload
from shared.domain import enrollment as dom
from shared.domain.enrollment import blob_name_for, iso, kept_name_for, latest_entry, parse_iso
from shared.domain.erasure import minute_key
from shared.domain.quality import FaceObservation, evaluate
from shared.domain.records import Heartbeat, Override, Upload, UploadDue, UploadIndex, User
from shared.domain.reenrollment import photo_tag
from shared.errors import (
    Conflict,
    ConsentRequired,
    FaceInvalidImage,
    FaceNotFound,
    LargePersonGroupNotFound,
    LargePersonGroupNotTrained,
    LimitedAccessNotApproved,
    PersonNotFound,
    RecordConflict,
    TransientFailure,
)
from shared.images import TOO_LARGE, ImageRejected, ValidatedImage
from shared.ports import FacePort, FaceRectangle, ImageCheckPort, PhotoStorePort
from shared.results import (
    ConsentInForce,
    EnrollmentStatus,
    OverrideGranted,
    PhotoOutcome,
    Replacement,
    UploadsCreated,
    UploadSlot,
)
from shared.services.audit import AuditLog
from shared.services.consent import ConsentService
from shared.services.events import EventOutbox
from shared.services.groups import PRIMARY, ActiveGroup, GroupDirectory, PersonFactory, TrainingCoordinator
from shared.services.quotas import QuotaService
from shared.settings import Settings

log = logging.getLogger("shared.enrollment")

DETECT_ATTRIBUTES = ("headPose", "blur", "exposure", "occlusion", "mask", "qualityForRecognition")
#: The heartbeat readiness reads: when an Event Grid BlobCreated last reached the enroll pipeline.
BLOB_CREATED_HEARTBEAT = "blobCreated"
#: What a person sees when the Face account is not approved for Limited Access (403 UnsupportedFeature).
SERVICE_NOT_APPROVED = ("Face sign-in is not enabled for this organisation yet, so your photo was not used and has "
                        "been deleted. Your consent stays in place: please try again later.")
REENROLL_MESSAGE = ("The face recognition model was upgraded. Please enroll again: upload new photos "
                    "(POST /api/enrollment/uploads).")
ERASURE_PENDING_MESSAGE = ("Your consent is withdrawn and your data is being erased. Your deletion receipt "
                           "will appear here when the erasure is complete.")


class EnrollmentService:
    def __init__(self, *, repos: Repositories, photos: PhotoStorePort, face: FacePort, consent: ConsentService,
                 audit: AuditLog, groups: GroupDirectory, training: TrainingCoordinator, persons: PersonFactory,
                 settings: Settings, clock: Callable[[], datetime], events: EventOutbox, images: ImageCheckPort,
                 quotas: QuotaService | None = None, policy: RetentionPolicy | None = None) -> None:
        self._quotas = quotas or QuotaService(repos=repos, settings=settings, clock=clock)
        self._policy = policy or load_policy()
        self._repos = repos
        self._events = events
        self._images = images
        self._photos = photos
        self._face = face
        self._consent = consent
        self._audit = audit
        self._groups = groups
        self._training = training
        self._persons = persons
        self._settings = settings
        self._clock = clock

    # --- uploads -------------------------------------------------------------------------------
    def create_uploads(self, command: CreateUploads) -> UploadsCreated:
        user_key = command.principal.user_key
        if self._consent.current(user_key) is None or self._repos.users.get(user_key) is None:
            raise ConsentRequired("consent required: accept the current terms first (POST /api/consent).")
        # Costs bounded before work starts: slots held open and sessions per day, per user.
        self._quotas.charge_upload_session(user_key, open_slots=self._quotas.open_slots(user_key),
                                           requested=command.count)
        now = self._clock()
        expires = now + timedelta(minutes=self._settings.sas_ttl_minutes)
        session_id = uuid.uuid4().hex
        if command.replace:
            self._start_replacement(user_key, session_id, now)
        slots = []
        for _ in range(command.count):
            upload_id = uuid.uuid4().hex
            blob_name = blob_name_for(session_id, upload_id)
            # The expiry index first (purge_timer finds every slot by its creation minute), then
            # the index row: an upload that arrives is always recognised as ours.
            self._repos.uploads_due.insert(UploadDue(minute=minute_key(now), upload_id=upload_id, user_key=user_key,
                                                     created_at=iso(now), session_id=session_id, settled=True))
            self._repos.upload_index.insert(UploadIndex(upload_id=upload_id, user_key=user_key, session_id=session_id,
                                                        created_at=iso(now)))
            self._repos.uploads.insert(Upload(user_key=user_key, upload_id=upload_id, session_id=session_id,
                                              blob_name=blob_name, status=dom.AWAITING, created_at=iso(now),
                                              expires_on=iso(expires)))
            slots.append(UploadSlot(upload_id, self._photos.upload_url(blob_name, expires_on=expires), iso(expires)))
        self._audit.write("uploads.created", actor=user_key, subject=user_key, sessionId=session_id, count=command.count,
                          replace=command.replace)
        return UploadsCreated(session_id, tuple(slots))

    # --- re-enroll at any time: replacing the photos ----------------------------------------------
    def _start_replacement(self, user_key: str, session_id: str, now: datetime) -> None:
        """Marks the session as the replacement before any slot exists, so every photo of it is known as new.

        The old faces and kept photos stay until the new faces are in and the group is trained with them
        (``finish_replacement``): the user can open doors throughout. A later replacement supersedes it.
        """
        lock = self._repos.reenroll_lock.get()
        if lock is not None and lock.active:
            # A model upgrade copies the kept photos into a new group meanwhile; replacing them at once
            # would race it. The upgrade ends within hours; the user is asked to try then.
            raise Conflict("The face recognition model is being upgraded; replace your photos after it completes.",
                           code="ReenrollmentInProgress")

        def mark(user: User) -> None:
            if not (user.person_id and user.face_added_at):
                raise Conflict("There is no enrollment to replace yet: upload photos without replace.",
                               code="NothingToReplace")
            user.replace_session, user.replace_started_at = session_id, iso(now)

        if self._repos.users.mutate(mark, user_key) is None:
            raise ConsentRequired("consent required: accept the current terms first (POST /api/consent).")
        self._audit.write("replacement.started", actor=user_key, subject=user_key, sessionId=session_id)

    def replacement_of(self, user: User | None) -> Replacement | None:
        if user is None or not user.replace_session:
            return None
        return Replacement(user.replace_session, user.replace_started_at)

    def finish_replacement(self, user_key: str) -> str:
        """Completes a replacement once it can: ``none`` (no replacement), ``waiting`` (photos in flight or
        the group not yet trained with the new faces), ``abandoned`` (no new photo was accepted: the old ones
        stay) or ``replaced``. Every step is idempotent and the marker goes last, so a crash anywhere is
        completed by the next call (GET /api/enrollment, GET /api/me, or purge_timer's sweep)."""
        user = self._repos.users.get(user_key)
        if user is None or not user.replace_session:
            return "none"
        session, started = user.replace_session, parse_iso(user.replace_started_at)
        uploads = self._repos.uploads.partition(user_key)
        if self._complete_stuck(user, uploads):
            uploads = self._repos.uploads.partition(user_key)

        def is_new(u: Upload) -> bool:
            created = parse_iso(u.created_at)
            return u.session_id == session or (started is not None and created is not None and created >= started)

        new = [u for u in uploads if is_new(u)]
        if any(u.status in dom.PHOTO_IN_FLIGHT for u in new):
            return "waiting"
        accepted = [u for u in new if u.status == dom.ACCEPTED and u.persisted_face_id]
        if not accepted:
            max_age = timedelta(minutes=self._settings.upload_max_age_minutes)
            if not new and started is not None and self._clock() - started < max_age:
                return "waiting"  # slots still being created (or their photos not yet uploaded)
            self._end_replacement(user_key, session, "replacement.abandoned", reason="no new photo was accepted")
            return "abandoned"
        active = self._groups.active(create=False)
        try:
            trained_through = self._training.refresh() if active and user.group_id == active.group_id else None
        except (LargePersonGroupNotFound, LargePersonGroupNotTrained):
            trained_through = None
        face_added = parse_iso(user.face_added_at)
        if trained_through is None or face_added is None or face_added > trained_through:
            return "waiting"  # only when the group recognises the new faces do the old ones go
        keep = {u.upload_id for u in accepted}
        tags = keep | ({photo_tag(kept_name_for(user.kept_token, k)) for k in keep} if user.kept_token else set())
        faces = self._delete_old_faces(user, tags)
        photos = 0
        if user.kept_token:
            for name in self._photos.list_kept(f"{user.kept_token}/"):
                if name.split("/", 1)[-1].removesuffix(".jpg") not in keep:
                    photos += int(self._photos.delete_kept(name))

        def replaced(u: Upload) -> None:
            u.status, u.kept = dom.REPLACED, False

        for u in uploads:
            if not is_new(u) and u.status == dom.ACCEPTED:
                self._repos.uploads.mutate(replaced, user_key, u.upload_id)
        self._training.request()  # the trained model forgets the deleted faces at the next training
        # The door systems' event, before the marker (the session cleared): a crash in between is completed
        # by the next call, which queues the same event (same id) again.
        self._events.user_replaced(user_key, session_id=session)
        self._end_replacement(user_key, session, "replacement.completed", facesDeleted=faces, keptPhotosDeleted=photos,
                              newPhotos=len(accepted))
        return "replaced"

    def _complete_stuck(self, user: User, uploads: list[Upload]) -> bool:
        """An upload whose face went in and whose blob is gone, but whose record still says processing: the
        delivery died (or failed) between deleting the blob and recording the outcome, and no event will come
        again (the blob is gone). Its face is in Face, so it is recorded as accepted. Returns whether any was."""
        now, done = self._clock(), False
        lease = timedelta(seconds=self._settings.upload_processing_lease_seconds)
        for upload in uploads:
            claimed = parse_iso(upload.claimed_at)
            # The delivery is over when its lease has run out (the host died) or when it released its claim
            # (it raised: ``_release_claim`` clears ``claimed_at`` and leaves the status processing).
            if (upload.status != dom.PROCESSING or not upload.persisted_face_id
                    or (claimed is not None and now - claimed < lease)
                    or upload.blob_name in self._photos.list_uploads(upload.blob_name)):
                continue
            kept = bool(user.kept_token) and kept_name_for(str(user.kept_token), upload.upload_id) in self._photos.list_kept(
                f"{user.kept_token}/")
            self._finish(upload, dom.ACCEPTED, kept=kept)
            done = True
        if done:
            self._training.request()  # the delivery may have died before asking for it
        return done

    def _delete_old_faces(self, user: User, keep: set[str]) -> int:
        """Every face of the user's persons (any group) not from the new photos: its userData is the upload id,
        or for a face a model upgrade copied from a kept photo, that photo's tag."""
        deleted = 0
        for group_id, person_id in user.persons():
            try:
                person = self._face.get_person(group_id, person_id)
            except FaceNotFound:
                continue
            for face_id in person.persisted_face_ids:
                try:
                    if str(self._face.get_face(group_id, person_id, face_id).get("userData")) in keep:
                        continue
                    self._face.delete_face(group_id, person_id, face_id)
                    deleted += 1
                except FaceNotFound:
                    continue
        return deleted

    def _end_replacement(self, user_key: str, session: str, action: str, **details: object) -> None:
        def clear(user: User) -> None:
            if user.replace_session == session:
                user.replace_session, user.replace_started_at = None, None

        self._repos.users.mutate(clear, user_key)
        self._audit.write(action, actor="system", subject=user_key, sessionId=session, **details)

    # --- the enroll pipeline -------------------------------------------------------------------
    def process_upload(self, command: ProcessUpload) -> str:
        """Handles one BlobCreated. Returns the outcome (for logs and tests); raises only to be retried."""
        blob_name = command.blob_name
        # One upserted row per event, before anything else: readiness reports when Event Grid last delivered.
        # Not swallowed on failure: storage failing here fails the next read too, and the event is redelivered.
        self._repos.heartbeats.upsert(Heartbeat(name=BLOB_CREATED_HEARTBEAT, at=iso(self._clock())))
        session_id, _, upload_id = blob_name.partition("/")
        index = self._repos.upload_index.get(upload_id) if upload_id else None
        if index is None or index.session_id != session_id:
            self._photos.delete_upload(blob_name)
            self._audit.write("upload.unknown", actor="system", blobName=blob_name[:200])
            return "unknown"
        user_key = index.user_key
        upload = self._repos.uploads.get(user_key, upload_id)
        user = self._repos.users.get(user_key)
        if upload is None or user is None:
            # Erased meanwhile (revocation deletes upload rows): the blob must not survive.
            self._photos.delete_upload(blob_name)
            self._audit.write("upload.discarded", actor="system", subject=user_key, reason="no upload record")
            return "discarded"
        if upload.status in dom.FINAL_PHOTO_STATUSES:
            self._dispose(user, upload, content=None)
            return "duplicate"
        if self._consent.current(user_key) is None:
            self._photos.delete_upload(blob_name)
            self._finish(upload, dom.DISCARDED, codes=("consentWithdrawn",),
                         reasons=("This photo was discarded because consent was withdrawn.",))
            self._audit.write("upload.discarded", actor="system", subject=user_key, reason="no current consent")
            return "discarded"
        # Claim the upload (ETag) with a lease: a duplicate delivery while another is at work backs
        # off and is redelivered; a claim left by a crashed delivery expires and is taken over.
        now = self._clock()
        claimed = parse_iso(upload.claimed_at)
        # The lease (UPLOAD_PROCESSING_LEASE_SECONDS) outlasts host.json's functionTimeout: the host stops
        # any invocation by then, so a redelivery never runs while the first delivery still can.
        lease = timedelta(seconds=self._settings.upload_processing_lease_seconds)
        if upload.status == dom.PROCESSING and claimed and now - claimed < lease:
            raise TransientFailure("another delivery of this upload is being processed")
        claim = uuid.uuid4().hex
        upload.status, upload.claimed_at, upload.claim_id = dom.PROCESSING, iso(now), claim
        try:
            self._repos.uploads.update(upload)
        except RecordConflict as exc:
            raise TransientFailure("another delivery of this upload is being processed") from exc
        try:
            if command.declared_size is not None and command.declared_size > self._images.max_bytes:
                return self._reject(upload, codes=("tooLarge",), reasons=(TOO_LARGE,))
            return self._enroll_photo(upload, content=command.content)
        except BaseException:
            # This delivery is over: its claim must not make the redelivery wait out the whole lease.
            self._release_claim(upload.user_key, upload.upload_id, claim)
            raise

    def _release_claim(self, user_key: str, upload_id: str, claim: str) -> None:
        def release(row: Upload) -> None:
            if row.claim_id == claim and row.status == dom.PROCESSING:
                row.claimed_at = None

        try:
            self._repos.uploads.mutate(release, user_key, upload_id)
        except Exception:  # storage is failing too: the lease then runs out on its own
            log.warning("could not release a processing claim; it lapses with the lease")

    def _enroll_photo(self, upload: Upload, *, content: bytes) -> str:
        user_key = upload.user_key
        try:
            image = self._images.validate(content)
        except ImageRejected as exc:
            return self._reject(upload, codes=(exc.code,), reasons=(exc.reason,))
        try:
            added = self._add_to_group(upload, image)
        except LimitedAccessNotApproved:
            return self._not_approved(upload)
        if isinstance(added, str):
            return added  # rejected
        group, person_id = added
        current = self._repos.users.mutate(self._face_added, user_key)
        if current is None or self._consent.current(user_key) is None:
            return self._undo(upload, group.group_id, person_id, kept=None)
        kept_name = self._keep(current, upload, content=image.data)
        # Revocation wins after every step that keeps data: the erasure may have read the stores
        # between the check above and the copy to kept photos.
        if self._consent.current(user_key) is None or self._repos.users.get(user_key) is None:
            return self._undo(upload, group.group_id, person_id, kept=kept_name)
        # The door systems' event, before the upload blob goes and the upload is marked accepted (the
        # step's completion marker): a crash before the blob is deleted redelivers the upload, which
        # queues the same event again (one per enrollment attempt, not per photo); once the blob is
        # gone the event is already queued (the stuck-upload completion needs no event of its own).
        self._events.user_enrolled(user_key, attempt=current.person_attempt or "")
        # Training is asked for before the blob goes: if asking fails (Face down), this delivery fails with
        # the blob still there, and the retry (which needs the blob) finds the face by its tag and ends the job.
        self._training.request()
        self._photos.delete_upload(upload.blob_name)
        self._finish(upload, dom.ACCEPTED, kept=kept_name is not None)
        log.info("upload accepted")  # no upload id: it names a blob of one person (the invocation id correlates)
        return "accepted"

    def _add_to_group(self, upload: Upload, image: ValidatedImage) -> tuple[ActiveGroup, str] | str:
        """Up to and including add-face: the steps that need Face's Limited Access (the group, the person,
        the face). Returns the group and person, or the outcome when the photo was rejected."""
        user_key = upload.user_key
        group = self._groups.active()
        assert group is not None
        try:
            faces = self._face.detect(image.data, attributes=DETECT_ATTRIBUTES, recognition_model=group.recognition_model,
                                      return_face_id=False)
        except FaceInvalidImage:
            return self._reject(upload, codes=("notAnImage",),
                                reasons=("The file is not a photo we can read; upload a JPEG, PNG, BMP or GIF.",))
        observations = [FaceObservation.from_face_attributes(
            {"width": f.rectangle.width, "height": f.rectangle.height}, f.attributes) for f in faces]
        override = self._active_override(user_key)
        verdict = evaluate(observations, self._settings.quality, override=override is not None)
        if not verdict.accepted:
            return self._reject(upload, codes=verdict.codes, reasons=verdict.reasons)
        if verdict.overridden:
            self._audit.write("quality.overridden", actor=override.admin if override else "admin",
                              subject=user_key, uploadId=upload.upload_id, codes=list(verdict.codes))
        person_id = self._ensure_person(user_key, group)
        self._add_face_once(upload, person_id, group, image.data, faces[0].rectangle)
        return group, person_id

    def _not_approved(self, upload: Upload) -> str:
        """Face refused a Limited Access call (403 UnsupportedFeature): no retry can succeed until Microsoft
        approves the subscription, so the photo gets a final status that says so, and is not kept. The consent
        and any person already recorded stay (an erasure finds the person); the user uploads again later."""
        log.warning("Face refused a Limited Access operation (403 UnsupportedFeature): this subscription is not "
                    "approved for identification (https://aka.ms/facerecognition). See GET /api/admin/readiness.")
        return self._reject(upload, codes=("serviceNotApproved",), reasons=(SERVICE_NOT_APPROVED,))

    def _undo(self, upload: Upload, group_id: str, person_id: str, *, kept: str | None) -> str:
        """Revoked while this photo was being enrolled: revocation wins. The erasure has deleted (or will
        delete) the person; this delivery must not keep anything it still holds."""
        self._persons.forget(upload.user_key, group_id, person_id)
        if kept is not None:
            self._photos.delete_kept(kept)
        self._photos.delete_upload(upload.blob_name)
        self._audit.write("upload.discarded", actor="system", subject=upload.user_key, reason="revoked during enrollment")
        return "discarded"

    def _keep(self, user: User, upload: Upload, *, content: bytes) -> str | None:
        """Keeps the photo with storePhotos consent; returns its name."""
        if user.store_photos and user.kept_token:
            name = kept_name_for(user.kept_token, upload.upload_id)
            self._photos.keep(name, content)
            return name
        return None

    def _face_added(self, user: User) -> None:
        user.face_added_at, user.reenroll_required, user.last_error = iso(self._clock()), False, None

    def _reject(self, upload: Upload, *, codes: tuple[str, ...], reasons: tuple[str, ...]) -> str:
        self._photos.delete_upload(upload.blob_name)
        self._finish(upload, dom.REJECTED, codes=codes, reasons=reasons)
        log.info("upload rejected: %s", ",".join(codes))
        return "rejected"

    def _finish(self, upload: Upload, status: str, *, codes: tuple[str, ...] = (), reasons: tuple[str, ...] = (),
                kept: bool = False) -> None:
        def change(u: Upload) -> None:
            u.status, u.codes, u.reasons, u.processed_at, u.kept = (status, list(codes), list(reasons),
                                                                      iso(self._clock()), kept)

        created = parse_iso(upload.created_at)
        final = status in dom.FINAL_PHOTO_STATUSES
        if final and created is not None:
            # purge_timer acts on a settled row without reading the record: unsettled before the final
            # status is written, so a crash before the row goes leaves it to be confirmed, not acted on.
            self._repos.uploads_due.replace_if_present(UploadDue(
                minute=minute_key(created), upload_id=upload.upload_id, user_key=upload.user_key,
                created_at=upload.created_at, session_id=upload.session_id, settled=False))
        done = self._repos.uploads.mutate(change, upload.user_key, upload.upload_id)
        if final and created is not None and done is not None:
            self._repos.uploads_due.delete(minute_key(created), upload.upload_id)  # no longer due

    def _dispose(self, user: User, upload: Upload, *, content: bytes | None) -> bool:
        """After processing: keep the photo only with storePhotos consent; the upload blob goes either way."""
        kept = False
        if content is not None and user.store_photos and user.kept_token:
            self._photos.keep(kept_name_for(user.kept_token, upload.upload_id), content)
            kept = True
        self._photos.delete_upload(upload.blob_name)
        return kept

    def _ensure_person(self, user_key: str, group: ActiveGroup) -> str:
        def reuse(user: User) -> tuple[str | None, bool]:
            if user.person_id and user.group_id == group.group_id:
                return user.person_id, False
            if user.new_person_id and user.new_group_id == group.group_id:
                # Re-enrolled into this group by a model update: it becomes the user's person. The
                # old one stays named until its superseded group is deleted, so erasure finds it.
                user.previous_group_id, user.previous_person_id = user.group_id, user.person_id
                user.group_id, user.person_id = user.new_group_id, user.new_person_id
                user.new_group_id, user.new_person_id = None, None
                return user.person_id, True
            return None, False

        made = self._persons.ensure(user_key, group.group_id, slot=PRIMARY, reuse=reuse)
        if made is None:
            raise TransientFailure("user record vanished")
        person_id, created = made
        if created:
            self._audit.write("person.created", actor="system", subject=user_key)
        return person_id

    def _add_face_once(self, upload: Upload, person_id: str, group: ActiveGroup, data: bytes,
                       rect: FaceRectangle) -> None:
        if upload.persisted_face_id:
            return
        # A crash after add_face and before recording it: the face is there, tagged with this upload.
        try:
            person = self._face.get_person(group.group_id, person_id)
        except PersonNotFound as exc:
            self._forget_person(upload.user_key, group.group_id, person_id)
            raise TransientFailure("the recorded person no longer exists; a new one will be created") from exc
        try:
            for face_id in person.persisted_face_ids:
                if self._face.get_face(group.group_id, person_id, face_id).get("userData") == upload.upload_id:
                    self._record_face(upload, face_id)
                    return
            face_id = self._face.add_face(group.group_id, person_id, data, user_data=upload.upload_id, target_face=rect)
        except PersonNotFound as exc:  # deleted meanwhile (an erasure): the redelivery decides again
            self._forget_person(upload.user_key, group.group_id, person_id)
            raise TransientFailure("the person was deleted while a face was being added") from exc
        self._record_face(upload, face_id)

    def _record_face(self, upload: Upload, face_id: str) -> None:
        def change(u: Upload) -> None:
            u.persisted_face_id = face_id

        self._repos.uploads.mutate(change, upload.user_key, upload.upload_id)

    def _forget_person(self, user_key: str, group_id: str, person_id: str) -> None:
        user = self._repos.users.get(user_key)
        if user is not None and user.person_id == person_id:
            user.person_id, user.face_added_at = None, None
            try:
                self._repos.users.update(user)
            except RecordConflict:
                pass
        self._persons.untrack(user_key, group_id, person_id)  # confirmed gone from Face

    # --- status ------------------------------------------------------------------------------
    def status(self, user_key: str) -> EnrollmentStatus:
        try:
            self.finish_replacement(user_key)
        except (TransientFailure, RecordConflict, FaceNotFound):
            pass  # completed by the next read or purge_timer's sweep
        user = self._repos.users.get(user_key)
        photos = sorted(self._repos.uploads.partition(user_key), key=lambda p: str(p.created_at))
        if user is not None and self._complete_stuck(user, photos):
            photos = sorted(self._repos.uploads.partition(user_key), key=lambda p: str(p.created_at))
        consent = self._consent.current(user_key)
        trained_through = None
        active = self._groups.active(create=False)
        if user and user.person_id and active and user.group_id == active.group_id:
            try:
                trained_through = self._training.refresh()
            except (LargePersonGroupNotFound, LargePersonGroupNotTrained):
                trained_through = None
        status = dom.overall_status(user, photos, has_consent=consent is not None, last_trained_through=trained_through,
                                    active_group_id=active.group_id if active else None)
        receipt_id: str | None = None
        message: str | None = None
        latest = latest_entry(self._consent.ledger(user_key)) if consent is None else None
        if latest is not None and latest.kind == "revocation":
            # Status reflects consent: a withdrawn user is never shown enrolled, even while an
            # erasure is still being finished (or repaired by purge_timer).
            status = dom.REVOKED
            # The tombstone names the receipt from the start; it is shown once the receipt exists, so the
            # person can read it (GET /api/me/receipts/{id}). Until then the erasure is still finishing.
            if latest.receipt_id and self._repos.receipts.get(latest.receipt_id) is not None:
                receipt_id = latest.receipt_id
            else:
                message = ERASURE_PENDING_MESSAGE
        elif latest is not None and latest.kind == "decline":
            status = dom.DECLINED
        if status == dom.FAILED and user and user.last_error:
            message = user.last_error
        if status == dom.REENROLL_REQUIRED:
            message = REENROLL_MESSAGE
        expires_at, renewal_due = self._renewal(consent.granted_at) if consent else (None, None)
        return EnrollmentStatus(
            status=status, photos=tuple(PhotoOutcome(p.upload_id, p.status, tuple(p.reasons)) for p in photos),
            store_photos=bool(consent.store_photos) if consent else False,
            consent=ConsentInForce(consent.terms_version, consent.granted_at, expires_at) if consent else None,
            receipt_id=receipt_id, message=message, renewal_due=renewal_due, replacement=self.replacement_of(user))

    def consent_days(self) -> int:
        """The consent retention the purge enforces (the published policy's, or a shorter setting)."""
        return min(self._settings.consent_retention_days, self._policy.consent_days)

    def _renewal(self, granted_at: str) -> tuple[str | None, str | None]:
        """When the consent's retention ends, and that date again once it is within the policy's notice
        period (``renewalDue``): the front end asks the user to consent again before the erasure."""
        granted = parse_iso(granted_at)
        if granted is None:
            return None, None
        expires = granted + timedelta(days=self.consent_days())
        due = self._clock() >= expires - timedelta(days=self._policy.renewal_notice_days)
        return iso(expires), (iso(expires) if due else None)

    # --- admin override ------------------------------------------------------------------------
    def grant_override(self, command: GrantOverride) -> OverrideGranted:
        now = self._clock()
        expires = now + timedelta(hours=command.expires_in_hours)
        override_id = uuid.uuid4().hex
        self._repos.overrides.upsert(Override(user_key=command.user_key, override_id=override_id,
                                              admin=command.admin.user_key, reason=command.reason, granted_at=iso(now),
                                              expires_at=iso(expires)))
        self._audit.write("quality.override.granted", actor=command.admin.user_key, subject=command.user_key,
                          overrideId=override_id, reason=command.reason, expiresAt=iso(expires))
        return OverrideGranted(override_id, command.user_key, iso(expires))

    def _active_override(self, user_key: str) -> Override | None:
        override = self._repos.overrides.get(user_key)
        if override is None:
            return None
        expires = parse_iso(override.expires_at)
        return override if expires and expires > self._clock() else None
