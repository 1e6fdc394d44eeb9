"""Person routes, within a LargePersonGroup: create, get, list, update and delete a person."""

from __future__ import annotations

from local.face_api.routes.base import GROUP, PERSON, EmulatorState, Request, Response, Route
from local.face_api.routes.validation import changes, paging, text
from local.face_api.store import Person


class PersonRoutes(EmulatorState):
    def person_routes(self) -> list[Route]:
        return [
            ("POST", rf"{GROUP}/persons", self.create_person),
            ("GET", rf"{GROUP}/persons", self.list_persons),
            ("GET", PERSON, self.get_person),
            ("PATCH", PERSON, self.update_person),
            ("DELETE", PERSON, self.delete_person),
        ]

    def create_person(self, req: Request, gid: str) -> Response:
        body = req.json()
        name = text(body, "name", 128, required=True)
        assert name is not None
        pid = self.store.create_person(gid, name, text(body, "userData", 16384))
        return Response(200, {"personId": pid})

    def get_person(self, req: Request, gid: str, pid: str) -> Response:
        return Response(200, self.store.person(self.store.group(gid), pid).to_json())

    def list_persons(self, req: Request, gid: str) -> Response:
        start, top = paging(req.query)
        persons: list[Person] = self.store.list_persons(gid, start, top)
        return Response(200, [p.to_json() for p in persons])

    def update_person(self, req: Request, gid: str, pid: str) -> Response:
        self.store.update_person(gid, pid, changes(req.json(), 16384))
        return Response(200)

    def delete_person(self, req: Request, gid: str, pid: str) -> Response:
        self.store.delete_person(gid, pid)
        return Response(200)
