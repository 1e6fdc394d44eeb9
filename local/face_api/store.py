"""Groups, persons, persisted faces (descriptors only, never images), training snapshots, and their
persistence (checkpoint JSON + .npy, plus an append-only journal replayed at start-up)."""

from __future__ import annotations

import base64
import bisect
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from local.face_api.model import DIM, confidence_from_distance, distance_for_confidence

JOURNAL_CHECKPOINT_LINES = 200_000


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


# --- descriptor storage -------------------------------------------------------------------------
class DescriptorPool:
    """Growable (capacity, 128) float32 array with a free list; faces refer to rows by slot."""

    def __init__(self, capacity: int = 64) -> None:
        self.arr = np.zeros((capacity, DIM), dtype=np.float32)
        self.free: list[int] = []
        self.used = 0

    def add(self, vec: np.ndarray) -> int:
        if self.free:
            slot = self.free.pop()
        else:
            if self.used >= len(self.arr):
                grown = np.zeros((max(64, len(self.arr) * 2), DIM), dtype=np.float32)
                grown[: len(self.arr)] = self.arr
                self.arr = grown
            slot = self.used
            self.used += 1
        self.arr[slot] = vec
        return slot

    def release(self, slot: int) -> None:
        self.free.append(slot)


class Face:
    __slots__ = ("face_id", "slot", "user_data")

    def __init__(self, face_id: str, user_data: str | None, slot: int) -> None:
        self.face_id = face_id
        self.user_data = user_data
        self.slot = slot


class Person:
    __slots__ = ("faces", "name", "person_id", "user_data")

    def __init__(self, person_id: str, name: str, user_data: str | None) -> None:
        self.person_id = person_id
        self.name = name
        self.user_data = user_data
        self.faces: dict[str, Face] = {}

    def to_json(self) -> dict[str, Any]:
        return {"personId": self.person_id, "name": self.name, "userData": self.user_data,
                "persistedFaceIds": list(self.faces)}


@dataclass
class Snapshot:
    """What identify sees: the descriptors of the last successful training, grouped by person."""

    matrix: np.ndarray  # (F, 128) float32, rows of one person contiguous
    sqnorm: np.ndarray  # (F,) float32
    starts: np.ndarray  # (P,) int64 row offset of each person
    person_ids: list[str]
    one_per_person: bool
    index: dict[str, int] = field(default_factory=dict)  # personId -> position, built lazily

    @classmethod
    def build(cls, matrix: np.ndarray, starts: np.ndarray, person_ids: list[str]) -> Snapshot:
        m = np.ascontiguousarray(matrix, dtype=np.float32)
        return cls(matrix=m, sqnorm=np.einsum("ij,ij->i", m, m), starts=starts.astype(np.int64),
                   person_ids=person_ids, one_per_person=len(person_ids) == len(m))

    def squared_distances(self, queries: np.ndarray) -> np.ndarray:
        """(Q, P) squared Euclidean distance of each query to each person's closest face:
        |x|^2 - 2 x.q + |q|^2 with one matmul, then a per-person min when persons have several faces."""
        if not self.person_ids:
            return np.zeros((len(queries), 0), dtype=np.float32)
        q = np.asarray(queries, dtype=np.float32)
        d2: np.ndarray = q @ self.matrix.T
        d2 *= -2.0
        d2 += self.sqnorm[None, :]
        d2 += np.einsum("ij,ij->i", q, q)[:, None]
        if not self.one_per_person:
            d2 = np.minimum.reduceat(d2, self.starts, axis=1)
        return d2

    def identify(self, queries: np.ndarray, max_candidates: int, threshold: float) -> list[list[tuple[str, float]]]:
        d2 = self.squared_distances(queries)
        dmax = distance_for_confidence(threshold)
        d2max = dmax * dmax if dmax >= 0 else -1.0
        results: list[list[tuple[str, float]]] = []
        for row in d2:
            idx = np.flatnonzero(row <= d2max)
            if len(idx) > max_candidates:
                idx = idx[np.argpartition(row[idx], max_candidates - 1)[:max_candidates]]
            idx = idx[np.argsort(row[idx], kind="stable")]
            conf = np.asarray(confidence_from_distance(np.sqrt(np.maximum(row[idx], 0.0))))
            results.append([(self.person_ids[i], round(float(c), 5)) for i, c in zip(idx, conf, strict=False)
                            if float(c) >= threshold])
        return results


@dataclass
class Training:
    status: str = "notStarted"
    created: str | None = None
    last_action: str | None = None
    last_success: str | None = None
    message: str | None = None
    operation_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "createdDateTime": self.created,
                               "lastActionDateTime": self.last_action,
                               "lastSuccessfulTrainingDateTime": self.last_success}
        if self.message:
            out["message"] = self.message
        return out


class Group:
    def __init__(self, group_id: str, name: str, user_data: str | None, model: str, created: str) -> None:
        self.group_id = group_id
        self.name = name
        self.user_data = user_data
        self.model = model
        self.created = created
        self.persons: dict[str, Person] = {}
        self.pool = DescriptorPool()
        self.training = Training()
        self.snapshot: Snapshot | None = None
        self.snapshot_file: str | None = None
        self._sorted: list[str] = []
        self._sorted_state = "ok"  # ok | append (unsorted tail) | rebuild

    def to_json(self, with_model: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"largePersonGroupId": self.group_id, "name": self.name, "userData": self.user_data}
        if with_model:
            out["recognitionModel"] = self.model
        return out

    def sorted_ids(self) -> list[str]:
        if self._sorted_state == "rebuild":
            self._sorted = sorted(self.persons)
        elif self._sorted_state == "append":
            self._sorted.sort()  # timsort: sorted run + short tail is ~linear
        self._sorted_state = "ok"
        return self._sorted

    def note_added(self, person_id: str) -> None:
        if self._sorted_state != "rebuild":
            self._sorted.append(person_id)
            if self._sorted_state == "ok" and len(self._sorted) > 1 and self._sorted[-2] > person_id:
                self._sorted_state = "append"

    def note_removed(self) -> None:
        self._sorted_state = "rebuild"


def _b64(vec: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vec, dtype=np.float32).tobytes()).decode()


def _unb64(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.float32).copy()


def _atomic_write(path: Path, writer: Callable[[Any], None], mode: str = "wb") -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, mode) as fh:
        writer(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Store:
    """All state of one emulator process. One lock guards mutations; identify reads the immutable
    training snapshot without it."""

    def __init__(self, data_dir: Path | None = None, *, train_base_s: float = 0.05,
                 train_per_face_s: float = 5e-6) -> None:
        self.lock = threading.RLock()
        self.groups: dict[str, Group] = {}
        self._sorted_groups: list[str] = []
        self.operations: dict[str, dict[str, Any]] = {}
        self.person_ids_issued: list[str] = []
        self.train_base_s = train_base_s
        self.train_per_face_s = train_per_face_s
        self.data_dir = data_dir
        self._journal: Any = None
        self._journal_lines = 0
        self._gen = 0
        self._snap_serial = 0
        self._pending_snaps: set[str] = set()  # written but not yet journaled: never cleaned up
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._load()

    # --- journal / checkpoint ------------------------------------------------------------------
    def _log(self, rec: dict[str, Any]) -> None:
        if self._journal is None:
            return
        self._journal.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self._journal.flush()
        self._journal_lines += 1
        if self._journal_lines >= JOURNAL_CHECKPOINT_LINES:
            self.checkpoint()

    def _journal_path(self, gen: int) -> Path:
        assert self.data_dir is not None
        return self.data_dir / f"journal-{gen}.jsonl"

    def checkpoint(self) -> None:
        """Write state.json + one desc-<group>-<gen>.npy per group, then start a new journal."""
        if self.data_dir is None:
            return
        with self.lock:
            gen = self._gen + 1
            groups_json = []
            for g in self.groups.values():
                rows: list[int] = []
                persons = []
                for p in g.persons.values():
                    faces = []
                    for f in p.faces.values():
                        faces.append([f.face_id, f.user_data, len(rows)])
                        rows.append(f.slot)
                    persons.append([p.person_id, p.name, p.user_data, faces])
                desc_name = f"desc-{g.group_id}-{gen}.npy"
                arr = g.pool.arr[rows] if rows else np.zeros((0, DIM), dtype=np.float32)
                self._save_npy(self.data_dir / desc_name, arr)
                t = g.training
                groups_json.append({
                    "id": g.group_id, "name": g.name, "userData": g.user_data, "model": g.model,
                    "created": g.created, "persons": persons, "descFile": desc_name,
                    "training": {"status": t.status, "created": t.created, "lastAction": t.last_action,
                                 "lastSuccess": t.last_success, "message": t.message},
                    "snapshotFile": g.snapshot_file})
            state = {"version": 1, "gen": gen, "snapSerial": self._snap_serial, "groups": groups_json}
            _atomic_write(self.data_dir / "state.json",
                          lambda fh: fh.write(json.dumps(state).encode()))
            if self._journal is not None:
                self._journal.close()
            old_gen = self._gen
            self._gen = gen
            self._journal = open(self._journal_path(gen), "a", encoding="utf-8")  # noqa: SIM115
            self._journal_lines = 0
            self._cleanup(old_gen)

    @staticmethod
    def _save_npy(path: Path, arr: np.ndarray) -> None:
        _atomic_write(path, lambda fh: np.save(fh, arr))

    def _cleanup(self, old_gen: int) -> None:
        assert self.data_dir is not None
        keep = {f"desc-{g}-{self._gen}.npy" for g in self.groups} | {
            g.snapshot_file for g in self.groups.values() if g.snapshot_file} | self._pending_snaps
        for p in self.data_dir.iterdir():
            name = p.name
            if (name.startswith(("desc-", "snap-")) and name not in keep) or (
                    name.startswith("journal-") and name != f"journal-{self._gen}.jsonl") or ".tmp" in name:
                try:
                    p.unlink()
                except OSError:
                    pass

    def _load(self) -> None:
        assert self.data_dir is not None
        state_path = self.data_dir / "state.json"
        if state_path.exists():
            state = json.loads(state_path.read_text())
            self._gen = int(state["gen"])
            self._snap_serial = int(state.get("snapSerial", 0))
            for gj in state["groups"]:
                g = Group(gj["id"], gj["name"], gj["userData"], gj["model"], gj["created"])
                arr = np.load(self.data_dir / gj["descFile"])
                for pid, name, ud, faces in gj["persons"]:
                    p = Person(pid, name, ud)
                    for fid, fud, row in faces:
                        p.faces[fid] = Face(fid, fud, g.pool.add(arr[row]))
                    g.persons[pid] = p
                    g.note_added(pid)
                t = gj["training"]
                g.training = Training(t["status"], t["created"], t["lastAction"], t["lastSuccess"], t["message"])
                if gj.get("snapshotFile"):
                    self._load_snapshot(g, gj["snapshotFile"])
                self.groups[g.group_id] = g
        jpath = self._journal_path(self._gen)
        if jpath.exists():
            with open(jpath, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        break  # torn last line
                    self._apply(rec)
        self._sorted_groups = sorted(self.groups)
        interrupted = [g for g in self.groups.values() if g.training.status == "running"]
        self.checkpoint()
        for g in interrupted:  # the process stopped mid-training: train again
            g.training.status = "notStarted"
            self.start_training(g.group_id)

    def _load_snapshot(self, g: Group, name: str) -> None:
        assert self.data_dir is not None
        try:
            with np.load(self.data_dir / name, allow_pickle=False) as z:
                g.snapshot = Snapshot.build(z["matrix"], z["starts"], [str(x) for x in z["personIds"]])
            g.snapshot_file = name
        except (OSError, KeyError, ValueError):
            g.snapshot = None
            g.snapshot_file = None

    def _apply(self, rec: dict[str, Any]) -> None:
        """Replay one journal record (no logging, no validation)."""
        op = rec["op"]
        if op == "group_put":
            self.groups[rec["g"]] = Group(rec["g"], rec["name"], rec["userData"], rec["model"], rec["created"])
            return
        g = self.groups.get(rec["g"])
        if g is None:
            return
        if op == "group_patch":
            g.name = rec.get("name", g.name)
            g.user_data = rec.get("userData", g.user_data)
        elif op == "group_del":
            del self.groups[g.group_id]
        elif op == "person_put":
            g.persons[rec["p"]] = Person(rec["p"], rec["name"], rec["userData"])
            g.note_added(rec["p"])
        elif op == "person_patch":
            p = g.persons.get(rec["p"])
            if p is not None:
                p.name = rec.get("name", p.name)
                p.user_data = rec.get("userData", p.user_data)
        elif op == "person_del":
            p = g.persons.pop(rec["p"], None)
            if p is not None:
                for f in p.faces.values():
                    g.pool.release(f.slot)
                g.note_removed()
        elif op == "face_put":
            p = g.persons.get(rec["p"])
            if p is not None:
                p.faces[rec["f"]] = Face(rec["f"], rec["userData"], g.pool.add(_unb64(rec["d"])))
        elif op == "face_patch":
            p = g.persons.get(rec["p"])
            if p is not None and rec["f"] in p.faces:
                p.faces[rec["f"]].user_data = rec["userData"]
        elif op == "face_del":
            p = g.persons.get(rec["p"])
            if p is not None:
                gone = p.faces.pop(rec["f"]) if rec["f"] in p.faces else None
                if gone is not None:
                    g.pool.release(gone.slot)
        elif op == "training":
            t = rec["t"]
            g.training = Training(t["status"], t["created"], t["lastAction"], t["lastSuccess"], t["message"])
            if rec.get("snap"):
                self._snap_serial = max(self._snap_serial, int(rec.get("serial", 0)))
                self._load_snapshot(g, rec["snap"])

    def close(self) -> None:
        if self.data_dir is not None:
            self.checkpoint()
            if self._journal is not None:
                self._journal.close()
                self._journal = None

    def reset(self) -> None:
        with self.lock:
            self.groups.clear()
            self._sorted_groups = []
            self.operations.clear()
            self.person_ids_issued = []
            if self.data_dir is not None:
                self.checkpoint()

    # --- groups --------------------------------------------------------------------------------
    def group(self, group_id: str, *, status: int = 404) -> Group:
        g = self.groups.get(group_id)
        if g is None:
            raise ApiError(status, "LargePersonGroupNotFound", f"Large person group {group_id} is not found.")
        return g

    def create_group(self, group_id: str, name: str, user_data: str | None, model: str) -> None:
        with self.lock:
            if group_id in self.groups:
                raise ApiError(409, "LargePersonGroupExists", "Large person group already exists.")
            created = now_iso()
            self.groups[group_id] = Group(group_id, name, user_data, model, created)
            bisect.insort(self._sorted_groups, group_id)
            self._log({"op": "group_put", "g": group_id, "name": name, "userData": user_data, "model": model,
                       "created": created})

    def update_group(self, group_id: str, changes: dict[str, Any]) -> None:
        with self.lock:
            g = self.group(group_id)
            if "name" in changes:
                g.name = changes["name"]
            if "userData" in changes:
                g.user_data = changes["userData"]
            self._log({"op": "group_patch", "g": group_id, **changes})

    def delete_group(self, group_id: str) -> None:
        with self.lock:
            self.group(group_id)
            del self.groups[group_id]
            i = bisect.bisect_left(self._sorted_groups, group_id)
            if i < len(self._sorted_groups) and self._sorted_groups[i] == group_id:
                self._sorted_groups.pop(i)
            self._log({"op": "group_del", "g": group_id})

    def list_groups(self, start: str | None, top: int) -> list[Group]:
        with self.lock:
            ids = self._sorted_groups
            i = bisect.bisect_right(ids, start) if start else 0
            return [self.groups[x] for x in ids[i:i + top]]

    # --- persons -------------------------------------------------------------------------------
    def person(self, g: Group, person_id: str, *, status: int = 404) -> Person:
        p = g.persons.get(person_id)
        if p is None:
            raise ApiError(status, "PersonNotFound", "Person is not found.")
        return p

    def create_person(self, group_id: str, name: str, user_data: str | None) -> str:
        with self.lock:
            g = self.group(group_id)
            pid = str(uuid.uuid4())
            g.persons[pid] = Person(pid, name, user_data)
            g.note_added(pid)
            self.person_ids_issued.append(pid)
            self._log({"op": "person_put", "g": group_id, "p": pid, "name": name, "userData": user_data})
            return pid

    def bulk_add_persons(self, group_id: str, descriptors: np.ndarray, prefix: str = "p") -> list[str]:
        """Fill helper for benchmarks: one person + one face per descriptor row (no journal)."""
        with self.lock:
            g = self.group(group_id)
            ids = []
            for vec in descriptors:
                pid = str(uuid.uuid4())
                p = Person(pid, f"{prefix}{len(g.persons)}", None)
                fid = str(uuid.uuid4())
                p.faces[fid] = Face(fid, None, g.pool.add(vec))
                g.persons[pid] = p
                g.note_added(pid)
                ids.append(pid)
            return ids

    def update_person(self, group_id: str, person_id: str, changes: dict[str, Any]) -> None:
        with self.lock:
            p = self.person(self.group(group_id), person_id)
            if "name" in changes:
                p.name = changes["name"]
            if "userData" in changes:
                p.user_data = changes["userData"]
            self._log({"op": "person_patch", "g": group_id, "p": person_id, **changes})

    def delete_person(self, group_id: str, person_id: str) -> None:
        with self.lock:
            g = self.group(group_id)
            p = self.person(g, person_id)
            for f in p.faces.values():
                g.pool.release(f.slot)
            del g.persons[person_id]
            g.note_removed()
            self._log({"op": "person_del", "g": group_id, "p": person_id})

    def list_persons(self, group_id: str, start: str | None, top: int) -> list[Person]:
        with self.lock:
            g = self.group(group_id)
            ids = g.sorted_ids()
            i = bisect.bisect_right(ids, start) if start else 0
            return [g.persons[x] for x in ids[i:i + top]]

    # --- faces ---------------------------------------------------------------------------------
    def add_face(self, group_id: str, person_id: str, descriptor: np.ndarray, user_data: str | None) -> str:
        with self.lock:
            g = self.group(group_id)
            p = self.person(g, person_id)
            if len(p.faces) >= 248:
                raise ApiError(403, "QuotaExceeded", "Persisted face number reached limit.")
            fid = str(uuid.uuid4())
            p.faces[fid] = Face(fid, user_data, g.pool.add(descriptor))
            self._log({"op": "face_put", "g": group_id, "p": person_id, "f": fid, "userData": user_data,
                       "d": _b64(descriptor)})
            return fid

    def face(self, group_id: str, person_id: str, face_id: str) -> Face:
        p = self.person(self.group(group_id), person_id)
        f = p.faces.get(face_id)
        if f is None:
            raise ApiError(404, "PersistedFaceNotFound", "Persisted face is not found.")
        return f

    def update_face(self, group_id: str, person_id: str, face_id: str, user_data: str | None) -> None:
        with self.lock:
            self.face(group_id, person_id, face_id).user_data = user_data
            self._log({"op": "face_patch", "g": group_id, "p": person_id, "f": face_id, "userData": user_data})

    def delete_face(self, group_id: str, person_id: str, face_id: str) -> None:
        with self.lock:
            g = self.group(group_id)
            f = self.face(group_id, person_id, face_id)
            g.pool.release(f.slot)
            del g.persons[person_id].faces[face_id]
            self._log({"op": "face_del", "g": group_id, "p": person_id, "f": face_id})

    def person_descriptors(self, group_id: str, person_id: str) -> np.ndarray:
        """Current descriptors of one person (verify uses the live faces, as the service does)."""
        with self.lock:
            g = self.group(group_id, status=404)
            p = self.person(g, person_id)
            if not p.faces:
                raise ApiError(404, "PersistedFaceNotFound", "No persisted face of the person is found.")
            return g.pool.arr[[f.slot for f in p.faces.values()]].copy()

    # --- training ------------------------------------------------------------------------------
    def _gather(self, g: Group) -> tuple[np.ndarray, np.ndarray, list[str]]:
        slots: list[int] = []
        starts: list[int] = []
        pids: list[str] = []
        for pid, p in g.persons.items():
            if not p.faces:
                continue  # persons without faces are ignored (they cannot be identified)
            starts.append(len(slots))
            pids.append(pid)
            slots.extend(f.slot for f in p.faces.values())
        matrix = g.pool.arr[slots] if slots else np.zeros((0, DIM), dtype=np.float32)
        return matrix, np.asarray(starts, dtype=np.int64), pids

    def start_training(self, group_id: str) -> str:
        """Start (or join) a training; returns the operation id. The snapshot is taken now."""
        with self.lock:
            g = self.group(group_id)
            t = g.training
            if t.status == "running" and t.operation_id:
                return t.operation_id
            matrix, starts, pids = self._gather(g)
            op_id = str(uuid.uuid4())
            ts = now_iso()
            g.training = Training("running", ts, ts, t.last_success, None, op_id)
            self.operations[op_id] = {"operationId": op_id, "status": "running", "createdTime": ts,
                                      "lastActionTime": ts, "finishedTime": None, "message": None,
                                      "groupId": group_id}
            self._log({"op": "training", "g": group_id, "t": self._tjson(g.training)})
        delay = self.train_base_s + self.train_per_face_s * len(matrix)
        th = threading.Thread(target=self._finish_training, args=(g, op_id, matrix, starts, pids, delay),
                              name=f"train-{group_id}", daemon=True)
        th.start()
        return op_id

    @staticmethod
    def _tjson(t: Training) -> dict[str, Any]:
        return {"status": t.status, "created": t.created, "lastAction": t.last_action,
                "lastSuccess": t.last_success, "message": t.message}

    def _finish_training(self, g: Group, op_id: str, matrix: np.ndarray, starts: np.ndarray,
                         pids: list[str], delay: float) -> None:
        snap = Snapshot.build(matrix, starts, pids)
        time.sleep(max(0.0, delay))
        snap_name: str | None = None
        serial = 0
        if self.data_dir is not None:
            with self.lock:
                self._snap_serial += 1
                serial = self._snap_serial
                snap_name = f"snap-{g.group_id}-{serial}.npz"
                self._pending_snaps.add(snap_name)
            _atomic_write(self.data_dir / snap_name, lambda fh: np.savez(
                fh, matrix=snap.matrix, starts=snap.starts, personIds=np.asarray(pids, dtype="U64")))
        with self.lock:
            if snap_name:
                self._pending_snaps.discard(snap_name)
            if self.groups.get(g.group_id) is not g or g.training.operation_id != op_id:
                return  # group deleted (or reset) meanwhile
            ts = now_iso()
            g.snapshot = snap
            g.snapshot_file = snap_name or g.snapshot_file
            g.training = Training("succeeded", g.training.created, ts, ts, None, op_id)
            op = self.operations.get(op_id)
            if op is not None:
                op.update(status="succeeded", lastActionTime=ts, finishedTime=ts)
            self._log({"op": "training", "g": g.group_id, "t": self._tjson(g.training), "snap": snap_name,
                       "serial": serial})

    def wait_training(self, group_id: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.group(group_id).training.status
            if st != "running":
                return st
            time.sleep(0.005)
        return "running"

    def identify(self, group_id: str, queries: np.ndarray, max_candidates: int,
                 threshold: float) -> list[list[tuple[str, float]]]:
        g = self.group(group_id, status=400)
        snap = g.snapshot
        if snap is None:
            if g.training.status == "running":
                raise ApiError(409, "LargePersonGroupTrainingNotFinished",
                               "Large person group training is not finished.")
            raise ApiError(400, "LargePersonGroupNotTrained", "Large person group not trained.")
        return snap.identify(queries, max_candidates, threshold)
