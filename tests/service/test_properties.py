"""Properties of the whole app on the fakes: whatever the order and duplication of consent, upload,
enroll, revoke, termination, purge, re-enrollment and time passing, the stores end in a state the
invariants allow. The same invariants as tests/integration/test_erasure_properties.py (real Azurite
and emulator, a few examples), here cheap enough for thousands of examples (the ``ci`` profile).

1. no Face person, in any group, without current consent, and none the records do not know;
2. no kept photo without ``storePhotos`` consent;
3. a revoked user has nothing left but ledger entries and a receipt;
4. a consenting user whose good photo was accepted is enrolled (or must re-enroll after a model
   update that could not carry them over);
5. no Face person in any group without a tracked attempt (``personattempts``), failed runs included;
6. after one purge, a revoked user's footprint (shared/services/footprint.py) is empty.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from shared.commands import StartReenrollment
from shared.domain.enrollment import latest_entry
from shared.errors import Conflict, ConsentRequired, NotFound
from shared.ports import OutgoingMessage
from tests.fakes import photo
from tests.service.support import PROPERTY_EXAMPLES, Stack, make_stack

RETENTION_DAYS, MAX_AGE_MINUTES = 30, 60
GOOD, BAD = (11, 12, 13), (0,)
PHOTOS = {i: photo(i, size=160) for i in GOOD + BAD}

users_st = st.integers(min_value=0, max_value=2)
ops_st = st.lists(st.one_of(
    st.tuples(st.just("consent"), users_st, st.booleans()),
    st.tuples(st.just("upload"), users_st, st.sampled_from(GOOD + BAD)),
    st.tuples(st.just("slot"), users_st),
    st.tuples(st.just("deliver"), st.integers(0, 3), st.sampled_from(GOOD + BAD)),
    st.tuples(st.just("redeliver"), st.integers(0, 3)),
    st.tuples(st.just("revoke"), users_st, st.booleans()),
    st.tuples(st.just("terminate"), users_st, st.booleans()),
    st.tuples(st.just("purge"),),
    st.tuples(st.just("reenroll"), st.booleans()),
    st.tuples(st.just("advance"), st.sampled_from([90, 31 * 24 * 60])),
), min_size=3, max_size=12)


@dataclass
class Slot:
    user: int
    name: str
    generation: int
    created: datetime
    photo: int | None = None
    dead: bool = False


@dataclass
class User:
    key: str
    hr: str
    generation: int = 0
    granted_at: datetime | None = None
    enrolled_generation: int | None = None
    tokens: set[str] = field(default_factory=set)


class Model:
    def __init__(self, stack: Stack, n_users: int) -> None:
        self.stack = stack
        self.users = [User(f"u{i}", f"E{i}") for i in range(n_users)]
        self.slots: list[Slot] = []
        self.reenrolled = False

    def _observe(self, u: User) -> None:
        record = self.stack.user(u.key)
        if record and record.kept_token:
            u.tokens.add(record.kept_token)

    def _erased(self, u: User) -> None:
        u.generation += 1
        u.granted_at = None
        u.enrolled_generation = None

    def apply(self, op: tuple[object, ...]) -> None:
        stack, kind = self.stack, op[0]
        if kind == "consent":
            u = self.users[int(str(op[1])) % len(self.users)]
            stack.consent(u.key, store_photos=bool(op[2]), hr_key=u.hr)
            u.granted_at = stack.clock.now
            self._observe(u)
        elif kind == "upload":
            before = len(self.slots)
            self.apply(("slot", op[1]))
            if len(self.slots) > before:
                self.apply(("deliver", len(self.slots) - 1, op[2]))
        elif kind == "slot":
            i = int(str(op[1])) % len(self.users)
            u = self.users[i]
            try:
                (name,) = stack.slots(u.key)
            except ConsentRequired:
                assert u.granted_at is None
                return
            self.slots.append(Slot(i, name, u.generation, stack.clock.now))
        elif kind in ("deliver", "redeliver"):
            if not self.slots:
                return
            s = self.slots[int(str(op[1])) % len(self.slots)]
            u = self.users[s.user]
            if kind == "deliver" and s.photo is None:
                s.photo = int(str(op[2]))
                stack.put(s.name, PHOTOS[s.photo])
                outcome = stack.blob_created(s.name)
                alive = not s.dead and s.generation == u.generation and u.granted_at is not None
                if alive and s.photo in GOOD:
                    assert outcome == "accepted", outcome
                    u.enrolled_generation = u.generation
                elif not alive:
                    assert outcome in ("unknown", "discarded"), outcome
                self._observe(u)
            elif s.photo is not None:  # a duplicate BlobCreated
                stack.put(s.name, PHOTOS[s.photo])
                stack.blob_created(s.name)
        elif kind == "revoke":
            u = self.users[int(str(op[1])) % len(self.users)]
            try:
                stack.revoke(u.key)
                if op[2]:
                    stack.revoke(u.key)  # the user presses twice
            except NotFound:
                return  # never consented
            stack.pump()
            if u.granted_at is not None:
                self._erased(u)
        elif kind == "terminate":
            u = self.users[int(str(op[1])) % len(self.users)]
            body = json.dumps({"specversion": "1.0", "id": f"ev-{stack.clock.now.timestamp()}", "source": "/hr",
                               "type": "hr.employee.terminated",
                               "data": {"employeeId": u.hr, "effectiveDate": stack.clock.now.date().isoformat()}})
            for _ in range(2 if op[2] else 1):  # a duplicate event from HR
                stack.publisher.send(stack.services.settings.hr_events_topic,
                                     [OutgoingMessage(body=body.encode(), message_id=f"hr-{body}")])
            stack.pump()
            if u.granted_at is not None and self._indexed(u):
                self._erased(u)
        elif kind == "purge":
            now = stack.clock.now
            stack.purge()
            for u in self.users:
                if u.granted_at is not None and u.granted_at <= now - timedelta(days=RETENTION_DAYS):
                    self._erased(u)
            for s in self.slots:
                if s.photo is None and s.created <= now - timedelta(minutes=MAX_AGE_MINUTES):
                    s.dead = True
        elif kind == "reenroll":
            # Any number of runs, some failing (their groups are superseded; every person in them stays
            # tracked in personattempts, so an erasure still finds it).
            fail = bool(op[1]) if len(op) > 1 else False
            group = stack.services.groups.active(create=False)
            model = "recognition_05" if group is None or group.recognition_model != "recognition_05" else "recognition_04"
            stack.face.fail_training = fail
            try:
                progress = stack.services.reenrollment.start(StartReenrollment(model, "admin"))
            except Conflict:
                stack.face.fail_training = False
                return
            stack.pump(until=stack.clock.now + timedelta(hours=1))
            stack.face.fail_training = False
            if stack.services.reenrollment.progress(progress.run_id).status == "switched":
                for u in self.users:
                    if not self._kept(u):
                        u.enrolled_generation = None  # left in the old group: must enroll again
        elif kind == "advance":
            stack.clock.advance(minutes=float(str(op[1])))

    def _indexed(self, u: User) -> bool:
        return self.stack.status(u.key) == "revoked"

    def _kept(self, u: User) -> bool:
        record = self.stack.user(u.key)
        return bool(record and record.store_photos and [k for k in self.stack.photos.kept
                                                         if k.startswith(f"{record.kept_token}/")])

    def check(self) -> None:
        stack = self.stack
        svc = stack.services
        records = {u.key: stack.user(u.key) for u in self.users}
        current = {u.key: svc.consent.current(u.key) for u in self.users}
        owner: dict[str, str] = {}
        for key, r in records.items():
            for _, person in r.persons() if r else ():
                owner[person] = key
        attempts = svc.repos.attempts
        tracked = {a.person_id: a.user_key for u in self.users for a in attempts.partition(u.key) if a.person_id}
        # 1. No person without current consent, in any group; 5. none without a tracked attempt.
        for _, person, _ in stack.persons():
            assert person in tracked, "a Face person with no tracked attempt"
            assert current[tracked[person]] is not None, "a Face person without current consent"
            if person not in owner:
                # Only a failed or superseded run's person may be named by no record: its group is
                # superseded and purge deletes it after the grace period.
                groups = {g.group_id for g in svc.repos.superseded.partition()}
                assert any(person in {p for p in face_group.persons} for gid, face_group in stack.face.groups.items()
                           if gid in groups), "a Face person no record knows, outside a superseded group"
        # 2. No kept photo without storePhotos.
        token_owner = {r.kept_token: key for key, r in records.items() if r and r.kept_token}
        for name in stack.photos.kept:
            key = token_owner.get(name.partition("/")[0])
            assert key is not None, "a kept photo of nobody"
            assert current[key] is not None and current[key].store_photos, "a kept photo without storePhotos"
        # 3. A revoked user has nothing left but ledger entries and a receipt.
        for u in self.users:
            latest = latest_entry(svc.consent.ledger(u.key))
            if latest is None or latest.kind != "revocation":
                continue
            assert records[u.key] is None
            assert svc.repos.uploads.partition(u.key) == []
            assert not [n for n in stack.photos.kept if n.partition("/")[0] in u.tokens]
            assert svc.repos.receipts.get(str(latest.receipt_id)) is not None
            assert stack.status(u.key) == "revoked"
        for s in self.slots:
            if self.users[s.user].generation != s.generation:
                assert s.name not in stack.photos.uploads
        # 4. A consenting user with an accepted good photo is enrolled (or told to enroll again).
        for u in self.users:
            if current[u.key] is not None and u.enrolled_generation == u.generation:
                assert stack.status(u.key) in ("enrolled", "reenrollRequired"), stack.status(u.key)


# 2,000 examples in CI on a shared 2-core runner take longer than the suite's 300 s per-test timeout now
# that every example also runs re-enrollments that may fail and a final purge.
# Outside coverage tracing (pytest-cov's no_cover): under the tracer its 2,000 examples took 47 CPU-seconds
# of the suite's ~500 instead of ~20, and they run the lines the service tier's other tests cover already
# (`make test` reports the same coverage of shared/ with or without it: 92%).
@pytest.mark.no_cover
@pytest.mark.timeout(1800)
@settings(max_examples=PROPERTY_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_users=st.integers(min_value=2, max_value=3),
       initial=st.lists(st.sampled_from([True, False, True, False, None]), min_size=3, max_size=3), ops=ops_st)
def test_erasure_invariants_hold_after_any_interleaving(n_users: int, initial: list[bool | None],
                                                        ops: list[tuple[object, ...]]) -> None:
    stack = make_stack(CONSENT_RETENTION_DAYS=str(RETENTION_DAYS), UPLOAD_MAX_AGE_MINUTES=str(MAX_AGE_MINUTES))
    model = Model(stack, n_users)
    note(f"n_users={n_users} initial={initial} ops={ops}")
    for op in [*(("consent", i, store) for i, store in enumerate(initial[:n_users]) if store is not None), *ops]:
        model.apply(op)
    model.check()
    # 6. After one more purge, a revoked user's footprint is empty (the repair step re-runs any
    # erasure that did not verify).
    stack.purge()
    for u in model.users:
        latest = latest_entry(stack.services.consent.ledger(u.key))
        if latest is not None and latest.kind == "revocation":
            fp = stack.services.footprint.of(u.key)
            assert fp.is_empty(), f"a revoked user's footprint after purge: {fp.left()}"
