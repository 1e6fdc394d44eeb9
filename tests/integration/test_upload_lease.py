"""A redelivery never runs an upload's processing concurrently with a delivery still at work on it.

Two deliveries of one BlobCreated (Event Grid redelivers when the first one is slow to answer): the
second arrives while the first is inside Face detection, once at the same moment and once a minute
later (longer than the old 30 s lease, shorter than the function timeout). Real Azurite and emulator."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from shared.commands import ProcessUpload
from shared.errors import FaceTransientError, TransientFailure
from tests.fixtures.azurite import Azurite
from tests.fixtures.paths import face_bytes
from tests.integration.erasure_support import Clock, in_process, new_user

pytestmark = pytest.mark.integration


class HeldDetect:
    """The real Face port, whose detect waits until released and counts how many run at once."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self.entered = threading.Event()
        self.release = threading.Event()
        self.active = 0
        self.most = 0
        self.calls = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def detect(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.active += 1
            self.calls += 1
            self.most = max(self.most, self.active)
        self.entered.set()
        try:
            assert self.release.wait(30)
            return self._target.detect(*args, **kwargs)
        finally:
            with self._lock:
                self.active -= 1


@pytest.mark.parametrize("later_seconds", [0, 60, 590])
def test_a_redelivery_while_the_first_delivery_runs_backs_off(azurite: Azurite, face_api: Any,
                                                              later_seconds: int) -> None:
    held: list[HeldDetect] = []

    def wrap(target: Any) -> Any:
        if hasattr(target, "detect"):
            held.append(HeldDetect(target))
            return held[-1]
        return target

    clock = Clock()
    stack = in_process(azurite, face_api.endpoint, clock=clock, wrap=wrap)
    face = held[0]
    user = new_user()
    stack.consent(user, store_photos=False)
    (slot,) = stack.slots(user)
    photo = face_bytes("family1-dad/1.jpg")
    put = requests.put(slot.url, data=photo, headers={"x-ms-blob-type": "BlockBlob"}, timeout=30)
    assert put.status_code == 201
    outcomes: dict[str, Any] = {}

    def deliver(tag: str) -> None:
        try:
            outcomes[tag] = stack.services.enrollment.process_upload(ProcessUpload(slot.blob_name, photo))
        except TransientFailure as exc:
            outcomes[tag] = exc

    first = threading.Thread(target=deliver, args=("first",))
    first.start()
    assert face.entered.wait(30)
    clock.advance(seconds=later_seconds)
    second = threading.Thread(target=deliver, args=("second",))
    second.start()
    second.join(30)  # the redelivery answers at once (Event Grid will retry it), without waiting for the first
    assert not second.is_alive()
    face.release.set()
    first.join(60)
    assert outcomes["first"] == "accepted"
    assert isinstance(outcomes["second"], TransientFailure)
    assert face.calls == 1 and face.most == 1
    # And once the first has finished, a further redelivery is a harmless duplicate.
    assert stack.services.enrollment.process_upload(ProcessUpload(slot.blob_name, photo)) == "duplicate"
    assert stack.services.enrollment.status(user).photos[0].status == "accepted"


def test_a_claim_older_than_the_lease_is_taken_over(azurite: Azurite, face_api: Any) -> None:
    # A delivery that died (host crash) leaves its claim; once the lease is over, a redelivery finishes the job.
    clock = Clock()
    stack = in_process(azurite, face_api.endpoint, clock=clock)
    user = new_user()
    stack.consent(user, store_photos=False)
    (slot,) = stack.slots(user)
    records = stack.services.records
    row, etag = records.get("uploads", user, slot.upload_id) or ({}, "")
    assert row
    row.update({"status": "processing", "claimedAt": clock().isoformat().replace("+00:00", "Z")})
    records.update("uploads", row, etag=etag)
    clock.advance(seconds=stack.services.settings.upload_processing_lease_seconds + 1)
    assert stack.deliver(slot, face_bytes("family1-dad/1.jpg")) == "accepted"


class FailingOnce:
    """The real Face port, whose first detect fails as a Face outage would."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def detect(self, *args: Any, **kwargs: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise FaceTransientError("503 from Face")
        return self._target.detect(*args, **kwargs)


def test_a_delivery_that_fails_releases_its_claim_for_the_redelivery(azurite: Azurite, face_api: Any) -> None:
    # The long lease is for deliveries that may still be running; one that has failed is over, and
    # its redelivery (Event Grid's next attempt) must not wait out the lease.
    stack = in_process(azurite, face_api.endpoint, wrap=lambda t: FailingOnce(t) if hasattr(t, "detect") else t)
    user = new_user()
    stack.consent(user, store_photos=False)
    (slot,) = stack.slots(user)
    photo = face_bytes("family1-dad/1.jpg")
    with pytest.raises(FaceTransientError):
        stack.deliver(slot, photo)
    assert stack.services.enrollment.process_upload(ProcessUpload(slot.blob_name, photo)) == "accepted"
