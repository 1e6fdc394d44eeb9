"""The active LargePersonGroup and its training: shared by enrollment, re-enrollment and purge.

``GroupDirectory`` creates the group on first need and pins it with its recognition model in the
state table; ``TrainingCoordinator`` coalesces trainings. Both are built once in shared/bootstrap.py
and injected into the services that need them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.domain.enrollment import TABLE_STATE, iso, parse_iso
from shared.errors import LargePersonGroupExists, RecordConflict, RecordExists, TransientFailure
from shared.ports import FacePort, RecordStorePort
from shared.settings import Settings

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


