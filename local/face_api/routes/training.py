"""Training routes: start a group's training, read its status, and poll the long-running operation that
train's ``Operation-Location`` names."""

from __future__ import annotations

from local.face_api.routes.base import GROUP, SEG, EmulatorState, Request, Response, Route
from local.face_api.store import ApiError


class TrainingRoutes(EmulatorState):
    def training_routes(self) -> list[Route]:
        return [
            ("POST", rf"{GROUP}/train", self.train),
            ("GET", rf"{GROUP}/training", self.training_status),
            ("GET", rf"/operations/{SEG}", self.get_operation),
        ]

    def train(self, req: Request, gid: str) -> Response:
        op_id = self.store.start_training(gid)
        with self._stats_lock:
            self.train_accepted += 1
            self.training_ops.add(op_id)
        loc = f"http://{req.host}/face/{req.version}/operations/{op_id}"
        return Response(202, None, {"Operation-Location": loc, "Retry-After": "1"})

    def training_status(self, req: Request, gid: str) -> Response:
        g = self.store.group(gid)
        if g.training.status == "notStarted":
            raise ApiError(404, "LargePersonGroupNotTrained", "Large person group not trained.")
        return Response(200, g.training.to_json())

    def get_operation(self, req: Request, op_id: str) -> Response:
        op = self.store.operations.get(op_id)
        if op is None:
            raise ApiError(404, "NotFound", "Operation not found.")
        body = {"operationId": op["operationId"], "status": op["status"], "createdTime": op["createdTime"],
                "lastActionTime": op["lastActionTime"], "finishedTime": op["finishedTime"],
                "message": op["message"]}
        headers = {"Retry-After": "1"} if op["status"] in ("notStarted", "running") else {}
        return Response(200, body, headers)
