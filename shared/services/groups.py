"""The active LargePersonGroup, its training, and the one way a Face person is created.

``GroupDirectory`` creates the group on first need and pins it with its recognition model in the
state table; ``TrainingCoordinator`` coalesces trainings; ``PersonFactory`` creates a person with
its intent recorded first. They are built once in shared/bootstrap.py and injected into the
services that need them (enrollment, re-enrollment, purge).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.adapters.repositories import Repositories
from shared.domain import enrollment as dom
from shared.domain.enrollment import iso, parse_iso
from shared.domain.records import GroupState, LedgerEntry, PersonAttempt, User
from shared.errors import (
    LargePersonGroupExists,
    LargePersonGroupNotFound,
    LargePersonGroupNotTrained,
    PersonNotFound,
    RecordConflict,
    RecordExists,
    TransientFailure,
)
from shared.ports import FacePort
from shared.settings import Settings


@dataclass(frozen=True)
class ActiveGroup:
    group_id: str
    recognition_model: str


class GroupDirectory:
    """The active LargePersonGroup, created on first need and pinned with its model in the state table."""

    def __init__(self, repos: Repositories, face: FacePort, settings: Settings, *, clock: Callable[[], datetime]) -> None:
        self._state = repos.group
        self._face = face
        self._settings = settings
        self._clock = clock

    def active(self, *, create: bool = True) -> ActiveGroup | None:
        state = self._state.get()
        if state is None:
            if not create:
                return None
            model = self._settings.recognition_model
            try:
                # Intent first: the row names the group before it exists, so a crash leaves a
                # row whose group is created on the next call (create is idempotent by 409).
                self._state.insert(GroupState(group_id=dom.group_id_for(model), recognition_model=model,
                                              created_at=iso(self._clock()), created=False))
            except RecordExists:
                pass
            state = self._state.get()
            assert state is not None
        # Readers (create=False) only need the id and the model: they never call Face, so a status read
        # cannot fail on Face (e.g. 403 UnsupportedFeature before Limited Access is approved).
        if not state.created and create:
            try:
                self._face.create_group(state.group_id, name="face-enrollment", recognition_model=state.recognition_model)
            except LargePersonGroupExists:
                pass
            state.created = True
            try:
                self._state.update(state)
            except RecordConflict:
                pass
        return ActiveGroup(state.group_id, state.recognition_model)

    def state(self) -> GroupState | None:
        return self._state.get()

    def save(self, state: GroupState) -> GroupState:
        """Conditional on ``state.etag``: ``RecordConflict`` if the group state changed meanwhile."""
        return self._state.update(state)


class TrainingCoordinator:
    """Coalesces trainings: a burst of photos shares one training; status is followed without sleeping.

    While a training runs, new faces only mark the group dirty; when the running training is seen
    to finish (by the next enroll, a status poll or the timer), a dirty group is trained again.
    """

    def __init__(self, groups: GroupDirectory, face: FacePort, *, clock: Callable[[], datetime], coalesce_seconds: float) -> None:
        self._groups = groups
        self._face = face
        self._clock = clock
        self._coalesce = timedelta(seconds=coalesce_seconds)

    def request(self) -> None:
        self._step(mark_dirty=True)

    def refresh(self) -> datetime | None:
        """Follows a running training; returns the start time of the last successful training."""
        return self._step(mark_dirty=False)

    def _step(self, *, mark_dirty: bool) -> datetime | None:
        for _ in range(5):
            state = self._groups.state()
            if state is None:
                return None
            now = self._clock()
            changed = False
            if mark_dirty and not state.dirty:
                state.dirty = True
                changed = True
            if state.training_status == "running":
                try:
                    status = self._face.training_status(state.group_id).status
                except LargePersonGroupNotTrained:
                    # The row is written "running" before the train call; the call never reached Face
                    # (it failed, and marking that lost a race, or the process died): train again.
                    status = "failed"
                if status in ("succeeded", "failed"):
                    state.training_status = status
                    if status == "succeeded":
                        state.last_succeeded_started_at = state.training_started_at
                    else:
                        state.dirty = True  # train again: the faces are still untrained
                    changed = True
            started = parse_iso(state.training_started_at)
            may_start = started is None or now - started >= self._coalesce
            if state.dirty and state.training_status != "running" and may_start:
                # Record the start before calling train: if the call fails the row says running,
                # and the next refresh asks Face, which answers with the truth.
                state.training_status, state.training_started_at, state.dirty = "running", iso(now), False
                try:
                    self._groups.save(state)
                except RecordConflict:
                    continue
                try:
                    self._face.train(state.group_id)
                except Exception:
                    self._mark_dirty_after_failure()
                    raise
                return parse_iso(state.last_succeeded_started_at)
            if changed:
                try:
                    self._groups.save(state)
                except RecordConflict:
                    continue
            return parse_iso(state.last_succeeded_started_at)
        raise TransientFailure("training state kept changing")

    def _mark_dirty_after_failure(self) -> None:
        state = self._groups.state()
        if state:
            state.training_status, state.dirty = "failed", True
            try:
                self._groups.save(state)
            except RecordConflict:
                pass


# Which of the user's person slots a creation fills: the active group's, or a re-enrollment target's.
PRIMARY, REENROLL_TARGET = "primary", "reenrollTarget"


class PersonFactory:
    """The one way a Face person is created, for enrollment and re-enrollment alike.

    Intent first, twice: a ``PersonAttempt`` row (table ``personattempts``, keyed by user) is written
    before anything else, and the attempt id is recorded on the user (ETag update) before
    ``create_person``, which gets it as ``userData``. The attempt row is completed with the personId
    and deleted only after a confirmed delete of the person (by this factory, the erasure or purge),
    so every person ever created is found from its user, in whatever group it is.

    Revocation wins: the ledger is read after the intent is recorded and again after the person is
    created; when the latest entry is a revocation, the new person is deleted and None returned. The
    erasure writes its tombstone before it reads, so either it sees this attempt or this sees the
    tombstone. If the record update loses (the user changed or was erased meanwhile), the new person
    is deleted and the loop starts over, so no person outlives its record.
    """

    def __init__(self, repos: Repositories, face: FacePort, *, clock: Callable[[], datetime] | None = None) -> None:
        self._users = repos.users
        self._attempts = repos.attempts
        self._ledger = repos.ledger
        self._face = face
        self._clock = clock

    def _revoked(self, user_key: str, allowed: Callable[[list[LedgerEntry]], bool] | None = None) -> bool:
        ledger = self._ledger.partition(user_key)
        if allowed is not None and not allowed(ledger):
            return True
        latest = dom.latest_entry(ledger)
        return latest is not None and latest.kind in dom.REFUSALS

    def _drop(self, attempt: PersonAttempt, person_id: str | None) -> None:
        if person_id is not None:
            try:
                self._face.delete_person(attempt.group_id, person_id)
            except (PersonNotFound, LargePersonGroupNotFound):
                pass
        self._attempts.delete(attempt.user_key, attempt.attempt_id)

    def forget(self, user_key: str, group_id: str, person_id: str) -> None:
        """Deletes a person (gone already is fine) and then the attempt rows that tracked it."""
        try:
            self._face.delete_person(group_id, person_id)
        except (PersonNotFound, LargePersonGroupNotFound):
            pass
        self.untrack(user_key, group_id, person_id)

    def untrack(self, user_key: str, group_id: str, person_id: str) -> None:
        """Drops the attempt rows of a person whose absence from Face is confirmed."""
        for attempt in self._attempts.partition(user_key):
            if attempt.group_id == group_id and attempt.person_id == person_id:
                self._attempts.delete(user_key, attempt.attempt_id)

    def ensure(self, user_key: str, group_id: str, *, slot: str,
               reuse: Callable[[User], tuple[str | None, bool]],
               allowed: Callable[[list[LedgerEntry]], bool] | None = None) -> tuple[str, bool] | None:
        """The person of ``user_key`` in ``group_id`` and whether it was created now; None if the user is
        gone or revoked.

        ``reuse`` returns a person the record already holds for this group (and whether it changed the
        record in place, which is then saved conditionally), or None to create one in ``slot``.
        ``allowed`` is a further condition on the ledger, checked by the same two reads as a revocation
        (re-enrollment: a consent in force to the current terms), so a caller need not read it before.
        """
        for _ in range(5):
            user = self._users.get(user_key)
            if user is None:
                return None
            existing, changed = reuse(user)
            if existing is not None:
                if changed:
                    try:
                        self._users.update(user)
                    except RecordConflict:
                        continue
                return existing, False
            pending = user.person_attempt if slot == PRIMARY else user.new_person_attempt
            if pending:
                user.abandoned_attempts = [*user.abandoned_attempts, pending]
            attempt_id = uuid.uuid4().hex
            attempt = self._attempts.insert(PersonAttempt(
                user_key=user_key, attempt_id=attempt_id, group_id=group_id, slot=slot,
                created_at=iso(self._clock()) if self._clock else None))
            if slot == PRIMARY:
                if user.person_id and user.group_id and user.group_id != group_id:
                    # A person left in a superseded group stays named, so an erasure still finds it.
                    user.previous_group_id, user.previous_person_id = user.group_id, user.person_id
                    user.person_id = None
                user.person_attempt, user.group_id = attempt_id, group_id
            else:
                user.new_group_id, user.new_person_attempt, user.new_person_id = group_id, attempt_id, None
            try:
                self._users.update(user)
            except RecordConflict:
                self._drop(attempt, None)  # nothing was created
                continue
            if self._revoked(user_key, allowed):
                self._drop(attempt, None)
                return None
            person_id = self._face.create_person(group_id, name=dom.person_label(attempt_id), user_data=attempt_id)
            attempt.person_id = person_id
            self._attempts.upsert(attempt)
            if self._revoked(user_key, allowed):
                # An erasure began after this attempt's first check: it may have run already.
                self._drop(attempt, person_id)
                return None
            if slot == PRIMARY:
                user.person_id, user.person_attempt = person_id, None
            else:
                user.new_person_id, user.new_person_attempt = person_id, None
            try:
                self._users.update(user)
            except RecordConflict:
                # Changed or erased meanwhile (a concurrent upload won, or a revocation): drop ours.
                self._drop(attempt, person_id)
                continue
            return person_id, True
        raise TransientFailure("could not record the person")
