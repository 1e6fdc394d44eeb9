"""An enrollment burst: 100 users upload 3 photos each at once, through the local host as in production.

Each user consents and asks for three upload slots first; then all 300 photos are PUT to their SAS URLs
from 16 threads. Upload-to-enrolled latency of a photo is from the end of its PUT to the time its upload
record says it was processed (``processedAt``, written when the face is in the group). The Face emulator
runs in synthetic mode with ``latencyMs`` (150 ms by default, a plausible latency of the Face service)
and no rate limit; it reports the time during which at least one Face call was in flight
(``busySeconds``). Goal: wall time of the burst / time inside Face calls <= 1.5 (the app adds at most
half again to what Face itself takes); p50 and p95 latency are reported.

    python bench/bench_enroll_burst.py [--users 100] [--photos 3] [--latency-ms 150] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local.stack import running_stack  # noqa: E402
from tests.fixtures.app_stack import principal_header  # noqa: E402
from tests.fixtures.paths import face_bytes  # noqa: E402

PHOTOS = ["family1-dad/1.jpg", "family1-dad/2.jpg", "family2-man/1.jpg", "family2-man/2.jpg",
          "family2-lady/1.jpg", "family2-lady/2.jpg", "obama/1.jpg", "obama/3.jpg"]
GOAL_RATIO = 1.5


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=150)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    images = [face_bytes(p) for p in PHOTOS]
    with running_stack(log_dir=ROOT / ".local" / "logs" / "bench-enroll",
                       extra_env={"TRAINING_COALESCE_SECONDS": "5"}) as stack:
        face = stack.face_endpoint
        requests.post(f"{face}/_emulator/config", json={"synthetic": True, "latencyMs": args.latency_ms},
                      timeout=10).raise_for_status()
        api = f"{stack.host_url}/api"
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=32)
        session.mount("http://", adapter)

        def call(method: str, path: str, user: str, **kw: Any) -> requests.Response:
            headers = {"X-MS-CLIENT-PRINCIPAL": principal_header(user)}
            return session.request(method, f"{api}/{path}", headers=headers, timeout=60, **kw)

        users = [f"burst-{i:04d}" for i in range(args.users)]
        slots: list[tuple[str, str, str]] = []  # user, upload id, SAS URL
        lock = threading.Lock()

        def prepare(user: str) -> None:
            terms = call("GET", "consent/terms", user).json()["termsVersion"]
            r = call("POST", "consent", user, json={"termsVersion": terms, "accepted": True, "storePhotos": False})
            assert r.status_code == 201, r.text
            r = call("POST", "enrollment/uploads", user, json={"count": args.photos})
            assert r.status_code == 201, r.text
            with lock:
                slots.extend((user, s["uploadId"], s["url"]) for s in r.json()["uploads"])

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(prepare, users))
        before = requests.get(f"{face}/_emulator/stats", timeout=10).json()
        put_done: dict[str, float] = {}

        def put(i: int) -> None:
            _user, upload_id, url = slots[i]
            r = requests.put(url, data=images[i % len(images)], headers={"x-ms-blob-type": "BlockBlob"}, timeout=60)
            assert r.status_code == 201, r.text
            with lock:
                put_done[upload_id] = time.time()

        started = time.time()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, range(len(slots))))
        processed: dict[str, float] = {}
        statuses: dict[str, str] = {}
        deadline = time.monotonic() + 600
        from azure.data.tables import TableServiceClient

        from shared.settings import Settings

        prefix = Settings.from_env(stack.env).table_prefix
        table = TableServiceClient.from_connection_string(stack.env["PhotoStorage"]).get_table_client(f"{prefix}uploads")
        while time.monotonic() < deadline and len(processed) < len(slots):
            for row in table.list_entities(select=["RowKey", "status", "processedAt"]):
                if row.get("processedAt") and row["RowKey"] in put_done:
                    processed[row["RowKey"]] = datetime.fromisoformat(
                        str(row["processedAt"]).replace("Z", "+00:00")).astimezone(UTC).timestamp()
                    statuses[row["RowKey"]] = str(row.get("status"))
            time.sleep(0.5)
        after = requests.get(f"{face}/_emulator/stats", timeout=10).json()
    latencies = sorted(processed[u] - put_done[u] for u in processed)
    wall = max(processed.values()) - started if processed else float("nan")
    busy = after["busySeconds"] - before["busySeconds"]
    accepted = sum(1 for s in statuses.values() if s == "accepted")
    p50 = statistics.median(latencies) if latencies else float("nan")
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else float("nan")
    ratio = wall / busy if busy else float("inf")
    result = {"users": args.users, "photos": len(slots), "processed": len(processed), "accepted": accepted,
              "latencyP50S": round(p50, 3), "latencyP95S": round(p95, 3), "wallS": round(wall, 3),
              "faceBusyS": round(busy, 3), "faceCalls": after["calls"] - before["calls"],
              "wallOverFace": round(ratio, 3), "faceLatencyMs": args.latency_ms}
    print(f"burst: {args.users} users x {args.photos} photos = {len(slots)} uploads; processed {len(processed)}, "
          f"accepted {accepted}")
    print(f"upload-to-enrolled latency: p50 {p50:.2f} s, p95 {p95:.2f} s")
    print(f"wall time {wall:.1f} s; time inside Face calls {busy:.1f} s ({result['faceCalls']} calls at "
          f"{args.latency_ms} ms) -> wall / Face = {ratio:.2f}  (goal <= {GOAL_RATIO})")
    ok = len(processed) == len(slots) and ratio <= GOAL_RATIO
    print("all goals met" if ok else "GOAL MISSED")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
