"""The faceIds detect hands out: each names a descriptor for a while (24 h by default), in memory only.

Detect fills it; identify and verify read it; ``/_emulator/reset`` empties it. Unlike ``store.py`` nothing
here is persisted, as on the service, where a faceId is a short-lived handle and not a stored face.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

MAX_FACE_IDS = 1_000_000


@dataclass
class FaceIdEntry:
    descriptor: np.ndarray
    model: str
    expires: float


class FaceIdCache:
    """faceId -> (descriptor, recognition model, expiry). Bounded LRU; expired ids answer 'not found'."""

    def __init__(self, capacity: int = MAX_FACE_IDS) -> None:
        self._d: OrderedDict[str, FaceIdEntry] = OrderedDict()
        self._lock = threading.Lock()
        self.capacity = capacity

    def put(self, descriptor: np.ndarray, model: str, ttl: int) -> str:
        fid = str(uuid.uuid4())
        with self._lock:
            self._d[fid] = FaceIdEntry(descriptor, model, time.monotonic() + ttl)
            while len(self._d) > self.capacity:
                self._d.popitem(last=False)
        return fid

    def get(self, fid: str) -> FaceIdEntry | None:
        with self._lock:
            e = self._d.get(fid)
            if e is None:
                return None
            if e.expires < time.monotonic():
                del self._d[fid]
                return None
            return e

    def clear(self) -> None:
        with self._lock:
            self._d.clear()
