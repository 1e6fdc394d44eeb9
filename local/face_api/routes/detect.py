"""Detect, identify and verify: detect turns an image into faces (a faceId each, in :mod:`local.face_api.face_ids`),
identify and verify compare those faceIds with a group's persons or with each other."""

from __future__ import annotations

from typing import Any

import numpy as np

from local.face_api import quality
from local.face_api.face_ids import FaceIdEntry
from local.face_api.model import Detection, confidence_from_distance, to_model_space
from local.face_api.routes.base import EmulatorState, Request, Response, Route
from local.face_api.routes.validation import bad, check_id, check_model, detection_model, query_bool

DEFAULT_TTL = 86400


class DetectRoutes(EmulatorState):
    def detect_routes(self) -> list[Route]:
        return [
            ("POST", r"/detect", self.detect),
            ("POST", r"/identify", self.identify),
            ("POST", r"/verify", self.verify),
        ]

    def detect(self, req: Request) -> Response:
        q = req.query
        return_id = query_bool(q, "returnFaceId", True)
        return_landmarks = query_bool(q, "returnFaceLandmarks", False)
        return_model = query_bool(q, "returnRecognitionModel", False)
        rec_model = check_model(q.get("recognitionModel") or "recognition_01", self.models)
        det_model = detection_model(q.get("detectionModel"))
        try:
            ttl = int(q.get("faceIdTimeToLive") or DEFAULT_TTL)
        except ValueError as exc:
            raise bad("Invalid 'faceIdTimeToLive'.") from exc
        if not 60 <= ttl <= 86400:
            raise bad("'faceIdTimeToLive' must be in [60, 86400].")
        attrs = [a.strip() for a in (q.get("returnFaceAttributes") or "").split(",") if a.strip()]
        for a in attrs:
            if a not in quality.ALL_ATTRIBUTES:
                raise bad(f"Invalid returnFaceAttributes: '{a}'.")
            if a not in quality.SUPPORTED[det_model]:
                raise bad(f"Attribute '{a}' is not supported by detection model '{det_model}'.")
        if "qualityForRecognition" in attrs and rec_model in ("recognition_01", "recognition_02"):
            raise bad("'qualityForRecognition' requires recognition_03 or recognition_04.")
        if return_landmarks and det_model == "detection_02":
            raise bad("Face landmarks are not supported by detection model 'detection_02'.")
        data = self._image_bytes(req)
        need_68 = bool(attrs) or return_landmarks
        dets, img = self._detect_faces(data, descriptors=return_id or bool(attrs), landmarks68=need_68)
        out = []
        for d in dets:
            item: dict[str, Any] = {}
            if return_id:
                assert d.raw_descriptor is not None
                item["faceId"] = self.face_ids.put(to_model_space(d.raw_descriptor, rec_model), rec_model, ttl)
            if return_model:
                item["recognitionModel"] = rec_model
            item["faceRectangle"] = {"top": d.top, "left": d.left, "width": d.width, "height": d.height}
            if return_landmarks:
                item["faceLandmarks"] = _landmarks(d)
            if attrs:
                if img is None:  # synthetic: a clean frontal face
                    m: dict[str, Any] = {"faceSide": d.width, "insideFraction": 1.0, "blur": 0.0, "noise": 0.0, "exposure": 0.5,
                         "pitch": 0.0, "roll": 0.0, "yaw": 0.0}
                    m["quality"] = quality.quality_for_recognition(m)
                else:
                    m = quality.full_measure(d, img.shape, d.chip, d.landmarks68)
                item["faceAttributes"] = quality.attributes(m, attrs)
            out.append(item)
        return Response(200, out)

    def _face_entry(self, fid: Any, model: str | None = None) -> FaceIdEntry:
        if not isinstance(fid, str):
            raise bad("Face ID is invalid.")
        e = self.face_ids.get(fid)
        if e is None:
            raise bad(f"Face ID {fid} is invalid or has expired.")
        if model is not None and e.model != model:
            raise bad(f"'recognitionModel' is incompatible: the face was detected with '{e.model}', "
                      f"the group uses '{model}'.")
        return e

    def identify(self, req: Request) -> Response:
        body = req.json()
        face_ids = body.get("faceIds")
        if not isinstance(face_ids, list) or not 1 <= len(face_ids) <= 10:
            raise bad("'faceIds' must contain 1 to 10 face ids.")
        gid = body.get("largePersonGroupId")
        if not isinstance(gid, str):
            raise bad("'largePersonGroupId' is required (the emulator supports large person groups only).")
        check_id(gid, "largePersonGroupId")
        k = body.get("maxNumOfCandidatesReturned", 10)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 100:
            raise bad("'maxNumOfCandidatesReturned' must be in [1, 100].")
        thr = body.get("confidenceThreshold")
        thr = 0.5 if thr is None else thr
        if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not 0 <= thr <= 1:
            raise bad("'confidenceThreshold' must be in [0, 1].")
        g = self.store.group(gid, status=400)
        entries = [self._face_entry(f, g.model) for f in face_ids]
        queries = np.stack([e.descriptor for e in entries])
        results = self.store.identify(gid, queries, k, float(thr))
        return Response(200, [{"faceId": f, "candidates": [{"personId": p, "confidence": c} for p, c in r]}
                              for f, r in zip(face_ids, results, strict=False)])

    def verify(self, req: Request) -> Response:
        body = req.json()
        if "faceId1" in body:  # face-to-face
            e1 = self._face_entry(body.get("faceId1"))
            e2 = self._face_entry(body.get("faceId2"), e1.model)
            d = float(np.linalg.norm(e1.descriptor - e2.descriptor))
        else:
            gid = body.get("largePersonGroupId")
            if not isinstance(gid, str):
                raise bad("'largePersonGroupId' is required (the emulator supports large person groups only).")
            pid = body.get("personId")
            if not isinstance(pid, str):
                raise bad("'personId' is required.")
            g = self.store.group(gid)
            e = self._face_entry(body.get("faceId"), g.model)
            descs = self.store.person_descriptors(gid, pid)
            d = float(np.min(np.linalg.norm(descs - e.descriptor[None, :], axis=1)))
        conf = round(float(confidence_from_distance(d)), 5)
        return Response(200, {"isIdentical": conf >= 0.5, "confidence": conf})


# Face's 27 named landmarks, each placed at the mean of some of dlib's 68 points.
_LANDMARKS: dict[str, tuple[int, ...]] = {
    "pupilLeft": (36, 37, 38, 39, 40, 41), "pupilRight": (42, 43, 44, 45, 46, 47), "noseTip": (30,),
    "mouthLeft": (48,), "mouthRight": (54,), "eyebrowLeftOuter": (17,), "eyebrowLeftInner": (21,),
    "eyeLeftOuter": (36,), "eyeLeftTop": (37, 38), "eyeLeftBottom": (40, 41), "eyeLeftInner": (39,),
    "eyebrowRightInner": (22,), "eyebrowRightOuter": (26,), "eyeRightInner": (42,), "eyeRightTop": (43, 44),
    "eyeRightBottom": (46, 47), "eyeRightOuter": (45,), "noseRootLeft": (27, 39), "noseRootRight": (27, 42),
    "noseLeftAlarTop": (31, 29), "noseRightAlarTop": (35, 29), "noseLeftAlarOutTip": (31,),
    "noseRightAlarOutTip": (35,), "upperLipTop": (51,), "upperLipBottom": (62,), "underLipTop": (66,),
    "underLipBottom": (57,),
}


def _landmarks(d: Detection) -> dict[str, dict[str, float]]:
    lm = d.landmarks68
    if lm is None:  # synthetic: a plausible layout inside the rectangle
        cx, cy, s = d.left + d.width / 2, d.top + d.height / 2, d.width
        return {"pupilLeft": {"x": cx - 0.2 * s, "y": cy - 0.1 * s}, "pupilRight": {"x": cx + 0.2 * s, "y": cy - 0.1 * s},
                "noseTip": {"x": cx, "y": cy + 0.05 * s}, "mouthLeft": {"x": cx - 0.15 * s, "y": cy + 0.25 * s},
                "mouthRight": {"x": cx + 0.15 * s, "y": cy + 0.25 * s}}
    return {k: {"x": round(float(lm[list(ix), 0].mean()), 1), "y": round(float(lm[list(ix), 1].mean()), 1)}
            for k, ix in _LANDMARKS.items()}
