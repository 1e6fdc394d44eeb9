"""The service tier's harness: the app's services (shared.bootstrap.build) on the in-memory fakes, a
clock the test moves, a bus that delivers what the publisher holds through the same edge the triggers
use (shared.envelopes.deliver), and a deterministic interleaving scheduler over the fakes' hooks."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

from shared.bootstrap import Services, build
from shared.commands import CreateUploads, GrantConsent, ProcessUpload, RequestRevocation, RunPurge
from shared.domain.principal import Principal
from shared.envelopes import decode_control, decode_hr_event, decode_revoke, decode_work, deliver
from shared.errors import MessageRejected
from shared.settings import Settings
from tests.fakes import (
    FakeAnchors,
    FakeEvents,
    FakeFace,
    FakePhotos,
    FakePublisher,
    FakeRecords,
    InProcessImageCheck,
    Sent,
    photo,
)

#: Examples per service-tier property: at least 2,000 in CI (scripts/check.sh sets HYPOTHESIS_PROFILE=ci),
#: fewer for make test-fast and local runs, which must stay under a minute.
PROPERTY_EXAMPLES = 2000 if os.environ.get("HYPOTHESIS_PROFILE") == "ci" else 100

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


class ManualClock:
    """Time moves only when the test says so (and by a microsecond per reading, so ledger ids stay ordered)."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def principal(user_key: str, hr_key: str | None = None, *, admin: bool = False) -> Principal:
    return Principal(user_key=user_key, hr_key=hr_key, is_admin=admin, mfa=True,
                     roles=frozenset({"FaceEnrollment.Admin"}) if admin else frozenset())


class Crash(Exception):
    """The process died here (a fault injected at an external call)."""


@dataclass
class Stack:
    services: Services
    clock: ManualClock
    records: FakeRecords
    photos: FakePhotos
    face: FakeFace
    publisher: FakePublisher
    dead_letters: list[tuple[Sent, str]] = field(default_factory=list)
    anchors: FakeAnchors = field(default_factory=FakeAnchors)
    events: FakeEvents = field(default_factory=FakeEvents)

    # --- hooks -------------------------------------------------------------------------------------
    def set_hook(self, hook: Callable[[str], None]) -> None:
        for fake in (self.records, self.photos, self.face, self.publisher, self.anchors, self.events):
            fake.hook = hook

    def clear_hook(self) -> None:
        self.set_hook(lambda name: None)

    # --- driving the app, as the front end and the platform would ------------------------------------
    def consent(self, user_key: str, *, store_photos: bool = True, hr_key: str | None = None) -> None:
        terms = self.services.consent.terms()
        self.services.consent.grant(GrantConsent(principal(user_key, hr_key), terms.version, store_photos, "test"))

    def slots(self, user_key: str, count: int = 1) -> list[str]:
        created = self.services.enrollment.create_uploads(CreateUploads(principal(user_key), count))
        return [f"{created.session_id}/{s.upload_id}" for s in created.uploads]

    def put(self, blob_name: str, data: bytes) -> None:
        self.photos.put_upload(blob_name, data)

    def blob_created(self, blob_name: str) -> str:
        return self.services.enrollment.process_upload(ProcessUpload(blob_name, self.photos.uploads.get(blob_name, b"")))

    def uploaded(self, user_key: str, identity: int, *, store_photos: bool = True) -> str:
        """Consent, one slot and the photo in it, not processed yet: the blob's name."""
        self.consent(user_key, store_photos=store_photos)
        (name,) = self.slots(user_key)
        self.put(name, photo(identity))
        return name

    def enroll(self, user_key: str, identity: int, *, store_photos: bool = True) -> str:
        return self.blob_created(self.uploaded(user_key, identity, store_photos=store_photos))

    def revoke(self, user_key: str) -> str:
        return self.services.revocation.request(RequestRevocation(principal(user_key), user_key, "test")).request_id

    def purge(self) -> dict[str, Any]:
        return self.services.purge.run(RunPurge(dry_run=False, trigger="test")).as_json()

    def status(self, user_key: str) -> str:
        return self.services.enrollment.status(user_key).status

    # --- the bus -------------------------------------------------------------------------------------
    def handlers(self) -> dict[str, Callable[[Sent, int], object]]:
        s = self.services
        settings = s.settings

        def run(parse: Callable[[bytes], Any], action: Callable[[Any], object], source: str, sent: Sent,
                delivery_count: int) -> object:
            return deliver(sent.message.body, parse, action, audit=s.audit, source=source,
                           message_id=sent.message.message_id, delivery_count=delivery_count)

        return {
            settings.revocations_queue: partial(run, decode_revoke, s.revocation.erase, settings.revocations_queue),
            settings.hr_events_topic: partial(run, partial(decode_hr_event, termination_types=settings.termination_event_types),
                                              s.revocation.hr_event, settings.hr_events_topic),
            settings.model_updates_queue: partial(run, decode_control, s.reenrollment.control, settings.model_updates_queue),
            settings.reenroll_work_queue: partial(run, decode_work, s.reenrollment.work, settings.reenroll_work_queue),
        }

    def pump(self, *, max_deliveries: int = 10, until: datetime | None = None, limit: int = 10_000) -> int:
        """Delivers every visible message (moving the clock to scheduled ones up to ``until``); a message
        that raises is redelivered up to ``max_deliveries`` times, then dead-lettered. Returns deliveries."""
        handlers = self.handlers()
        count = 0
        while count < limit:
            due = self.publisher.due(self.clock.now)
            if not due:
                nxt = self.publisher.next_time()
                if nxt is None or (until is not None and nxt > until):
                    return count
                self.clock.now = max(self.clock.now, nxt)
                continue
            for sent in due:
                for attempt in range(1, max_deliveries + 1):
                    count += 1
                    try:
                        handlers[sent.destination](sent, attempt)
                        break
                    except MessageRejected as exc:
                        if attempt == max_deliveries:
                            self.dead_letters.append((sent, exc.reason))
                    except Crash:
                        raise
                    except Exception as exc:
                        if attempt == max_deliveries:
                            self.dead_letters.append((sent, exc.__class__.__name__))
        return count

    # --- what the stores hold ------------------------------------------------------------------------
    def persons(self) -> list[tuple[str, str, int]]:
        return self.face.all_persons()

    def user(self, user_key: str) -> Any:
        return self.services.repos.users.get(user_key)


def make_stack(**env: str) -> Stack:
    # ORPHAN_SCAN_DAYS=1: one purge covers every key, as the tests of what it finds expect; the nightly
    # ranges of the default (7) are tested in test_purge_ranges.py.
    settings = Settings.from_env({"TRAINING_COALESCE_SECONDS": "0", "TABLE_PREFIX": "svc",
                                  "FACE_RECOGNITION_MODELS": "recognition_04,recognition_05", "ORPHAN_SCAN_DAYS": "1",
                                  **env})
    clock = ManualClock()
    records, photos, face, publisher, anchors = FakeRecords(), FakePhotos(), FakeFace(), FakePublisher(), FakeAnchors()
    events = FakeEvents()
    services = build(settings, clock=clock, records=records, photos=photos, face=face, publisher=publisher,
                     anchors=anchors, events=events, images=InProcessImageCheck(settings))
    return Stack(services, clock, records, photos, face, publisher, anchors=anchors, events=events)


def new_user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


# --- faults -----------------------------------------------------------------------------------------
class CallCounter:
    """Counts external calls; ``crash_at`` makes the n-th call (0-based) raise ``Crash`` before it acts."""

    def __init__(self, crash_at: int | None = None, *, only: Callable[[str], bool] = lambda name: True) -> None:
        self.calls: list[str] = []
        self.crash_at = crash_at
        self._only = only

    def __call__(self, name: str) -> None:
        if not self._only(name):
            return
        n = len(self.calls)
        self.calls.append(name)
        if self.crash_at is not None and n == self.crash_at:
            raise Crash(f"crash before call {n}: {name}")


# --- deterministic interleaving ------------------------------------------------------------------------
class Interleaver:
    """Runs steps on threads but lets exactly one proceed at a time, switching only at external calls.

    ``schedule`` says, at each external call, which step runs next (by index); when it is exhausted or
    names a finished step, the lowest unfinished step runs. So a schedule is a deterministic
    interleaving: ``[0, 0, 1]`` runs step 0 for two calls, then step 1, and so on. Exceptions raised by a
    step are kept in ``errors`` (by step index).
    """

    def __init__(self, stack: Stack, steps: list[Callable[[], object]], schedule: list[int]) -> None:
        self._stack = stack
        self._steps = steps
        self._schedule = list(schedule)
        self._turn = threading.Condition()
        self._current: int | None = None
        self._done: set[int] = set()
        self._local = threading.local()
        self.errors: dict[int, BaseException] = {}
        self.results: dict[int, object] = {}
        self.switches = 0

    def _next(self) -> int | None:
        alive = [i for i in range(len(self._steps)) if i not in self._done]
        if not alive:
            return None
        while self._schedule:
            choice = self._schedule.pop(0)
            if choice in alive:
                return choice
        return alive[0]

    def _hook(self, name: str) -> None:
        me = getattr(self._local, "index", None)
        if me is None:
            return
        with self._turn:
            chosen = self._next()
            if chosen != me:
                self.switches += 1
            self._current = chosen
            self._turn.notify_all()
            self._turn.wait_for(lambda: self._current == me)

    def _run(self, index: int) -> None:
        self._local.index = index
        with self._turn:
            self._turn.wait_for(lambda: self._current == index)
        try:
            self.results[index] = self._steps[index]()
        except BaseException as exc:
            self.errors[index] = exc
        finally:
            with self._turn:
                self._done.add(index)
                self._current = self._next()
                self._turn.notify_all()

    def run(self, *, timeout: float = 30.0) -> None:
        self._stack.set_hook(self._hook)
        threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(len(self._steps))]
        for t in threads:
            t.start()
        with self._turn:
            self._current = self._next()
            self._turn.notify_all()
        for t in threads:
            t.join(timeout)
            if t.is_alive():
                raise AssertionError("an interleaved step did not finish (deadlock in the schedule)")
        self._stack.clear_hook()


@contextmanager
def hooked(stack: Stack, hook: Callable[[str], None]) -> Iterator[None]:
    stack.set_hook(hook)
    try:
        yield
    finally:
        stack.clear_hook()
