"""Property: whatever the order and duplication of consent, upload, enroll, revoke, termination and
purge events, the stores end in a state the issue's invariants allow.

Each example runs the services in-process (shared.bootstrap.build) against the real Azurite and the
dlib-backed Face emulator with real photos, on fresh tables and containers (a new TABLE_PREFIX) and
a clock the example moves forward. After the run it checks:

1. no Face person without current consent;
2. no kept photo without ``storePhotos``;
3. a revoked user has nothing left but ledger entries and a receipt;
4. every consenting user with a good photo ends enrolled (or with an actionable failure).

The same invariants run on the in-memory fakes in tests/service/test_properties.py with 2,000
examples in CI; this one keeps a few examples on the real parts (ERASURE_EXAMPLES, default 6), so
a difference between the fakes and Azurite or the emulator that the contract tests miss shows here.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shared.commands import ProcessUpload, RequestRevocation, RunPurge
from shared.domain.enrollment import latest_entry
from shared.envelopes import decode_hr_event, decode_revoke
from shared.errors import ConsentRequired, NotFound
from tests.fixtures.azurite import Azurite
from tests.fixtures.paths import face_bytes
from tests.integration.erasure_support import InProcess, Slot, in_process, principal

pytestmark = pytest.mark.integration

GOOD = ("family1-dad/1.jpg", "family2-lady/1.jpg")
BAD = ("nonfaces/1.jpg",)
PHOTOS = {name: face_bytes(name) for name in GOOD + BAD}
RETENTION_DAYS, MAX_AGE_MINUTES = 30, 60

users_st = st.integers(min_value=0, max_value=2)
ops_st = st.lists(st.one_of(
    st.tuples(st.just("upload"), users_st, st.sampled_from(GOOD)),
    st.tuples(st.just("upload"), users_st, st.sampled_from(GOOD + BAD)),
    st.tuples(st.just("revoke"), users_st, st.booleans()),
    st.tuples(st.just("purge"),),
    st.tuples(st.just("consent"), users_st, st.booleans()),
    st.tuples(st.just("slot"), users_st),
    st.tuples(st.just("deliver"), st.integers(0, 3), st.sampled_from(GOOD + BAD)),
    st.tuples(st.just("redeliver"), st.integers(0, 3)),
    st.tuples(st.just("terminate"), users_st, st.booleans()),
    st.tuples(st.just("advance"), st.sampled_from([90, 31 * 24 * 60])),
), min_size=3, max_size=9)


@dataclass
class ModelSlot:
    slot: Slot
    generation: int
    created: datetime
    photo: str | None = None
    dead: bool = False  # erased with its user, or purged as stale before its photo came


@dataclass
class ModelUser:
    key: str
    hr: str
    generation: int = 0
    granted_at: datetime | None = None  # the latest grant, None once erased
    tokens: set[str] = field(default_factory=set)
    persons: set[str] = field(default_factory=set)
    enrolled_generation: int | None = None  # a good photo was accepted in this generation


class Run:
    def __init__(self, stack: InProcess, n_users: int) -> None:
        self.stack = stack
        self.users = [ModelUser(f"u{i}-{uuid.uuid4().hex[:6]}", f"E{i}{uuid.uuid4().hex[:5]}") for i in range(n_users)]
        self.slots: list[ModelSlot] = []

    @property
    def svc(self) -> Any:
        return self.stack.services

    def user(self, i: int) -> ModelUser:
        return self.users[i % len(self.users)]

    def _observe(self, u: ModelUser) -> None:
        found = self.svc.records.get("users", u.key, "user")
        if found:
            if found[0].get("keptToken"):
                u.tokens.add(str(found[0]["keptToken"]))
            if found[0].get("personId"):
                u.persons.add(str(found[0]["personId"]))

    def _erased(self, u: ModelUser) -> None:
        u.generation += 1
        u.granted_at = None
        for s in self.slots:
            if s.slot.user_key == u.key:
                s.dead = True

    def apply(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "consent":
            u = self.user(op[1])
            self.stack.consent(u.key, store_photos=op[2], hr_key=u.hr)
            u.granted_at = self.stack.clock.now
            self._observe(u)
        elif kind == "upload":  # a slot and its photo at once
            before = len(self.slots)
            self.apply(("slot", op[1]))
            if len(self.slots) > before:
                self.apply(("deliver", len(self.slots) - 1, op[2]))
        elif kind == "slot":
            u = self.user(op[1])
            try:
                (slot,) = self.stack.slots(u.key, 1, hr_key=u.hr)
            except ConsentRequired:
                assert u.granted_at is None
                return
            self.slots.append(ModelSlot(slot, u.generation, self.stack.clock.now))
        elif kind in ("deliver", "redeliver"):
            if not self.slots:
                return
            s = self.slots[op[1] % len(self.slots)]
            if kind == "deliver" and s.photo is None:
                s.photo = op[2]
                outcome = self.stack.deliver(s.slot, PHOTOS[op[2]])
                u = next(x for x in self.users if x.key == s.slot.user_key)
                alive = not s.dead and s.generation == u.generation and u.granted_at is not None
                if alive and op[2] in GOOD:
                    assert outcome == "accepted", outcome
                    u.enrolled_generation = u.generation
                elif not alive:
                    assert outcome in ("unknown", "discarded"), outcome
                self._observe(u)
            elif s.photo is not None:  # a duplicate BlobCreated event
                self.svc.enrollment.process_upload(ProcessUpload(s.slot.blob_name, PHOTOS[s.photo]))
        elif kind == "revoke":
            u = self.user(op[1])
            try:
                self.svc.revocation.request(RequestRevocation(principal(u.key, u.hr), u.key, "test"))
            except NotFound:
                return  # never consented
            _, message = self.stack.publisher.sent[-1]
            for _ in range(2 if op[2] else 1):
                self.svc.revocation.erase(decode_revoke(message.body))
            self._erased(u)
        elif kind == "terminate":
            u = self.user(op[1])
            event = {"specversion": "1.0", "id": uuid.uuid4().hex, "source": "/hr/test", "type": "hr.employee.terminated",
                     "data": {"employeeId": u.hr, "effectiveDate": self.stack.clock.now.date().isoformat()}}
            types = self.svc.settings.termination_event_types
            outcomes = [self.svc.revocation.hr_event(decode_hr_event(json.dumps(event).encode(), termination_types=types))
                        for _ in range(2 if op[2] else 1)]
            if "erased" in outcomes:
                self._erased(u)
        elif kind == "purge":
            now = self.stack.clock.now
            self.svc.purge.run(RunPurge(dry_run=False, trigger="test"))
            for u in self.users:
                if u.granted_at is not None and u.granted_at <= now - timedelta(days=RETENTION_DAYS):
                    self._erased(u)
            for s in self.slots:
                if s.photo is None and s.created <= now - timedelta(minutes=MAX_AGE_MINUTES):
                    s.dead = True
        elif kind == "advance":
            self.stack.clock.advance(minutes=op[1])

    # --- the invariants ----------------------------------------------------------------------
    def check(self) -> None:
        svc = self.stack.services
        users = {u.key: svc.repos.users.get(u.key) for u in self.users}
        current = {u.key: svc.consent.current(u.key) for u in self.users}
        persons = self.stack.persons()
        person_owner = {row.person_id: key for key, row in users.items() if row and row.person_id}
        # 1. No Face person without current consent.
        for person_id in persons:
            owner = person_owner.get(person_id)
            assert owner is not None, "a Face person no record knows"
            assert current[owner] is not None, "a Face person without current consent"
        # 2. No kept photo without storePhotos.
        token_owner = {row.kept_token: key for key, row in users.items() if row and row.kept_token}
        for name in self.stack.blobs("KEPT_PHOTOS_CONTAINER"):
            owner = token_owner.get(name.partition("/")[0])
            assert owner is not None, "a kept photo of nobody"
            consent = current[owner]
            assert consent is not None and consent.store_photos, "a kept photo without storePhotos"
        # 3. A revoked user has nothing but ledger entries and a receipt.
        uploads = set(self.stack.blobs("UPLOADS_CONTAINER"))
        kept = self.stack.blobs("KEPT_PHOTOS_CONTAINER")
        for u in self.users:
            ledger = svc.consent.ledger(u.key)
            latest = latest_entry(ledger)
            if latest is None or latest.kind != "revocation":
                continue
            assert users[u.key] is None
            assert svc.records.partition("uploads", u.key) == []
            assert not (u.persons & set(persons))
            assert not [n for n in kept if n.partition("/")[0] in u.tokens]
            for s in self.slots:
                if s.slot.user_key == u.key:
                    assert s.slot.blob_name not in uploads
                    assert svc.records.get("uploadindex", s.slot.upload_id, "u") is None
            assert svc.repos.receipts.get(str(latest.receipt_id)) is not None
            assert svc.enrollment.status(u.key).status == "revoked"
        # 4. Every consenting user with a good photo ends enrolled, or failed with a reason.
        for u in self.users:
            if current[u.key] is None:
                continue
            if u.enrolled_generation == u.generation:
                self.stack.wait_status(u.key, "enrolled")
            status = svc.enrollment.status(u.key).as_json()
            if status["status"] == "failed":
                assert status.get("message") or any(p["reasons"] for p in status["photos"]), status


@settings(max_examples=int(os.environ.get("ERASURE_EXAMPLES", "6")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(n_users=st.integers(min_value=2, max_value=3),
       initial=st.lists(st.sampled_from([True, False, True, False, None]), min_size=3, max_size=3), ops=ops_st)
def test_erasure_invariants_hold_after_any_interleaving(azurite: Azurite, face_emulator: Any, n_users: int,
                                                        initial: list[bool | None], ops: list[tuple[Any, ...]]) -> None:
    stack = in_process(azurite, face_emulator.endpoint, TRAINING_COALESCE_SECONDS="0",
                       CONSENT_RETENTION_DAYS=str(RETENTION_DAYS), UPLOAD_MAX_AGE_MINUTES=str(MAX_AGE_MINUTES))
    run = Run(stack, n_users)
    # Most users consent first (with or without storePhotos), so the random tail has something to act on.
    starts = [("consent", i, store) for i, store in enumerate(initial[:n_users]) if store is not None]
    for op in [*starts, *ops]:
        run.apply(op)
    event(f"deliveries: {sum(1 for s in run.slots if s.photo)}")
    event(f"erasures: {sum(u.generation for u in run.users)}")
    run.check()
