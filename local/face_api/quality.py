"""Face attributes computed from the pixels and landmarks (see docs/face-emulator.md for the
measured values the thresholds were tuned on). Everything here is a heuristic stand-in for the real
service's classifiers; the doc says which attributes are measured and which are not."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from local.face_api.model import Detection

# Generic 3D face points (mm-ish, y up, z towards the camera) for 68-point indices:
# nose tip 30, chin 8, outer eye corners 36/45, mouth corners 48/54.
_POSE_IDX = [30, 8, 36, 45, 48, 54]
_POSE_3D = np.array([
    [0.0, 0.0, 0.0],
    [0.0, -330.0, -65.0],
    [-225.0, 170.0, -135.0],
    [225.0, 170.0, -135.0],
    [-150.0, -150.0, -125.0],
    [150.0, -150.0, -125.0],
])

# Thresholds (tuned on /work/shared/testdata/faces, values in docs/face-emulator.md).
SHARP_NORM = 0.10      # var(Laplacian)/var(grey) on the face chip at/above which blur = 0
BLURRY_NORM = 0.005    # ... at/below which blur = 1 (log scale in between)
NOISE_SIGMA_FLOOR = 1.5  # Immerkaer sigma (grey levels) below which noise = 0
NOISE_SIGMA_SPAN = 12.0  # sigma above the floor that maps to noise = 1
HIGH_MIN_FACE = 64     # face side (px) needed for "high" (detection_03 is rated for 64x64 faces)
MEDIUM_MIN_FACE = 36   # the service's smallest detectable face
HIGH_MAX_YAW, HIGH_MAX_PITCH = 35.0, 30.0
MEDIUM_MAX_YAW, MEDIUM_MAX_PITCH = 55.0, 45.0
SUNGLASSES_EYE_TO_CHEEK = 0.6  # eye band much darker than the cheeks -> sunglasses


def _grey(rgb: np.ndarray) -> np.ndarray:
    f = rgb.astype(np.float64)
    return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]


def laplacian_variance(grey: np.ndarray) -> float:
    g = grey
    lap = (-4.0 * g[1:-1, 1:-1] + g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:])
    return float(lap.var())


def noise_sigma(grey: np.ndarray) -> float:
    """Immerkaer (1996) fast noise variance estimation."""
    g = grey
    h, w = g.shape
    if h < 3 or w < 3:
        return 0.0
    conv = (g[:-2, :-2] - 2 * g[:-2, 1:-1] + g[:-2, 2:]
            - 2 * g[1:-1, :-2] + 4 * g[1:-1, 1:-1] - 2 * g[1:-1, 2:]
            + g[2:, :-2] - 2 * g[2:, 1:-1] + g[2:, 2:])
    return float(math.sqrt(math.pi / 2.0) * np.abs(conv).sum() / (6.0 * (w - 2) * (h - 2)))


def head_pose(lm68: np.ndarray) -> tuple[float, float, float]:
    """(pitch, roll, yaw) in degrees from a scaled-orthographic fit of 6 landmarks to a generic 3D
    face. Conventions: roll > 0 when the head tilts clockwise in the image, yaw > 0 when the face
    turns towards the image's right, pitch > 0 when the head tilts up."""
    pts = lm68[_POSE_IDX].astype(np.float64).copy()
    pts[:, 1] = -pts[:, 1]  # image y down -> y up
    x = pts - pts.mean(axis=0)
    xx = _POSE_3D - _POSE_3D.mean(axis=0)
    m, *_ = np.linalg.lstsq(xx, x, rcond=None)  # (3, 2): x = xx @ m
    mt = m.T  # 2x3
    u, _, vt = np.linalg.svd(mt, full_matrices=False)
    r12 = u @ vt
    r3 = np.cross(r12[0], r12[1])
    r = np.vstack([r12, r3])
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -r[2, 0]))))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    return (round(-pitch, 1), round(-roll, 1), round(yaw, 1))


def _level(value: float, low: float, high: float) -> str:
    return "low" if value < low else "medium" if value < high else "high"


def measure(det: Detection, img_shape: tuple[int, ...], chip: np.ndarray | None,
            lm68: np.ndarray | None) -> dict[str, Any]:
    """Raw measurements for one face (everything later attributes are derived from)."""
    h, w = img_shape[:2]
    out: dict[str, Any] = {"faceSide": min(det.width, det.height)}
    # truncation: how much of the face box lies outside the image
    x0, t, r, b = det.left, det.top, det.left + det.width, det.top + det.height
    inside = max(0, min(r, w) - max(x0, 0)) * max(0, min(b, h) - max(t, 0))
    out["insideFraction"] = inside / max(1, det.area)
    out["cutTop"] = t < 0
    out["cutBottom"] = b > h
    if chip is not None:
        grey = _grey(chip)
        inner = grey[35:125, 30:120]  # the face proper inside the padded 150 px chip
        out["lapVar"] = laplacian_variance(inner)
        out["noiseSigma"] = noise_sigma(inner)
        out["meanLum"] = float(inner.mean() / 255.0)
        eyes = grey[45:70, 30:120]
        cheeks = grey[80:105, 35:115]
        out["eyeToCheek"] = float((eyes.mean() + 1.0) / (cheeks.mean() + 1.0))
        # the chip's black fill marks pixels that came from outside the image
        out["chipOutside"] = float((chip.max(axis=2) == 0).mean())
    if lm68 is not None:
        pitch, roll, yaw = head_pose(lm68)
        out.update(pitch=pitch, roll=roll, yaw=yaw)
        out["eyesOutside"] = bool(((lm68[36:48, 0] < 0) | (lm68[36:48, 0] >= w)
                                   | (lm68[36:48, 1] < 0) | (lm68[36:48, 1] >= h)).any())
        out["mouthOutside"] = bool(((lm68[48:68, 0] < 0) | (lm68[48:68, 0] >= w)
                                    | (lm68[48:68, 1] < 0) | (lm68[48:68, 1] >= h)).any())
    return out


def blur_value(lap_var: float, grey_var: float) -> float:
    norm = lap_var / max(grey_var, 1e-6)
    if norm <= 0:
        return 1.0
    v = math.log10(SHARP_NORM / norm) / math.log10(SHARP_NORM / BLURRY_NORM)
    return round(min(1.0, max(0.0, v)), 2)


def noise_value(sigma: float) -> float:
    return round(min(1.0, max(0.0, (sigma - NOISE_SIGMA_FLOOR) / NOISE_SIGMA_SPAN)), 2)


def exposure_level(v: float) -> str:
    return "underExposure" if v < 0.25 else "goodExposure" if v < 0.75 else "overExposure"


def quality_for_recognition(m: dict[str, Any]) -> str:
    """low | medium | high from face size, truncation, blur, exposure, noise and pose."""
    reasons_low: list[str] = []
    reasons_medium: list[str] = []
    side = m["faceSide"]
    if side < MEDIUM_MIN_FACE:
        reasons_low.append("size")
    elif side < HIGH_MIN_FACE:
        reasons_medium.append("size")
    inside = m["insideFraction"]
    if inside < 0.8:
        reasons_low.append("truncated")
    elif inside < 0.95:
        reasons_medium.append("truncated")
    blur = m.get("blur")
    if blur is not None:
        if blur >= 0.75:
            reasons_low.append("blur")
        elif blur >= 0.25:
            reasons_medium.append("blur")
    exposure = m.get("exposure")
    if exposure is not None:
        if exposure < 0.15 or exposure >= 0.9:
            reasons_low.append("exposure")
        elif exposure < 0.25 or exposure >= 0.75:
            reasons_medium.append("exposure")
    noise = m.get("noise")
    if noise is not None and noise >= 0.3:
        reasons_medium.append("noise")
    yaw, pitch = abs(m.get("yaw", 0.0)), abs(m.get("pitch", 0.0))
    if yaw > MEDIUM_MAX_YAW or pitch > MEDIUM_MAX_PITCH:
        reasons_low.append("pose")
    elif yaw > HIGH_MAX_YAW or pitch > HIGH_MAX_PITCH:
        reasons_medium.append("pose")
    m["qualityReasons"] = reasons_low + reasons_medium
    return "low" if reasons_low else "medium" if reasons_medium else "high"


SUPPORTED = {
    "detection_01": {"accessories", "blur", "exposure", "glasses", "headPose", "noise", "occlusion",
                     "qualityForRecognition"},
    "detection_02": set(),
    "detection_03": {"blur", "exposure", "glasses", "headPose", "mask", "occlusion", "qualityForRecognition"},
}
ALL_ATTRIBUTES = {"accessories", "blur", "exposure", "glasses", "headPose", "noise", "occlusion", "mask",
                  "qualityForRecognition"}


def full_measure(det: Detection, img_shape: tuple[int, ...], chip: np.ndarray | None,
                 lm68: np.ndarray | None) -> dict[str, Any]:
    m = measure(det, img_shape, chip, lm68)
    if chip is not None:
        inner = _grey(chip)[35:125, 30:120]
        m["blur"] = blur_value(m["lapVar"], float(inner.var()))
        m["noise"] = noise_value(m["noiseSigma"])
        m["exposure"] = round(min(1.0, max(0.0, m["meanLum"])), 2)
    m["quality"] = quality_for_recognition(m)
    return m


def attributes(m: dict[str, Any], requested: list[str]) -> dict[str, Any]:
    """The ``faceAttributes`` object for the requested names, from full_measure() output."""
    out: dict[str, Any] = {}
    sunglasses = m.get("eyeToCheek", 1.0) < SUNGLASSES_EYE_TO_CHEEK
    for name in requested:
        if name == "headPose":
            out[name] = {"pitch": m.get("pitch", 0.0), "roll": m.get("roll", 0.0), "yaw": m.get("yaw", 0.0)}
        elif name == "blur":
            v = float(m.get("blur", 0.0))
            out[name] = {"blurLevel": _level(v, 0.25, 0.75), "value": v}
        elif name == "exposure":
            v = float(m.get("exposure", 0.5))
            out[name] = {"exposureLevel": exposure_level(v), "value": v}
        elif name == "noise":
            v = float(m.get("noise", 0.0))
            out[name] = {"noiseLevel": _level(v, 0.3, 0.7), "value": v}
        elif name == "occlusion":
            out[name] = {"foreheadOccluded": bool(m.get("cutTop", False)),
                         "eyeOccluded": bool(m.get("eyesOutside", False)),
                         "mouthOccluded": bool(m.get("mouthOutside", False) or m.get("cutBottom", False))}
        elif name == "mask":
            out[name] = {"type": "noMask", "noseAndMouthCovered": False}
        elif name == "glasses":
            out[name] = "sunglasses" if sunglasses else "noGlasses"
        elif name == "accessories":
            out[name] = [{"type": "glasses", "confidence": 0.9}] if sunglasses else []
        elif name == "qualityForRecognition":
            out[name] = m["quality"]
    return out
