"""Per-user quotas (issue 13): requests per minute, upload sessions per day, open upload slots. They
live in the record store, so they hold across instances, and no two instances both take the last unit."""

from __future__ import annotations

import threading

import pytest

from shared.commands import CreateUploads
from shared.errors import QuotaExceeded
from shared.services.quotas import QuotaService, subject_of
from tests.service.support import make_stack, new_user, principal


def test_requests_per_minute_then_429_until_the_window_ends() -> None:
    stack = make_stack(QUOTA_REQUESTS_PER_MINUTE="5")
    user = new_user()
    stack.clock.now = stack.clock.now.replace(second=40, microsecond=0)
    for _ in range(5):
        stack.services.quotas.charge_request(user)
    with pytest.raises(QuotaExceeded) as refused:
        stack.services.quotas.charge_request(user)
    assert 1 <= refused.value.retry_after <= 21 and refused.value.code == "TooManyRequests"
    other = new_user()  # per user
    stack.services.quotas.charge_request(other)
    stack.clock.advance(seconds=21)
    stack.services.quotas.charge_request(user)  # a new minute
    # The expired window was dropped: one minute row per user, keyed by a pseudonym.
    rows = stack.services.repos.quotas.partition(subject_of(user))
    assert [r.window[:2] for r in rows] == ["m:"]
    assert all(user not in str(k) for k in stack.records.tables["quotas"])


def test_instances_sharing_the_store_never_exceed_the_limit() -> None:
    stack = make_stack(QUOTA_REQUESTS_PER_MINUTE="40")
    user = new_user()
    # Four "instances": separate services over the same record store.
    instances = [QuotaService(repos=stack.services.repos, settings=stack.services.settings, clock=stack.clock)
                 for _ in range(4)]
    allowed: list[int] = []
    lock = threading.Lock()

    def hammer(q: QuotaService) -> None:
        for _ in range(20):
            try:
                q.charge_request(user)
            except QuotaExceeded:
                continue
            with lock:
                allowed.append(1)

    threads = [threading.Thread(target=hammer, args=(q,)) for q in instances]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 40


def test_upload_sessions_per_day_and_open_slots() -> None:
    stack = make_stack(QUOTA_UPLOAD_SESSIONS_PER_DAY="3", QUOTA_OPEN_UPLOAD_SLOTS="4")
    user = new_user()
    stack.consent(user)
    p = principal(user)
    stack.services.enrollment.create_uploads(CreateUploads(p, 3))
    with pytest.raises(QuotaExceeded) as refused:  # 3 open + 2 > 4
        stack.services.enrollment.create_uploads(CreateUploads(p, 2))
    assert refused.value.code == "TooManyOpenUploads"
    stack.services.enrollment.create_uploads(CreateUploads(p, 1))  # 4 open: allowed
    # Slots that were processed (or expired and purged) free up; sessions per day still count.
    for upload in stack.services.repos.uploads.partition(user):
        def done(u):  # type: ignore[no-untyped-def]
            u.status = "rejected"
        stack.services.repos.uploads.mutate(done, user, upload.upload_id)
    stack.services.enrollment.create_uploads(CreateUploads(p, 1))  # the third session today
    with pytest.raises(QuotaExceeded) as refused:
        stack.services.enrollment.create_uploads(CreateUploads(p, 1))
    assert refused.value.code == "TooManyUploadSessions" and refused.value.retry_after > 0
    stack.clock.advance(days=1)
    stack.services.enrollment.create_uploads(CreateUploads(p, 1))
