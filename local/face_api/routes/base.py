"""What every route module builds on: the parsed :class:`Request` and the :class:`Response`, the
:data:`Route` entry of the route table, the path patterns of the LargePersonGroup tree, and
:class:`EmulatorState`, the common base of the route mixins.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from local.face_api.face_ids import FaceIdCache
from local.face_api.model import MODEL, Detection, InvalidImageError, decode_image, synthetic_detection
from local.face_api.routes.validation import bad
from local.face_api.store import ApiError, Store

MIN_IMAGE, MAX_IMAGE = 1024, 6 * 1024 * 1024


@dataclass
class Request:
    method: str
    path: str  # below /face/<ver>
    version: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    host: str

    def json(self) -> dict[str, Any]:
        if not self.body:
            raise bad("Request body is empty or invalid.")
        try:
            data = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad("Invalid request body.") from exc
        if not isinstance(data, dict):
            raise bad("Invalid request body.")
        return data


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


#: (HTTP method, path pattern below /face/<ver>, handler). The handler is called with the request and the
#: pattern's groups, the ids in the path, in order.
Route = tuple[str, str, Callable[..., Response]]

SEG = r"([^/]+)"  # one path segment, captured; "{}" in the per-operation stats
GROUP = rf"/largepersongroups/{SEG}"
PERSON = rf"{GROUP}/persons/{SEG}"
PERSISTED_FACE = rf"{PERSON}/persistedfaces/{SEG}"


class EmulatorState:
    """The state the route mixins share. Declared here so each mixin type-checks on its own; the values are set
    by ``Emulator.__init__`` (local/face_api/server.py), the one class that inherits every mixin."""

    store: Store
    models: tuple[str, ...]  # recognition models served: the built-in ones and --extra-models
    face_ids: FaceIdCache
    config: dict[str, Any]  # the /_emulator/config knobs, read and written under _cfg_lock
    _cfg_lock: threading.Lock
    _stats_lock: threading.Lock
    train_accepted: int  # counters behind /_emulator/stats, under _stats_lock (see KnobRoutes._reset_stats)
    training_ops: set[str]

    # --- images: add-face and detect read and decode them the same way ----------------------------
    @staticmethod
    def _image_bytes(req: Request) -> bytes:
        ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
        data = req.body
        if ctype == "application/json":
            url = req.json().get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ApiError(400, "InvalidURL", "Invalid image URL.")
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    data = r.read(MAX_IMAGE + 1)
            except OSError as exc:
                raise ApiError(400, "InvalidURL", "Failed to download image from the specified URL.") from exc
        if len(data) < MIN_IMAGE:
            raise ApiError(400, "InvalidImageSize", "Image size is too small.")
        if len(data) > MAX_IMAGE:
            raise ApiError(400, "InvalidImageSize", "Image size is too big.")
        return data

    def _synthetic(self) -> bool:
        return bool(self.config.get("synthetic"))

    def _detect_faces(self, data: bytes, *, descriptors: bool, landmarks68: bool
                      ) -> tuple[list[Detection], np.ndarray | None]:
        if self._synthetic():
            return [synthetic_detection(data)], None
        try:
            img = decode_image(data)
        except InvalidImageError as exc:
            raise ApiError(400, "InvalidImage", "Decoding error, image format unsupported.") from exc
        return MODEL.detect(img, descriptors=descriptors, landmarks68=landmarks68), img
