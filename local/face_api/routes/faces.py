"""Persisted-face routes, under a person: add a face from an image, get, update and delete it."""

from __future__ import annotations

from local.face_api.model import Detection, to_model_space
from local.face_api.routes.base import PERSISTED_FACE, PERSON, EmulatorState, Request, Response, Route
from local.face_api.routes.validation import bad, detection_model, text
from local.face_api.store import ApiError


class FaceRoutes(EmulatorState):
    def face_routes(self) -> list[Route]:
        return [
            ("POST", rf"{PERSON}/persistedfaces", self.add_face),
            ("GET", PERSISTED_FACE, self.get_face),
            ("PATCH", PERSISTED_FACE, self.update_face),
            ("DELETE", PERSISTED_FACE, self.delete_face),
        ]

    def add_face(self, req: Request, gid: str, pid: str) -> Response:
        q = req.query
        g = self.store.group(gid)
        self.store.person(g, pid)
        user_data = q.get("userData")
        if user_data is not None and len(user_data) > 1024:
            raise bad("'userData' is too long.")
        detection_model(q.get("detectionModel"))
        target = None
        if q.get("targetFace"):
            try:
                target = [int(x) for x in q["targetFace"].split(",")]
            except ValueError as exc:
                raise bad("Invalid argument targetFace.") from exc
            if len(target) != 4 or target[2] <= 0 or target[3] <= 0:
                raise bad("Invalid argument targetFace.")
        data = self._image_bytes(req)
        dets, _ = self._detect_faces(data, descriptors=True, landmarks68=False)
        if target is not None:
            best = max(dets, key=lambda d: _iou(d, target), default=None)
            if best is None or _iou(best, target) < 0.3:
                raise ApiError(400, "InvalidImage", "No face detected in the target rectangle.")
            chosen = best
        else:
            if not dets:
                raise ApiError(400, "InvalidImage", "No face detected in the image.")
            if len(dets) > 1:
                raise ApiError(400, "InvalidImage", "There is more than 1 face in the image.")
            chosen = dets[0]
        assert chosen.raw_descriptor is not None
        fid = self.store.add_face(gid, pid, to_model_space(chosen.raw_descriptor, g.model), user_data)
        return Response(200, {"persistedFaceId": fid})

    def get_face(self, req: Request, gid: str, pid: str, fid: str) -> Response:
        f = self.store.face(gid, pid, fid)
        return Response(200, {"persistedFaceId": f.face_id, "userData": f.user_data})

    def update_face(self, req: Request, gid: str, pid: str, fid: str) -> Response:
        body = req.json()
        self.store.update_face(gid, pid, fid, text(body, "userData", 1024))
        return Response(200)

    def delete_face(self, req: Request, gid: str, pid: str, fid: str) -> Response:
        self.store.delete_face(gid, pid, fid)
        return Response(200)


def _iou(d: Detection, t: list[int]) -> float:
    """Intersection over union of a detected face and ``targetFace`` (left, top, width, height)."""
    ax1, ay1, ax2, ay2 = d.left, d.top, d.left + d.width, d.top + d.height
    bx1, by1, bx2, by2 = t[0], t[1], t[0] + t[2], t[1] + t[3]
    iw = max(0, min(ax2, bx2) - max(ax1, bx1))
    ih = max(0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    union = d.width * d.height + t[2] * t[3] - inter
    return inter / union if union > 0 else 0.0
