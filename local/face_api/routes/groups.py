"""LargePersonGroup routes: create, get, list, update and delete a group."""

from __future__ import annotations

from local.face_api.routes.base import GROUP, EmulatorState, Request, Response, Route
from local.face_api.routes.validation import changes, check_id, check_model, paging, query_bool, text


class GroupRoutes(EmulatorState):
    def group_routes(self) -> list[Route]:
        return [
            ("GET", r"/largepersongroups", self.list_groups),
            ("PUT", GROUP, self.create_group),
            ("GET", GROUP, self.get_group),
            ("PATCH", GROUP, self.update_group),
            ("DELETE", GROUP, self.delete_group),
        ]

    def create_group(self, req: Request, gid: str) -> Response:
        check_id(gid, "largePersonGroupId")
        body = req.json()
        name = text(body, "name", 128, required=True)
        assert name is not None
        user_data = text(body, "userData", 16384)
        model = check_model(body.get("recognitionModel") or "recognition_01", self.models)
        self.store.create_group(gid, name, user_data, model)
        return Response(200)

    def get_group(self, req: Request, gid: str) -> Response:
        g = self.store.group(gid)
        return Response(200, g.to_json(query_bool(req.query, "returnRecognitionModel", False)))

    def list_groups(self, req: Request) -> Response:
        start, top = paging(req.query)
        with_model = query_bool(req.query, "returnRecognitionModel", False)
        return Response(200, [g.to_json(with_model) for g in self.store.list_groups(start, top)])

    def update_group(self, req: Request, gid: str) -> Response:
        self.store.update_group(gid, changes(req.json(), 16384))
        return Response(200)

    def delete_group(self, req: Request, gid: str) -> Response:
        self.store.delete_group(gid)
        return Response(200)
