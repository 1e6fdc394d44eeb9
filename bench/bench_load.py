"""Load: 200 users consent and each upload 3 photos at once, through the local host and the real SAS path.

The whole local stack is started on free loopback ports (Azurite, the Face emulator, the local
Functions host running function_app). A bounded pool of 32 client threads plays the front ends:
terms, consent, one upload session of 3 slots, 3 PUTs to the create-only SAS URLs (Azurite), then the
status is polled every 2 s per user until every photo is final (accepted or rejected) or the run's
deadline (15 min) passes.

Reported: time from a photo's PUT to the first poll that sees it final (p50/p95/max; resolution is
the 2 s poll), outcomes, HTTP 5xx (must be 0), photos lost (never final; must be 0), Face calls per
enrolled user (the emulator's counter over the whole run, status polls' training checks included).

    python bench/bench_load.py [--users 200] [--photos 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local.stack import running_stack  # noqa: E402
from tests.fixtures.app_stack import principal_header  # noqa: E402
from tests.fixtures.paths import face_bytes  # noqa: E402

PHOTOS = ["family1-dad/1.jpg", "family1-dad/2.jpg", "family1-dad/3.jpg",
          "family2-lady/1.jpg", "family2-lady/2.jpg", "family2-lady/3.jpg"]
CLIENTS = 32
POLL_SECONDS = 2.0
DEADLINE_SECONDS = 15 * 60
FINAL = {"accepted", "rejected", "discarded"}

_local = threading.local()
_lock = threading.Lock()
statuses: Counter[int] = Counter()


def http(method: str, url: str, **kwargs: Any) -> requests.Response:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    r = session.request(method, url, timeout=60, **kwargs)
    with _lock:
        statuses[r.status_code] += 1
    return r


def api(base: str, method: str, path: str, user: str, **kwargs: Any) -> requests.Response:
    headers = {"X-MS-CLIENT-PRINCIPAL": principal_header(user)}
    return http(method, f"{base}/api/{path}", headers=headers, **kwargs)


def start_user(base: str, index: int, count: int, photos: list[bytes]) -> tuple[str, dict[str, float]]:
    user = f"load-{index:04d}"
    version = api(base, "GET", "consent/terms", user).json()["termsVersion"]
    r = api(base, "POST", "consent", user, json={"termsVersion": version, "accepted": True,
                                                  "storePhotos": index % 2 == 0})
    assert r.status_code == 201, r.text
    r = api(base, "POST", "enrollment/uploads", user, json={"count": count})
    assert r.status_code == 201, r.text
    put_at: dict[str, float] = {}
    for k, slot in enumerate(r.json()["uploads"]):
        put = http("PUT", slot["url"], data=photos[(index + k) % len(photos)], headers={"x-ms-blob-type": "BlockBlob"})
        assert put.status_code == 201, put.text
        put_at[slot["uploadId"]] = time.monotonic()
    return user, put_at


def poll_user(base: str, user: str, put_at: dict[str, float], final_at: dict[str, tuple[float, str]],
              deadline: float) -> None:
    while time.monotonic() < deadline:
        r = api(base, "GET", "enrollment", user)
        if r.status_code == 200:
            now = time.monotonic()
            for p in r.json()["photos"]:
                if p["status"] in FINAL and p["uploadId"] not in final_at:
                    final_at[p["uploadId"]] = (now, p["status"])
            if all(u in final_at for u in put_at):
                return
        time.sleep(POLL_SECONDS)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--photos", type=int, default=3)
    args = parser.parse_args(argv)
    photos = [face_bytes(p) for p in PHOTOS]
    log_dir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    print(f"logs in {log_dir}")
    with running_stack(log_dir=log_dir) as stack:
        base = stack.host_url
        face_before = requests.get(f"{stack.face_endpoint}/_emulator/stats", timeout=10).json()["calls"]
        started = time.monotonic()
        deadline = started + DEADLINE_SECONDS
        final_at: dict[str, tuple[float, str]] = {}
        with ThreadPoolExecutor(CLIENTS) as pool:
            users = list(pool.map(lambda i: start_user(base, i, args.photos, photos), range(args.users)))
            uploaded = time.monotonic() - started
            list(pool.map(lambda u: poll_user(base, u[0], u[1], final_at, deadline), users))
        wall = time.monotonic() - started
        face_calls = requests.get(f"{stack.face_endpoint}/_emulator/stats", timeout=10).json()["calls"] - face_before
        put_at = {upload: t for _, uploads in users for upload, t in uploads.items()}
        latencies = [final_at[u][0] - t for u, t in put_at.items() if u in final_at]
        outcomes = Counter(status for _, status in final_at.values())
        lost = len(put_at) - len(final_at)
        enrolled = sum(1 for _, uploads in users if any(final_at.get(u, (0, ""))[1] == "accepted" for u in uploads))
        five_xx = sum(n for code, n in statuses.items() if code >= 500)
        print(f"{args.users} users x {args.photos} photos = {len(put_at)} uploads; all PUT in {uploaded:.1f} s, "
              f"run {wall:.1f} s")
        if latencies:
            print(f"upload -> final status: p50 {statistics.median(latencies):.1f} s, p95 {pct(latencies, 0.95):.1f} s, "
                  f"max {max(latencies):.1f} s (poll every {POLL_SECONDS:.0f} s)")
        print(f"outcomes {dict(outcomes)}; lost {lost}; HTTP statuses {dict(sorted(statuses.items()))}; 5xx {five_xx}")
        print(f"Face calls {face_calls}, per enrolled user {face_calls / max(1, enrolled):.1f} ({enrolled} enrolled)")
    ok = lost == 0 and five_xx == 0
    print("goal met" if ok else "goal MISSED (every upload final, zero 5xx)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
