"""Revocation wins a race with an enrollment in flight: a photo being added when the user revokes is not kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shared.commands import Revoke
from shared.errors import PersonNotFound
from tests.fixtures.azurite import Azurite
from tests.fixtures.paths import face_bytes
from tests.integration.erasure_support import in_process, new_user

pytestmark = pytest.mark.integration


class AfterAddFace:
    """The real Face port; right after a face is added, runs a hook (the concurrent revocation)."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self.hook: Callable[[], None] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def add_face(self, *args: Any, **kwargs: Any) -> str:
        face_id: str = self._target.add_face(*args, **kwargs)
        if self.hook is not None:
            hook, self.hook = self.hook, None
            hook()
        return face_id


def test_revocation_during_add_face_leaves_nothing(azurite: Azurite, face_api: Any) -> None:
    wrappers: list[AfterAddFace] = []

    def wrap(target: Any) -> Any:
        if hasattr(target, "add_face"):
            wrappers.append(AfterAddFace(target))
            return wrappers[-1]
        return target

    stack = in_process(azurite, face_api.endpoint, wrap=wrap)
    user = new_user()
    stack.consent(user, store_photos=True)
    (slot,) = stack.slots(user)
    row = None

    def revoke_now() -> None:
        nonlocal row
        row = stack.services.records.get("users", user, "user")
        stack.services.revocation.erase(Revoke(user, "race-1", reason="withdrawn", requested_by=user))

    wrappers[0].hook = revoke_now
    assert stack.deliver(slot, face_bytes("family1-dad/1.jpg")) == "discarded"
    assert row is not None and row[0].get("personId")
    with pytest.raises(PersonNotFound):
        stack.services.face.get_person(str(row[0]["groupId"]), str(row[0]["personId"]))
    assert not [b for b in stack.blobs("KEPT_PHOTOS_CONTAINER") if b.startswith(str(row[0]["keptToken"]))]
    assert slot.blob_name not in stack.blobs("UPLOADS_CONTAINER")
    assert stack.table_rows("users", pk=user) == [] and stack.table_rows("uploads", pk=user) == []
    assert stack.services.enrollment.status(user).status == "revoked"
