"""shared.domain.quality: the enrollment quality gate."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain import quality
from shared.domain.quality import CODES, REASONS, FaceObservation, Thresholds, Verdict, evaluate
from shared.settings import Settings

pytestmark = pytest.mark.unit

T = Settings().quality
GOOD = FaceObservation(width=200, height=200, yaw=0.0, pitch=0.0, roll=0.0, blur=0.1, exposure=0.5,
                       mask="noMask", recognition_quality="high")


def codes(face: FaceObservation, thresholds: Thresholds = T) -> tuple[str, ...]:
    return evaluate([face], thresholds).codes


# --- face count ----------------------------------------------------------------------------------

def test_a_good_face_is_accepted() -> None:
    assert evaluate([GOOD], T) == Verdict(accepted=True, codes=(), reasons=(), overridden=False)


def test_no_face_is_rejected() -> None:
    verdict = evaluate([], T)
    assert verdict == Verdict(False, ("noFace",), (REASONS["noFace"],))
    assert verdict.reasons == ("We could not find a face in the photo. Make sure your face is visible and well lit.",)


def test_several_faces_are_rejected() -> None:
    verdict = evaluate([GOOD, GOOD], T)
    assert verdict == Verdict(False, ("multipleFaces",), ("Make sure only you are in the photo.",))


@pytest.mark.parametrize("faces", [[], [GOOD, GOOD], [GOOD, GOOD, GOOD]])
def test_override_never_applies_to_face_count(faces: list[FaceObservation]) -> None:
    verdict = evaluate(faces, T, override=True)
    assert not verdict.accepted and not verdict.overridden


def test_multiple_faces_reports_only_the_count_even_if_faces_are_bad() -> None:
    bad = replace(GOOD, width=1, blur=0.9)
    assert evaluate([bad, bad], T).codes == ("multipleFaces",)


def test_accepts_any_sequence() -> None:
    assert evaluate((GOOD,), T).accepted


# --- each threshold, with its boundary -----------------------------------------------------------

def test_face_area_boundary() -> None:
    assert codes(replace(GOOD, width=100, height=100)) == ()
    assert codes(replace(GOOD, width=100, height=99)) == ("faceTooSmall",)
    assert codes(replace(GOOD, width=0, height=0)) == ("faceTooSmall",)


@pytest.mark.parametrize(("attribute", "limit", "code"), [
    ("yaw", 35.0, "headTurned"), ("pitch", 35.0, "headPitched"), ("roll", 20.0, "headTilted"),
])
def test_head_pose_boundaries_both_directions(attribute: str, limit: float, code: str) -> None:
    for value in (limit, -limit, 0.0):
        change: dict[str, Any] = {attribute: value}
        assert codes(replace(GOOD, **change)) == ()
    for value in (limit + 0.01, -limit - 0.01, 180.0, -180.0):
        change = {attribute: value}
        assert codes(replace(GOOD, **change)) == (code,)


def test_blur_boundary() -> None:
    assert codes(replace(GOOD, blur=0.4)) == ()
    assert codes(replace(GOOD, blur=0.41)) == ("blurred",)


def test_exposure_boundaries() -> None:
    assert codes(replace(GOOD, exposure=0.25)) == ()
    assert codes(replace(GOOD, exposure=0.75)) == ()
    assert codes(replace(GOOD, exposure=0.2499)) == ("underExposed",)
    assert codes(replace(GOOD, exposure=0.7501)) == ("overExposed",)
    assert codes(replace(GOOD, exposure=0.0)) == ("underExposed",)
    assert codes(replace(GOOD, exposure=1.0)) == ("overExposed",)


@pytest.mark.parametrize("part", ["forehead_occluded", "eye_occluded", "mouth_occluded"])
def test_any_occlusion_rejects(part: str) -> None:
    change: dict[str, Any] = {part: True}
    assert codes(replace(GOOD, **change)) == ("occluded",)


def test_several_occlusions_give_one_code() -> None:
    face = replace(GOOD, forehead_occluded=True, eye_occluded=True, mouth_occluded=True)
    assert codes(face) == ("occluded",)


@pytest.mark.parametrize(("mask", "expected"), [
    (None, ()), ("noMask", ()), ("faceMask", ("masked",)), ("otherMaskOrOcclusion", ("masked",)),
    ("uncertain", ("masked",)), ("somethingNew", ("masked",)),
])
def test_mask(mask: str | None, expected: tuple[str, ...]) -> None:
    assert codes(replace(GOOD, mask=mask)) == expected


@pytest.mark.parametrize(("level", "minimum", "ok"), [
    ("high", "high", True), ("medium", "high", False), ("low", "high", False),
    ("high", "medium", True), ("medium", "medium", True), ("low", "medium", False),
    ("low", "low", True), ("High", "high", True), ("bogus", "low", False),
])
def test_recognition_quality_ordering(level: str, minimum: str, ok: bool) -> None:
    face = replace(GOOD, recognition_quality=level)
    assert codes(face, replace(T, min_recognition_quality=minimum)) == (() if ok else ("lowQuality",))


def test_recognition_quality_check_can_be_switched_off() -> None:
    assert codes(replace(GOOD, recognition_quality="low"), replace(T, min_recognition_quality=None)) == ()


def test_unknown_attributes_are_not_failures() -> None:
    bare = FaceObservation(width=150, height=150)
    assert evaluate([bare], T).accepted


def test_nan_values_fail_closed() -> None:
    nan = math.nan
    face = replace(GOOD, yaw=nan, pitch=nan, roll=nan, blur=nan, exposure=nan)
    assert codes(face) == ("headTurned", "headPitched", "headTilted", "blurred", "underExposed")


def test_custom_thresholds_are_used() -> None:
    strict = Thresholds(min_face_area=50000, max_yaw=10, max_pitch=10, max_roll=5, max_blur=0.1,
                        min_exposure=0.4, max_exposure=0.6, min_recognition_quality="high")
    face = replace(GOOD, yaw=11, pitch=-11, roll=6, blur=0.2, exposure=0.39)
    assert codes(face, strict) == ("faceTooSmall", "headTurned", "headPitched", "headTilted", "blurred", "underExposed")


# --- reporting -----------------------------------------------------------------------------------

WORST = FaceObservation(width=10, height=10, yaw=90, pitch=-90, roll=45, blur=0.9, exposure=0.05,
                        forehead_occluded=True, eye_occluded=True, mouth_occluded=True, mask="faceMask",
                        recognition_quality="low")


def test_all_failures_are_reported_in_stable_order() -> None:
    verdict = evaluate([WORST], T)
    assert not verdict.accepted
    assert verdict.codes == ("faceTooSmall", "headTurned", "headPitched", "headTilted", "blurred", "underExposed",
                             "occluded", "masked", "lowQuality")
    assert verdict.reasons == tuple(REASONS[c] for c in verdict.codes)


def test_over_exposed_is_reported_in_its_slot() -> None:
    assert codes(replace(WORST, exposure=0.95))[4:6] == ("blurred", "overExposed")


def test_every_code_has_an_actionable_sentence() -> None:
    assert set(REASONS) == set(CODES)
    assert len(set(REASONS.values())) == len(REASONS)
    for reason in REASONS.values():
        assert reason[0].isupper() and reason.endswith(".") and len(reason) > 15


def test_known_reason_wording() -> None:
    assert REASONS["faceTooSmall"] == "Move closer to the camera."
    assert REASONS["headTurned"] == "Turn your face toward the camera."
    assert REASONS["blurred"] == "Hold the camera still; the photo is blurred."
    assert REASONS["underExposed"] == "Find more light; the photo is too dark."
    assert REASONS["headTilted"] == "Keep your head level."


def test_verdict_and_inputs_are_immutable() -> None:
    verdict = evaluate([GOOD], T)
    with pytest.raises(AttributeError):
        verdict.accepted = False  # type: ignore[misc]
    with pytest.raises(AttributeError):
        GOOD.width = 1  # type: ignore[misc]


# --- override ------------------------------------------------------------------------------------

def test_override_accepts_a_failing_face_and_keeps_the_codes_for_the_audit() -> None:
    verdict = evaluate([WORST], T, override=True)
    assert verdict.accepted and verdict.overridden
    assert verdict.codes == evaluate([WORST], T).codes
    assert verdict.reasons == evaluate([WORST], T).reasons


def test_override_on_a_good_face_is_not_marked_overridden() -> None:
    assert evaluate([GOOD], T, override=True) == Verdict(True, (), (), overridden=False)


def test_override_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        evaluate([GOOD], T, True)  # type: ignore[call-arg]


# --- thresholds ----------------------------------------------------------------------------------

def test_threshold_defaults_follow_the_sample_and_the_docs() -> None:
    assert Thresholds(min_face_area=10000, max_yaw=35.0, max_pitch=35.0, max_roll=20.0, max_blur=0.4,
                      min_exposure=0.25, max_exposure=0.75, min_recognition_quality="high") == T


def test_threshold_quality_is_normalised() -> None:
    assert replace(T, min_recognition_quality=" Medium ").min_recognition_quality == "medium"
    assert replace(T, min_recognition_quality="").min_recognition_quality is None


@pytest.mark.parametrize("kwargs", [
    {"min_recognition_quality": "excellent"}, {"min_exposure": 0.8, "max_exposure": 0.2}, {"max_yaw": -1},
    {"max_blur": math.nan}, {"min_face_area": -5},
])
def test_invalid_thresholds_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        replace(T, **kwargs)


# --- parsing the service's JSON ------------------------------------------------------------------

FACE_JSON: dict[str, Any] = {
    "faceRectangle": {"top": 10, "left": 20, "width": 180, "height": 210},
    "faceAttributes": {
        "headPose": {"pitch": -3.5, "roll": 2.1, "yaw": 12},
        "blur": {"blurLevel": "low", "value": 0.06},
        "exposure": {"exposureLevel": "goodExposure", "value": 0.67},
        "occlusion": {"foreheadOccluded": False, "eyeOccluded": True, "mouthOccluded": False},
        "mask": {"type": "noMask", "noseAndMouthCovered": False},
        "glasses": "NoGlasses",
        "qualityForRecognition": "medium",
    },
}


def test_from_face_attributes_reads_everything() -> None:
    face = FaceObservation.from_face_attributes(FACE_JSON["faceRectangle"], FACE_JSON["faceAttributes"])
    assert face == FaceObservation(width=180, height=210, yaw=12.0, pitch=-3.5, roll=2.1, blur=0.06, exposure=0.67,
                                   forehead_occluded=False, eye_occluded=True, mouth_occluded=False, mask="noMask",
                                   recognition_quality="medium")
    assert isinstance(face.yaw, float)
    assert evaluate([face], T).codes == ("occluded", "lowQuality")


def test_from_face_attributes_tolerates_missing_keys() -> None:
    assert FaceObservation.from_face_attributes({}, {}) == FaceObservation(width=0, height=0)
    assert FaceObservation.from_face_attributes(None, None) == FaceObservation(width=0, height=0)
    partial = FaceObservation.from_face_attributes({"width": 120, "height": 130}, {"headPose": {"yaw": 5}})
    assert partial == FaceObservation(width=120, height=130, yaw=5.0)


def test_from_face_attributes_ignores_wrong_types() -> None:
    attrs = {"headPose": "sideways", "blur": {"value": "0.3"}, "exposure": {"value": True}, "occlusion": [],
             "mask": {"type": 7}, "qualityForRecognition": 3}
    face = FaceObservation.from_face_attributes({"width": "100", "height": 100.9}, attrs)
    assert face == FaceObservation(width=0, height=100)


def test_from_face_attributes_occlusion_must_be_true_booleans() -> None:
    attrs = {"occlusion": {"foreheadOccluded": "false", "eyeOccluded": 1, "mouthOccluded": True}}
    face = FaceObservation.from_face_attributes({"width": 100, "height": 100}, attrs)
    assert (face.forehead_occluded, face.eye_occluded, face.mouth_occluded) == (False, False, True)


def test_module_is_standard_library_only() -> None:
    import ast
    import sys
    from pathlib import Path

    tree = ast.parse(Path(quality.__file__).read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert all(m is not None and (m == "__future__" or m.split(".")[0] in sys.stdlib_module_names) for m in modules)


# --- properties ----------------------------------------------------------------------------------

maybe_float = st.none() | st.floats(-200, 200, allow_nan=False)
unit = st.none() | st.floats(0, 1)
faces = st.builds(
    FaceObservation,
    width=st.integers(0, 500), height=st.integers(0, 500), yaw=maybe_float, pitch=maybe_float, roll=maybe_float,
    blur=unit, exposure=unit, forehead_occluded=st.booleans(), eye_occluded=st.booleans(),
    mouth_occluded=st.booleans(),
    mask=st.sampled_from([None, "noMask", "faceMask", "otherMaskOrOcclusion", "uncertain"]),
    recognition_quality=st.sampled_from([None, "low", "medium", "high"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(faces, max_size=4), st.booleans())
def test_verdict_invariants(observed: list[FaceObservation], override: bool) -> None:
    verdict = evaluate(observed, T, override=override)
    assert len(verdict.codes) == len(verdict.reasons) == len(set(verdict.codes))
    assert list(verdict.codes) == sorted(verdict.codes, key=CODES.index)
    assert verdict.reasons == tuple(REASONS[c] for c in verdict.codes)
    if len(observed) != 1:
        assert not verdict.accepted and not verdict.overridden and len(verdict.codes) == 1
    elif override:
        assert verdict.accepted and verdict.overridden == bool(verdict.codes)
    else:
        assert verdict.accepted == (not verdict.codes) and not verdict.overridden
    if verdict.accepted and not verdict.overridden:
        assert verdict.codes == ()


@settings(max_examples=200, deadline=None)
@given(faces)
def test_override_only_changes_acceptance(face: FaceObservation) -> None:
    plain, forced = evaluate([face], T), evaluate([face], T, override=True)
    assert forced.codes == plain.codes
    assert forced.overridden == (not plain.accepted)
