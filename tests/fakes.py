"""In-memory fakes of every port (shared/ports.py), for the service tier (tests/service).

They keep the semantics the services rely on, and tests/contract runs the same cases against each
fake and its real adapter (Azurite, the Face emulator), so they cannot drift:

- ``FakeRecords``: ETags that change on every write, conditional update (``RecordConflict`` on a
  stale ETag or a missing entity), insert-only (``RecordExists``), idempotent delete, ``_json``
  columns round-tripped through JSON text and ``None`` columns dropped, as Table storage does.
- ``FakePhotos``: the uploads and kept-photos containers.
- ``FakeFace``: groups, persons, faces, training and identification. Identity comes from the
  photo: ``photo(identity)`` paints an image whose mean colour encodes the identity, and detect
  reads it back (a deterministic stand-in for a face vector).
- ``FakeAnchors``: the WORM container of ledger anchors (create-only, as the locked policy makes it).
- ``FakeEvents``: the door systems' CloudEvents, as published.
- ``FakePublisher``: keeps every message with its scheduled time; ``due(now)`` pops what is visible.
- ``InProcessImageCheck``: the app's own photo validation, run in this process instead of a sandboxed
  one (a process per photo made the service tier three times slower). Same outcomes for every photo;
  only the decode budget (CPU, memory, wall clock) is the sandbox's alone, tested against it.

Every call first runs ``self.hook(name)`` (a no-op by default): the service tier's crash matrix
and interleaving scheduler use it to fail or pause a step at any external call.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared import errors
from shared.adapters.image_sandbox import SandboxedImageCheck
from shared.images import DEFAULT_LIMITS, limits_from
from shared.ports import (
    ANY_ETAG,
    Candidate,
    Cond,
    DetectedFace,
    FaceRectangle,
    Identification,
    OutgoingMessage,
    PersonRecord,
    TrainingStatus,
)

Hook = Callable[[str], None]


class InProcessImageCheck(SandboxedImageCheck):
    """The app's adapter with the sandbox turned off (``isolate=False``): the same checks, in process."""

    def __init__(self, settings: Any = None) -> None:
        super().__init__(replace(limits_from(settings) if settings is not None else DEFAULT_LIMITS, isolate=False))


def _no_hook(name: str) -> None:
    return None


class _Hooked:
    hook: Hook = staticmethod(_no_hook)

    def _at(self, name: str) -> None:
        self.hook(name)


# --- records -------------------------------------------------------------------------------------
def _stored(entity: Mapping[str, Any]) -> dict[str, Any]:
    """What Table storage keeps: no None columns, JSON text for ``_json`` columns."""
    out: dict[str, Any] = {}
    for k, v in entity.items():
        if k.endswith("_json"):
            out[k] = json.dumps(v, separators=(",", ":"))
        elif v is not None:
            out[k] = v if isinstance(v, _IMMUTABLE) else copy.deepcopy(v)
    return out


#: Column values Table storage holds that need no copy: a reader cannot change what is stored.
_IMMUTABLE = (str, int, float, bool, bytes, datetime)


def _loaded(entity: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (json.loads(v) if k.endswith("_json") and isinstance(v, str)
                else v if isinstance(v, _IMMUTABLE) else copy.deepcopy(v))
            for k, v in entity.items()}


class FakeRecords(_Hooked):
    """``RecordStorePort`` in memory, with real ETag and conditional-write semantics."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[tuple[str, str], tuple[dict[str, Any], str]]] = {}
        self.writes = 0
        # A conditional write is atomic in Table storage: check and write under one lock here too
        # (taken after the hook, so the interleaving scheduler still switches at every call).
        self._write_lock = threading.RLock()

    def _t(self, table: str) -> dict[tuple[str, str], tuple[dict[str, Any], str]]:
        return self.tables.setdefault(table, {})

    def _etag(self) -> str:
        self.writes += 1
        return f'W/"datetime\'{self.writes:012d}-{uuid.uuid4().hex[:8]}\'"'

    @staticmethod
    def _key(entity: Mapping[str, Any]) -> tuple[str, str]:
        return str(entity["PartitionKey"]), str(entity["RowKey"])

    def get(self, table: str, pk: str, rk: str) -> tuple[dict[str, Any], str] | None:
        self._at(f"records.get:{table}")
        found = self._t(table).get((pk, rk))
        return (_loaded(found[0]), found[1]) if found else None

    def insert(self, table: str, entity: Mapping[str, Any]) -> str:
        self._at(f"records.insert:{table}")
        key = self._key(entity)
        with self._write_lock:
            if key in self._t(table):
                raise errors.RecordExists(f"{table} record exists")
            etag = self._etag()
            self._t(table)[key] = (_stored(entity), etag)
            return etag

    def insert_batch(self, table: str, entities: Sequence[Mapping[str, Any]]) -> list[str]:
        """One transaction per 100 entities of a partition: all or none of each, as Table storage does."""
        etags: list[str] = []
        for start in range(0, len(entities), 100):
            chunk = entities[start:start + 100]
            self._at(f"records.batch:{table}")
            if len({str(e["PartitionKey"]) for e in chunk}) != 1:
                raise ValueError("a batch transaction holds one partition")
            with self._write_lock:  # a transaction is atomic, like a conditional write
                if any(self._key(e) in self._t(table) for e in chunk):
                    raise errors.RecordExists(f"{table} record exists")
                for e in chunk:
                    etag = self._etag()
                    self._t(table)[self._key(e)] = (_stored(e), etag)
                    etags.append(etag)
        return etags

    def update(self, table: str, entity: Mapping[str, Any], *, etag: str) -> str:
        self._at(f"records.update:{table}")
        key = self._key(entity)
        with self._write_lock:
            found = self._t(table).get(key)
            if found is None or (found[1] != etag and etag != ANY_ETAG):
                raise errors.RecordConflict(f"{table} record changed concurrently")
            new = self._etag()
            self._t(table)[key] = (_stored(entity), new)
            return new

    def upsert(self, table: str, entity: Mapping[str, Any]) -> str:
        self._at(f"records.upsert:{table}")
        etag = self._etag()
        self._t(table)[self._key(entity)] = (_stored(entity), etag)
        return etag

    def delete(self, table: str, pk: str, rk: str, *, etag: str | None = None) -> None:
        self._at(f"records.delete:{table}")
        found = self._t(table).get((pk, rk))
        if found is not None and etag is not None and found[1] != etag:
            raise errors.RecordConflict(f"{table} record changed concurrently")
        self._t(table).pop((pk, rk), None)

    def partition(self, table: str, pk: str) -> list[dict[str, Any]]:
        self._at(f"records.partition:{table}")
        return [_loaded(e) for (p, _), (e, _) in sorted(self._t(table).items()) if p == pk]

    def partitions(self, table: str, pks: Sequence[str], *, select: list[str] | None = None) -> Iterator[dict[str, Any]]:
        keys = sorted(set(pks))
        rows = []
        for start in range(0, len(keys), 15):  # one request per 15 keys, as Table storage allows
            chunk = set(keys[start:start + 15])
            self._at(f"records.partitions:{table}")
            for (p, _), (e, _) in sorted(self._t(table).items()):
                if p in chunk:
                    row = _loaded(e)
                    rows.append({k: v for k, v in row.items() if k in select} if select else row)
        return iter(rows)

    def range(self, table: str, *, pk_from: str | None = None, pk_to: str | None = None,
              rk_from: str | None = None, rk_to: str | None = None, pk: str | None = None,
              select: list[str] | None = None) -> Iterator[dict[str, Any]]:
        self._at(f"records.range:{table}")
        rows = []
        for (p, r), (e, _) in sorted(self._t(table).items()):
            if (pk is not None and p != pk) or (pk_from is not None and p < pk_from) or \
                    (pk_to is not None and p >= pk_to) or (rk_from is not None and r < rk_from) or \
                    (rk_to is not None and r >= rk_to):
                continue
            row = _loaded(e)
            rows.append({k: v for k, v in row.items() if k in select} if select else row)
        return iter(rows)

    def query(self, table: str, any_of: Sequence[Sequence[Cond]], *,
              select: list[str] | None = None) -> Iterator[dict[str, Any]]:
        self._at(f"records.query:{table}")
        if sum(len(group) for group in any_of) > 15:
            raise ValueError("a query may make at most 15 comparisons")
        rows = []
        for (_p, _r), (e, _) in sorted(self._t(table).items()):
            row = _loaded(e)
            if any(all(_compares(row, cond) for cond in group) for group in any_of):
                rows.append({k: v for k, v in row.items() if k in select} if select else row)
        return iter(rows)

    def changed(self, table: str, *, since: str | None,
                select: list[str] | None = None) -> tuple[list[dict[str, Any]], str]:
        """By the write counter in each ETag (the fake's Timestamp): exact, so nothing comes twice."""
        self._at(f"records.changed:{table}")
        after = int(since) if since else 0
        rows, latest = [], after
        for (_p, _r), (e, etag) in sorted(self._t(table).items()):
            written = int(etag.split("'")[1].split("-")[0])
            if written > after:
                latest = max(latest, written)
                row = _loaded(e)
                rows.append({k: v for k, v in row.items() if k in select} if select else row)
        return rows, f"{latest:012d}" if latest else (since or "")

    # --- for tests -------------------------------------------------------------------------------
    def rows(self, table: str) -> list[dict[str, Any]]:
        return [_loaded(e) for _, (e, _) in sorted(self._t(table).items())]


def _compares(row: Mapping[str, Any], cond: Cond) -> bool:
    """Table storage's comparison: a missing column never matches; strings compare by code point."""
    value = row.get(cond.column)
    if value is None:
        return False
    value = str(value)
    return {"eq": value == cond.value, "ne": value != cond.value, "ge": value >= cond.value,
            "gt": value > cond.value, "lt": value < cond.value}[cond.op]


# --- photos --------------------------------------------------------------------------------------
class FakePhotos(_Hooked):
    """``PhotoStorePort`` in memory: the uploads container and the kept-photos container."""

    def __init__(self) -> None:
        self.uploads: dict[str, bytes] = {}
        self.kept: dict[str, bytes] = {}

    def upload_url(self, blob_name: str, *, expires_on: datetime) -> str:
        self._at("photos.upload_url")
        return f"memory://uploads/{blob_name}?se={expires_on.isoformat()}&sp=c"

    def kept_read_url(self, kept_name: str, *, expires_on: datetime) -> str:
        self._at("photos.kept_read_url")
        return f"memory://kept/{kept_name}?se={expires_on.isoformat()}&sp=r"

    def put_upload(self, blob_name: str, data: bytes) -> None:
        """The front end's PUT to the SAS URL."""
        self.uploads[blob_name] = data

    def delete_upload(self, blob_name: str) -> bool:
        self._at("photos.delete_upload")
        return self.uploads.pop(blob_name, None) is not None

    def list_uploads(self, prefix: str = "") -> list[str]:
        self._at("photos.list_uploads")
        return sorted(n for n in self.uploads if n.startswith(prefix))

    def keep(self, kept_name: str, data: bytes) -> None:
        self._at("photos.keep")
        self.kept[kept_name] = bytes(data)

    def read_kept(self, kept_name: str) -> bytes:
        self._at("photos.read_kept")
        if kept_name not in self.kept:
            raise errors.PhotoNotFound("kept photo not found")
        return self.kept[kept_name]

    def list_kept(self, prefix: str = "") -> list[str]:
        self._at("photos.list_kept")
        return sorted(n for n in self.kept if n.startswith(prefix))

    def delete_kept(self, kept_name: str) -> bool:
        self._at("photos.delete_kept")
        return self.kept.pop(kept_name, None) is not None


# --- Face ----------------------------------------------------------------------------------------
def photo(identity: int, *, size: int = 480, fmt: str = "JPEG") -> bytes:
    """A clean photo whose mean colour encodes ``identity`` (0..199) for ``FakeFace.detect``.

    Identity 0 is reserved for "no face" (a black image). Colours are far enough apart to survive
    JPEG re-encoding; a textured border keeps the file above the 1 KB minimum.
    """
    from PIL import Image, ImageDraw

    r, g = divmod(identity, 14)
    colour = (r * 17 + 8, g * 17 + 8, 128) if identity else (0, 0, 0)
    img = Image.new("RGB", (size, size), colour)
    draw = ImageDraw.Draw(img)
    for i in range(0, size, 4):  # a little texture so the file is a realistic size
        draw.point((i, 0), fill=(i % 256, 0, 0))
    out = io.BytesIO()
    img.save(out, fmt, quality=95)
    return out.getvalue()


def identity_of(image: bytes) -> int:
    from PIL import Image, ImageStat

    img = Image.open(io.BytesIO(image)).convert("RGB")
    w, h = img.size
    mean = ImageStat.Stat(img.crop((w // 4, h // 4, 3 * w // 4, 3 * h // 4))).mean
    if max(mean) < 4:
        return 0
    r, g = round((mean[0] - 8) / 17), round((mean[1] - 8) / 17)
    return max(0, r) * 14 + max(0, g)


GOOD_ATTRIBUTES: dict[str, Any] = {
    "headPose": {"pitch": 0.0, "roll": 0.0, "yaw": 0.0},
    "blur": {"blurLevel": "low", "value": 0.05},
    "exposure": {"exposureLevel": "goodExposure", "value": 0.5},
    "occlusion": {"foreheadOccluded": False, "eyeOccluded": False, "mouthOccluded": False},
    "mask": {"type": "noMask", "noseAndMouthCovered": False},
    "qualityForRecognition": "high",
}


@dataclass
class _Person:
    name: str
    user_data: str | None
    faces: dict[str, tuple[str | None, int]] = field(default_factory=dict)  # faceId -> (userData, identity)


@dataclass
class _Group:
    name: str
    recognition_model: str
    user_data: str | None
    persons: dict[str, _Person] = field(default_factory=dict)
    training: str | None = None  # None (never trained) | running | succeeded | failed
    trained: dict[str, set[int]] = field(default_factory=dict)  # snapshot: personId -> identities


class FakeFace(_Hooked):
    """``FacePort`` in memory. Training completes after ``train_polls`` status calls (0: at once).

    Knobs for tests: ``quality[identity] = {...}`` overrides detect's attributes for an identity,
    ``faces_in[identity] = n`` makes detect find n faces, ``fail_training = True`` fails the next training,
    ``limited_access_approved = False`` answers every Limited Access call (groups, persons, faces, identify,
    verify, detect with a faceId) with 403 UnsupportedFeature, as Face does before Microsoft's approval.
    """

    def __init__(self, *, train_polls: int = 0) -> None:
        self.groups: dict[str, _Group] = {}
        self.detected: dict[str, int] = {}  # faceId -> identity (faceIds returned by detect)
        self.quality: dict[int, dict[str, Any]] = {}
        self.faces_in: dict[int, int] = {}
        self.train_polls = train_polls
        self.fail_training = False
        self.limited_access_approved = True
        self._polls: dict[str, int] = {}
        self.calls: list[str] = []

    def _at(self, name: str, *, limited: bool = True) -> None:
        self.calls.append(name)
        self.hook(f"face.{name}")
        if limited and not self.limited_access_approved:
            raise errors.LimitedAccessNotApproved(
                "Feature is not supported, missing approval for one or more of the following features: "
                "Identification,Verification.", code="UnsupportedFeature", status=403)

    def _group(self, group_id: str) -> _Group:
        g = self.groups.get(group_id)
        if g is None:
            raise errors.LargePersonGroupNotFound("Large person group is not found.", code="LargePersonGroupNotFound",
                                                  status=404)
        return g

    def _person(self, group_id: str, person_id: str) -> _Person:
        p = self._group(group_id).persons.get(person_id)
        if p is None:
            raise errors.PersonNotFound("Person is not found.", code="PersonNotFound", status=404)
        return p

    # groups
    def create_group(self, group_id: str, *, name: str, recognition_model: str, user_data: str | None = None) -> None:
        self._at("create_group")
        if group_id in self.groups:
            raise errors.LargePersonGroupExists("Large person group already exists.", code="LargePersonGroupExists",
                                                status=409)
        self.groups[group_id] = _Group(name, recognition_model, user_data)

    def get_group(self, group_id: str) -> Mapping[str, Any]:
        self._at("get_group")
        g = self._group(group_id)
        return {"largePersonGroupId": group_id, "name": g.name, "userData": g.user_data,
                "recognitionModel": g.recognition_model}

    def list_groups(self, *, start: str | None = None, top: int = 1000) -> list[Mapping[str, Any]]:
        self._at("list_groups")
        ids = sorted(g for g in self.groups if start is None or g > start)[:top]
        return [{"largePersonGroupId": g, "name": self.groups[g].name, "userData": self.groups[g].user_data}
                for g in ids]

    def delete_group(self, group_id: str) -> None:
        self._at("delete_group")
        self._group(group_id)
        del self.groups[group_id]

    # persons
    def create_person(self, group_id: str, *, name: str, user_data: str | None = None) -> str:
        self._at("create_person")
        g = self._group(group_id)
        person_id = str(uuid.uuid4())
        g.persons[person_id] = _Person(name, user_data)
        return person_id

    def _record(self, person_id: str, p: _Person) -> PersonRecord:
        return PersonRecord(person_id, p.name, p.user_data, tuple(p.faces))

    def get_person(self, group_id: str, person_id: str) -> PersonRecord:
        self._at("get_person")
        return self._record(person_id, self._person(group_id, person_id))

    def list_persons(self, group_id: str, *, start: str | None = None, top: int = 1000) -> list[PersonRecord]:
        self._at("list_persons")
        g = self._group(group_id)
        ids = sorted(p for p in g.persons if start is None or p > start)[:top]
        return [self._record(p, g.persons[p]) for p in ids]

    def iter_persons(self, group_id: str) -> Iterator[PersonRecord]:
        start: str | None = None
        while True:
            page = self.list_persons(group_id, start=start, top=1000)
            yield from page
            if len(page) < 1000:
                return
            start = page[-1].person_id

    def update_person(self, group_id: str, person_id: str, *, name: str | None = None,
                      user_data: str | None = None) -> None:
        self._at("update_person")
        p = self._person(group_id, person_id)
        if name is not None:
            p.name = name
        if user_data is not None:
            p.user_data = user_data

    def delete_person(self, group_id: str, person_id: str) -> None:
        self._at("delete_person")
        self._person(group_id, person_id)
        del self.groups[group_id].persons[person_id]

    # faces
    def _faces(self, image: bytes) -> list[int]:
        try:
            identity = identity_of(image)
        except Exception as exc:
            raise errors.FaceInvalidImage("Image format is not supported.", code="InvalidImage", status=400) from exc
        if identity == 0:
            return []
        return [identity] * self.faces_in.get(identity, 1)

    def add_face(self, group_id: str, person_id: str, image: bytes, *, user_data: str | None = None,
                 target_face: FaceRectangle | None = None) -> str:
        self._at("add_face")
        p = self._person(group_id, person_id)
        found = self._faces(image)
        if (len(found) != 1 and target_face is None) or not found:
            raise errors.FaceInvalidImage("There is not exactly one face in the image.", code="InvalidImage", status=400)
        face_id = str(uuid.uuid4())
        p.faces[face_id] = (user_data, found[0])
        return face_id

    def get_face(self, group_id: str, person_id: str, persisted_face_id: str) -> Mapping[str, Any]:
        self._at("get_face")
        p = self._person(group_id, person_id)
        if persisted_face_id not in p.faces:
            raise errors.PersistedFaceNotFound("Persisted face is not found.", code="PersistedFaceNotFound", status=404)
        return {"persistedFaceId": persisted_face_id, "userData": p.faces[persisted_face_id][0]}

    def delete_face(self, group_id: str, person_id: str, persisted_face_id: str) -> None:
        self._at("delete_face")
        p = self._person(group_id, person_id)
        if p.faces.pop(persisted_face_id, None) is None:
            raise errors.PersistedFaceNotFound("Persisted face is not found.", code="PersistedFaceNotFound", status=404)

    # training
    def train(self, group_id: str) -> None:
        self._at("train")
        g = self._group(group_id)
        g.training = "running"
        self._polls[group_id] = 0
        if self.train_polls == 0:
            self._finish_training(group_id, g)

    def _finish_training(self, group_id: str, g: _Group) -> None:
        if self.fail_training:
            g.training = "failed"
            self.fail_training = False
            return
        g.training = "succeeded"
        g.trained = {pid: {ident for _, ident in p.faces.values()} for pid, p in g.persons.items()}

    def training_status(self, group_id: str) -> TrainingStatus:
        self._at("training_status")
        g = self._group(group_id)
        if g.training is None:
            raise errors.LargePersonGroupNotTrained("Large person group not trained.",
                                                    code="LargePersonGroupNotTrained", status=404)
        if g.training == "running":
            self._polls[group_id] = self._polls.get(group_id, 0) + 1
            if self._polls[group_id] >= self.train_polls:
                self._finish_training(group_id, g)
        return TrainingStatus(g.training)

    # recognition
    def detect(self, image: bytes, *, return_face_id: bool = True, attributes: Sequence[str] = (),
               recognition_model: str | None = None) -> list[DetectedFace]:
        self._at("detect", limited=return_face_id)  # detect without a faceId needs no approval
        out = []
        for n, identity in enumerate(self._faces(image)):
            face_id = str(uuid.uuid4()) if return_face_id else None
            if face_id:
                self.detected[face_id] = identity
            attrs = {k: v for k, v in {**GOOD_ATTRIBUTES, **self.quality.get(identity, {})}.items()
                     if k in attributes}
            out.append(DetectedFace(face_id, FaceRectangle(40 + n * 220, 40, 200, 200), attrs, recognition_model))
        return out

    def identify(self, group_id: str, face_ids: Sequence[str], *, max_candidates: int = 1,
                 confidence_threshold: float | None = None) -> list[Identification]:
        self._at("identify")
        g = self._group(group_id)
        if g.training != "succeeded" and not g.trained:
            raise errors.LargePersonGroupNotTrained("Large person group not trained.",
                                                    code="LargePersonGroupNotTrained", status=400)
        out = []
        for face_id in face_ids:
            identity = self.detected.get(face_id)
            cands = [Candidate(pid, 0.95) for pid, idents in sorted(g.trained.items())
                     if identity in idents and pid in g.persons]
            out.append(Identification(face_id, tuple(cands[:max_candidates])))
        return out

    def verify(self, group_id: str, face_id: str, person_id: str) -> tuple[bool, float]:
        self._at("verify")
        p = self._person(group_id, person_id)
        same = self.detected.get(face_id) in {ident for _, ident in p.faces.values()}
        return same, 0.95 if same else 0.05

    # --- for tests -------------------------------------------------------------------------------
    def all_persons(self) -> list[tuple[str, str, int]]:
        """(group, person, face count) for every person in every group."""
        return [(g, p, len(person.faces)) for g, group in self.groups.items() for p, person in group.persons.items()]


# --- messaging -----------------------------------------------------------------------------------
@dataclass
class Sent:
    destination: str
    message: OutgoingMessage
    seq: int

    def json(self) -> Any:
        return json.loads(self.message.body)


class FakeAnchors(_Hooked):
    """``AnchorStorePort`` in memory: create-only, never overwritten (the locked WORM policy)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def write_anchor(self, name: str, data: bytes) -> bool:
        self._at("anchors.write")
        if name in self.blobs:
            return False
        self.blobs[name] = bytes(data)
        return True

    def list_anchors(self) -> list[str]:
        self._at("anchors.list")
        return sorted(self.blobs)

    def read_anchor(self, name: str) -> bytes:
        self._at("anchors.read")
        return self.blobs[name]


class FakeEvents(_Hooked):
    """``EventPublisherPort`` in memory: every CloudEvent published, in order (a door system's view)."""

    def __init__(self) -> None:
        self.published: list[Any] = []

    def publish(self, events: Sequence[Any]) -> None:
        self._at("events.publish")
        self.published.extend(events)


class FakePublisher(_Hooked):
    """``MessagePublisherPort`` in memory. Duplicate detection by ``message_id`` per destination, as
    Service Bus does within its window; scheduled messages become visible at their time."""

    def __init__(self, *, dedupe: bool = True) -> None:
        self.sent: list[Sent] = []
        self.pending: list[Sent] = []
        self._seen: set[tuple[str, str]] = set()
        self._dedupe = dedupe

    def send(self, destination: str, messages: Sequence[OutgoingMessage]) -> None:
        self._at(f"publisher.send:{destination}")
        self._send(destination, messages)

    def _send(self, destination: str, messages: Sequence[OutgoingMessage]) -> None:
        for m in messages:
            item = Sent(destination, m, len(self.sent))
            self.sent.append(item)
            if self._dedupe and (destination, m.message_id) in self._seen:
                continue
            self._seen.add((destination, m.message_id))
            self.pending.append(item)

    def schedule(self, destination: str, message: OutgoingMessage) -> str:
        self._at(f"publisher.schedule:{destination}")
        before = len(self.pending)
        self._send(destination, [message])
        return f"{destination}#{self.pending[-1].seq}" if len(self.pending) > before else ""

    def cancel(self, destination: str, token: str) -> bool:
        self._at(f"publisher.cancel:{destination}")
        found = [s for s in self.pending if token == f"{s.destination}#{s.seq}" and s.destination == destination]
        for s in found:
            self.pending.remove(s)
        return bool(found)

    def due(self, now: datetime, destination: str | None = None) -> list[Sent]:
        """Pops the messages visible at ``now`` (in scheduled-time, then send order)."""
        ready = [s for s in self.pending if (destination is None or s.destination == destination)
                 and (s.message.scheduled_enqueue_time is None or s.message.scheduled_enqueue_time <= now)]
        for s in ready:
            self.pending.remove(s)
        return sorted(ready, key=lambda s: (s.message.scheduled_enqueue_time or now, s.seq))

    def next_time(self) -> datetime | None:
        times = [s.message.scheduled_enqueue_time for s in self.pending if s.message.scheduled_enqueue_time]
        return min(times) if times else None


def fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


# --- readiness probes --------------------------------------------------------------------------------
class FakeStorageProbe:
    """``StorageProbePort`` in memory. ``fail`` (an exception) makes every call raise it; ``hang`` (seconds)
    makes every call sleep first, as a storage account that stopped answering."""

    def __init__(self) -> None:
        self.tables: set[str] = set()
        self.containers: set[str] = set()
        self.fail: Exception | None = None
        self.hang = 0.0

    def _act(self) -> None:
        if self.hang:
            import time

            time.sleep(self.hang)
        if self.fail is not None:
            raise self.fail

    def ensure_tables(self, tables: Sequence[str]) -> list[str]:
        self._act()
        created = [t for t in tables if t not in self.tables]
        self.tables.update(created)
        return created

    def ensure_container(self, container: str) -> bool:
        self._act()
        created = container not in self.containers
        self.containers.add(container)
        return created


class FakeBusProbe:
    """``BusProbePort`` in memory: ``entities`` holds queue names and ``topic/subscription`` names that exist;
    ``fail`` raises for every entity."""

    def __init__(self, entities: set[str] | None = None) -> None:
        self.entities = entities if entities is not None else set()
        self.fail: Exception | None = None

    def _check(self, entity: str) -> None:
        if self.fail is not None:
            raise self.fail
        if entity not in self.entities:
            raise errors.ProbeNotFound(f"{entity} does not exist")

    def check_queue(self, queue: str) -> None:
        self._check(queue)

    def check_subscription(self, topic: str, subscription: str) -> None:
        self._check(f"{topic}/{subscription}")
