"""purge_timer: the scheduled sweep. Every run writes a report (counts per kind) to the audit log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.domain.enrollment import TABLE_UPLOAD_INDEX, TABLE_UPLOADS, parse_iso
from shared.ports import FacePort, PhotoStorePort, RecordStorePort
from shared.services.audit import AuditLog
from shared.settings import Settings

log = logging.getLogger("shared.purge")


class PurgeService:
    def __init__(self, *, records: RecordStorePort, photos: PhotoStorePort, face: FacePort, revocation: Any,
                 audit: AuditLog, enrollment: Any, settings: Settings, clock: Callable[[], datetime]) -> None:
        self._records = records
        self._photos = photos
        self._face = face
        self._revocation = revocation
        self._audit = audit
        self._enrollment = enrollment
        self._settings = settings
        self._clock = clock

    def run(self, *, dry_run: bool, trigger: str) -> dict[str, Any]:
        now = self._clock()
        report: dict[str, Any] = {"dryRun": dry_run, "trigger": trigger, "staleUploads": 0}
        cutoff = now - timedelta(minutes=self._settings.upload_max_age_minutes)
        # Stale uploads: never-used SAS slots and blobs that were never processed.
        for index in self._records.range(TABLE_UPLOAD_INDEX, select=["PartitionKey", "userKey", "createdAt"]):
            created = parse_iso(index.get("createdAt"))
            if created is None or created >= cutoff:
                continue
            upload = self._records.get(TABLE_UPLOADS, str(index["userKey"]), str(index["PartitionKey"]))
            if upload is not None and upload[0].get("status") not in ("awaitingUpload", "processing"):
                continue
            report["staleUploads"] += 1
            if not dry_run and upload is not None:
                self._photos.delete_upload(str(upload[0].get("blobName") or ""))
                self._records.delete(TABLE_UPLOADS, str(index["userKey"]), str(index["PartitionKey"]))
            if not dry_run:
                self._records.delete(TABLE_UPLOAD_INDEX, str(index["PartitionKey"]), "u")
        # Follow a running training, so a coalesced training completes without a user polling.
        if not dry_run:
            try:
                self._enrollment.training.refresh()
            except Exception:
                log.warning("training refresh failed during purge", exc_info=False)
        self._audit.write("purge.report", actor=f"purge:{trigger}", **report)
        log.info("purge finished: %s", report)
        return report
