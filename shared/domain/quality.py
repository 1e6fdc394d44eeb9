"""The enrollment quality gate: decides whether one detected face is good enough to enroll.

Pure logic (standard library only). The caller runs Face detect (detection_03 with
``headPose,blur,exposure,occlusion,mask,qualityForRecognition``), turns each face into a
:class:`FaceObservation` (usually with :meth:`FaceObservation.from_face_attributes`) and calls
:func:`evaluate`.

Rules (defaults follow Microsoft's enrollment sample, ``QUALITY_FILTER_SETTINGS``, plus the Face
docs' advice that only ``qualityForRecognition == high`` is recommended for enrollment):

* zero faces -> ``noFace``; more than one -> ``multipleFaces``. Both always reject, even with an
  admin override: an override cannot say *which* face to enroll.
* exactly one face: every threshold is checked and *all* failures are reported, in the fixed order
  of :data:`CODES`, without duplicates.
* bounds are inclusive: ``area >= min_face_area``, ``|yaw| <= max_yaw``, ``blur <= max_blur``,
  ``min_exposure <= exposure <= max_exposure`` (as in the sample, which rejects ``< 0.25`` or ``> 0.75``).
* an attribute the service did not return (``None``) is *unknown* and is not a failure: detection
  models differ in what they return (detection_02 returns no attributes; ``qualityForRecognition``
  needs recognition_03/04). The recognition-quality check is what catches a poor photo whose other
  attributes are missing; set ``min_recognition_quality=None`` only to switch that check off.
* a value that is present but not a number (NaN) fails its check (fail closed); an unrecognised
  ``qualityForRecognition`` string counts as below any minimum.
* ``mask`` passes only when ``None`` or ``"noMask"`` (``faceMask``, ``otherMaskOrOcclusion`` and
  ``uncertain`` reject).
* ``override=True`` (an admin granted it) skips the thresholds: the verdict is accepted and
  ``overridden`` is True iff at least one threshold failed. The failed codes are still listed so the
  audit records exactly what was overridden.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CODES",
    "REASONS",
    "RECOGNITION_QUALITY_LEVELS",
    "FaceObservation",
    "Thresholds",
    "Verdict",
    "evaluate",
]

NO_FACE = "noFace"
MULTIPLE_FACES = "multipleFaces"
FACE_TOO_SMALL = "faceTooSmall"
HEAD_TURNED = "headTurned"
HEAD_PITCHED = "headPitched"
HEAD_TILTED = "headTilted"
BLURRED = "blurred"
UNDER_EXPOSED = "underExposed"
OVER_EXPOSED = "overExposed"
OCCLUDED = "occluded"
MASKED = "masked"
LOW_QUALITY = "lowQuality"

#: Every code, in the order they are reported.
CODES: tuple[str, ...] = (
    NO_FACE, MULTIPLE_FACES, FACE_TOO_SMALL, HEAD_TURNED, HEAD_PITCHED, HEAD_TILTED, BLURRED,
    UNDER_EXPOSED, OVER_EXPOSED, OCCLUDED, MASKED, LOW_QUALITY,
)

#: Code -> one sentence the person can act on.
REASONS: Mapping[str, str] = {
    NO_FACE: "We could not find a face in the photo. Make sure your face is visible and well lit.",
    MULTIPLE_FACES: "Make sure only you are in the photo.",
    FACE_TOO_SMALL: "Move closer to the camera.",
    HEAD_TURNED: "Turn your face toward the camera.",
    HEAD_PITCHED: "Look straight into the camera, not up or down.",
    HEAD_TILTED: "Keep your head level.",
    BLURRED: "Hold the camera still; the photo is blurred.",
    UNDER_EXPOSED: "Find more light; the photo is too dark.",
    OVER_EXPOSED: "Move away from bright light; the photo is too bright.",
    OCCLUDED: "Remove anything covering your face (hand, hair, scarf).",
    MASKED: "Take off your mask or anything else covering your nose and mouth.",
    LOW_QUALITY: "Take a sharper, well-lit photo looking straight into the camera.",
}

#: qualityForRecognition values, lowest first.
RECOGNITION_QUALITY_LEVELS: tuple[str, ...] = ("low", "medium", "high")
_RANK = {level: i for i, level in enumerate(RECOGNITION_QUALITY_LEVELS)}
_ALLOWED_MASKS = frozenset({"nomask"})


def _number(value: Any) -> float | None:
    """A JSON number as float; anything else (missing, bool, string) is unknown."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: Any) -> int:
    n = _number(value)
    if n is None or not math.isfinite(n):
        return 0
    return int(n)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class FaceObservation:
    """What detect said about one face. ``None`` means the service did not say."""

    width: int
    height: int
    yaw: float | None = None
    pitch: float | None = None
    roll: float | None = None
    blur: float | None = None  # 0..1, larger is blurrier
    exposure: float | None = None  # 0..1, [0.25, 0.75) is good
    forehead_occluded: bool = False
    eye_occluded: bool = False
    mouth_occluded: bool = False
    mask: str | None = None  # noMask | faceMask | otherMaskOrOcclusion | uncertain
    recognition_quality: str | None = None  # low | medium | high

    @classmethod
    def from_face_attributes(cls, rectangle: Mapping[str, Any] | None, attributes: Mapping[str, Any] | None) -> FaceObservation:
        """Builds an observation from the service's ``faceRectangle`` and ``faceAttributes`` JSON.

        Tolerant: missing keys or values of the wrong type become "unknown" (``None``/``False``);
        a missing rectangle size becomes 0 and so fails the face-size check.
        """
        rect = _mapping(rectangle)
        attrs = _mapping(attributes)
        pose = _mapping(attrs.get("headPose"))
        occlusion = _mapping(attrs.get("occlusion"))
        return cls(
            width=_int(rect.get("width")),
            height=_int(rect.get("height")),
            yaw=_number(pose.get("yaw")),
            pitch=_number(pose.get("pitch")),
            roll=_number(pose.get("roll")),
            blur=_number(_mapping(attrs.get("blur")).get("value")),
            exposure=_number(_mapping(attrs.get("exposure")).get("value")),
            forehead_occluded=occlusion.get("foreheadOccluded") is True,
            eye_occluded=occlusion.get("eyeOccluded") is True,
            mouth_occluded=occlusion.get("mouthOccluded") is True,
            mask=_text(_mapping(attrs.get("mask")).get("type")),
            recognition_quality=_text(attrs.get("qualityForRecognition")),
        )


@dataclass(frozen=True)
class Thresholds:
    """Limits of the gate. ``min_recognition_quality`` is normalised to lower case; ``None`` turns that check off.

    No defaults here: they are the ``QUALITY_*`` settings (shared/settings.py, ``Settings().quality``)."""

    min_face_area: int
    max_yaw: float
    max_pitch: float
    max_roll: float
    max_blur: float
    min_exposure: float
    max_exposure: float
    min_recognition_quality: str | None

    def __post_init__(self) -> None:
        level = self.min_recognition_quality
        if level is not None:
            level = level.strip().lower() or None
            if level is not None and level not in _RANK:
                raise ValueError(f"min_recognition_quality must be one of {', '.join(RECOGNITION_QUALITY_LEVELS)} or None")
            object.__setattr__(self, "min_recognition_quality", level)
        numbers = (self.min_face_area, self.max_yaw, self.max_pitch, self.max_roll, self.max_blur,
                   self.min_exposure, self.max_exposure)
        if any(math.isnan(n) or n < 0 for n in numbers):
            raise ValueError("quality thresholds must be non-negative numbers")
        if self.min_exposure > self.max_exposure:
            raise ValueError("min_exposure must not exceed max_exposure")


@dataclass(frozen=True)
class Verdict:
    """The gate's decision. ``codes`` and ``reasons`` are parallel (one reason per code)."""

    accepted: bool
    codes: tuple[str, ...]
    reasons: tuple[str, ...]
    overridden: bool = False


def _verdict(accepted: bool, codes: Sequence[str], *, overridden: bool = False) -> Verdict:
    present = set(codes)
    ordered = tuple(code for code in CODES if code in present)
    return Verdict(accepted=accepted, codes=ordered, reasons=tuple(REASONS[c] for c in ordered), overridden=overridden)


def _exceeds(value: float | None, limit: float) -> bool:
    """True when a known value is outside ``[-limit, limit]``; NaN fails, unknown passes."""
    return value is not None and not abs(value) <= limit


def _threshold_failures(face: FaceObservation, t: Thresholds) -> list[str]:
    failed: list[str] = []
    if not face.width * face.height >= t.min_face_area:
        failed.append(FACE_TOO_SMALL)
    if _exceeds(face.yaw, t.max_yaw):
        failed.append(HEAD_TURNED)
    if _exceeds(face.pitch, t.max_pitch):
        failed.append(HEAD_PITCHED)
    if _exceeds(face.roll, t.max_roll):
        failed.append(HEAD_TILTED)
    if face.blur is not None and not face.blur <= t.max_blur:
        failed.append(BLURRED)
    if face.exposure is not None:
        if not face.exposure >= t.min_exposure:  # NaN lands here
            failed.append(UNDER_EXPOSED)
        elif face.exposure > t.max_exposure:
            failed.append(OVER_EXPOSED)
    if face.forehead_occluded or face.eye_occluded or face.mouth_occluded:
        failed.append(OCCLUDED)
    if face.mask is not None and face.mask.strip().lower() not in _ALLOWED_MASKS:
        failed.append(MASKED)
    if t.min_recognition_quality is not None and face.recognition_quality is not None:
        rank = _RANK.get(face.recognition_quality.strip().lower(), -1)
        if rank < _RANK[t.min_recognition_quality]:
            failed.append(LOW_QUALITY)
    return failed


def evaluate(faces: Sequence[FaceObservation], thresholds: Thresholds, *, override: bool = False) -> Verdict:
    """Judges the faces detected in one photo. See the module docstring for the rules."""
    if len(faces) == 0:
        return _verdict(False, (NO_FACE,))
    if len(faces) > 1:
        return _verdict(False, (MULTIPLE_FACES,))
    failed = _threshold_failures(faces[0], thresholds)
    if override:
        return _verdict(True, failed, overridden=bool(failed))
    return _verdict(not failed, failed)
