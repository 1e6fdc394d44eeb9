"""The face model behind the emulator: dlib HOG detector, 5/68-point shape predictors and the ResNet
128-d descriptor from the ``dlib-bin`` and ``face-recognition-models`` wheels (nothing downloaded).

Also: image decoding (Pillow, EXIF orientation, first GIF frame, pixel cap), per-recognition-model
descriptor rotations, distance -> confidence calibration, and the synthetic (hash-based) model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

DIM = 128
MAX_PIXELS = 40_000_000  # decompression-bomb cap (real limit: 6 MB file, faces up to 4096 px)
MAX_DETECT_SIDE = 2048  # images are downscaled to this long side for detection (coordinates mapped back)

# Confidence calibration: logistic in the dlib descriptor distance d around THRESHOLD.
# Measured on the shared photos: same identity 0.23-0.44, different >= 0.48 (siblings 0.48-0.53).
THRESHOLD = 0.47
SCALE = 0.035


def confidence_from_distance(d: np.ndarray | float) -> np.ndarray | float:
    """conf = 1 / (1 + exp((d - 0.47) / 0.035)); 0.5 exactly at d = 0.47."""
    return 1.0 / (1.0 + np.exp((np.asarray(d, dtype=np.float64) - THRESHOLD) / SCALE))


def distance_for_confidence(conf: float) -> float:
    """The largest distance whose confidence is >= conf (inverse of the logistic)."""
    if conf <= 0.0:
        return math.inf
    if conf >= 1.0:
        return -math.inf
    return THRESHOLD + SCALE * math.log(1.0 / conf - 1.0)


class InvalidImageError(Exception):
    """The bytes are not an image the service would accept (decode error, bomb, ...)."""


def decode_image(data: bytes) -> np.ndarray:
    """Decode to an RGB uint8 array: EXIF orientation applied, first frame of animations."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise InvalidImageError(f"Image dimensions {w}x{h} exceed the emulator's pixel cap.")
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)
            im.load()
            im2 = ImageOps.exif_transpose(im)
            rgb = im2.convert("RGB")
            return np.asarray(rgb, dtype=np.uint8).copy()
    except InvalidImageError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InvalidImageError(f"Decoding error, image format unsupported: {exc}") from exc


def image_size(data: bytes) -> tuple[int, int] | None:
    """Header-only size (synthetic mode); None when Pillow cannot read it."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
            return (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    except Exception:
        return None


# --- recognition models -------------------------------------------------------------------------
BUILTIN_MODELS = ("recognition_01", "recognition_02", "recognition_03", "recognition_04")
DETECTION_MODELS = ("detection_01", "detection_02", "detection_03")

_rotations: dict[str, np.ndarray] = {}
_rot_lock = threading.Lock()


def rotation_for(model: str) -> np.ndarray:
    """A fixed 128x128 orthogonal matrix seeded by the model name. Distances within one model are
    unchanged; descriptors of two models are unrelated, so they never match each other."""
    with _rot_lock:
        rot = _rotations.get(model)
        if rot is None:
            seed = int.from_bytes(hashlib.sha256(model.encode()).digest()[:8], "big")
            a = np.random.default_rng(seed).standard_normal((DIM, DIM))
            q, r = np.linalg.qr(a)
            rot = (q * np.sign(np.diag(r))).astype(np.float32)
            _rotations[model] = rot
        return rot


def to_model_space(raw: np.ndarray, model: str) -> np.ndarray:
    return (rotation_for(model) @ raw.astype(np.float32)).astype(np.float32)


# --- detections ---------------------------------------------------------------------------------
@dataclass
class Detection:
    left: int
    top: int
    width: int
    height: int
    score: float
    landmarks5: np.ndarray | None = None  # (5, 2) float, image coordinates
    landmarks68: np.ndarray | None = None  # (68, 2)
    raw_descriptor: np.ndarray | None = None  # 128 float32, before the model rotation
    chip: np.ndarray | None = None  # aligned 150x150 RGB face chip (for quality metrics)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def area(self) -> int:
        return self.width * self.height


def _models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("face_recognition_models is not installed (pip install face-recognition-models)")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class DlibModel:
    """Loaded lazily, once per process. dlib's DNN is not re-entrant, so calls are serialised."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False
        self._dlib: Any = None
        self._detector: Any = None
        self._sp5: Any = None
        self._sp68: Any = None
        self._rec: Any = None

    def _load(self) -> None:
        if self._loaded:
            return
        import dlib

        d = _models_dir()
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._sp5 = dlib.shape_predictor(str(d / "shape_predictor_5_face_landmarks.dat"))
        self._sp68 = dlib.shape_predictor(str(d / "shape_predictor_68_face_landmarks.dat"))
        self._rec = dlib.face_recognition_model_v1(str(d / "dlib_face_recognition_resnet_model_v1.dat"))
        self._loaded = True

    def warm_up(self) -> None:
        with self._lock:
            self._load()

    def detect(self, img: np.ndarray, *, upsample: int = 1, descriptors: bool = True,
               landmarks68: bool = False, max_faces: int = 100) -> list[Detection]:
        h, w = img.shape[:2]
        scale = 1.0
        work = img
        if max(h, w) > MAX_DETECT_SIDE:
            scale = MAX_DETECT_SIDE / max(h, w)
            pil = Image.fromarray(img).resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                              Image.Resampling.BILINEAR)
            work = np.asarray(pil)
        with self._lock:
            self._load()
            dlib = self._dlib
            rects, scores, _ = self._detector.run(work, upsample, 0.0)
            out: list[Detection] = []
            for rect, score in zip(rects, scores, strict=False):
                s5 = self._sp5(work, rect)
                det = Detection(
                    left=round(rect.left() / scale), top=round(rect.top() / scale),
                    width=round(rect.width() / scale), height=round(rect.height() / scale),
                    score=float(score),
                    landmarks5=np.array([[p.x, p.y] for p in s5.parts()], dtype=np.float64) / scale,
                )
                if landmarks68:
                    s68 = self._sp68(work, rect)
                    det.landmarks68 = np.array([[p.x, p.y] for p in s68.parts()], dtype=np.float64) / scale
                if descriptors:
                    chip = dlib.get_face_chip(work, s5, size=150, padding=0.25)
                    det.chip = np.asarray(chip)
                    det.raw_descriptor = np.asarray(self._rec.compute_face_descriptor(chip), dtype=np.float32)
                out.append(det)
        out.sort(key=lambda d: d.area, reverse=True)
        return out[:max_faces]

def synthetic_descriptor(data: bytes) -> np.ndarray:
    """Deterministic unit descriptor from the image bytes (synthetic mode)."""
    seed = int.from_bytes(hashlib.sha256(data).digest()[:8], "big")
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def synthetic_detection(data: bytes) -> Detection:
    size = image_size(data) or (640, 480)
    w, h = size
    side = max(1, min(w, h) // 2)
    return Detection(left=(w - side) // 2, top=(h - side) // 2, width=side, height=side, score=1.0,
                     raw_descriptor=synthetic_descriptor(data), extra={"synthetic": True})


MODEL = DlibModel()
