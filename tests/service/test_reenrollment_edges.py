"""Re-enrollment runs that must not get stuck (issue 18): a model Face refuses ends the run failed with
a reason and frees the lock; an administrator can cancel a run, which deletes its new group; only
supported models start at all."""

from __future__ import annotations

import pytest

from shared import errors
from shared.commands import CancelReenrollment, StartReenrollment
from shared.errors import Conflict, Invalid
from tests.service.support import hooked, make_stack, new_user, principal

ADMIN = principal("admin-1", admin=True)


def enrolled(stack, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    users = [new_user() for _ in range(n)]
    for i, user in enumerate(users):
        assert stack.enroll(user, 20 + i) == "accepted"
    return users


def test_only_supported_models_start() -> None:
    stack = make_stack()
    enrolled(stack, 1)
    with pytest.raises(Invalid, match="recognition_05"):
        stack.services.reenrollment.start(StartReenrollment("recognition_99", "admin"))
    assert stack.services.repos.reenroll_lock.get() is None


def test_a_model_face_refuses_ends_the_run_failed_and_frees_the_lock() -> None:
    stack = make_stack()
    enrolled(stack, 2)

    def refuse(name: str) -> None:
        if name == "face.create_group":
            raise errors.FaceBadRequest("Invalid recognition model.", code="BadArgument", status=400)

    run = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    with hooked(stack, refuse):
        stack.pump()
    final = stack.services.reenrollment.progress(run.run_id)
    assert final.status == "failed" and "could not be created" in (final.message or "")
    # Not stuck: the next start is accepted.
    again = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    stack.pump()
    assert stack.services.reenrollment.progress(again.run_id).status == "switched"


def test_cancel_ends_the_run_deletes_its_group_and_users_stay_enrolled() -> None:
    stack = make_stack()
    users = enrolled(stack, 3)
    old = stack.services.groups.active()
    assert old is not None
    run = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    stack.pump(limit=3)  # the fan-out and a work item or two
    new_group = stack.services.repos.runs.get(run.run_id).new_group_id
    assert new_group in stack.face.groups
    cancelled = stack.services.reenrollment.cancel(CancelReenrollment(ADMIN, run.run_id))
    assert cancelled.status == "failed" and "cancelled" in (cancelled.message or "")
    stack.pump()  # whatever was still queued finds the run failed
    assert new_group not in stack.face.groups
    assert stack.services.groups.active().group_id == old.group_id  # type: ignore[union-attr]
    for user in users:
        assert stack.status(user) == "enrolled"
        assert stack.user(user).new_group_id is None
    with pytest.raises(Conflict, match="nothing to cancel"):
        stack.services.reenrollment.cancel(CancelReenrollment(ADMIN, run.run_id))
    audit = [row for row in stack.records.tables.get("audit", {}).values() if "reenroll.cancelled" in str(row)]
    assert audit
    # And a new run may start.
    stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
