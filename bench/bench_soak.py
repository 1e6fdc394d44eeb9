"""Soak: N minutes (default 30) of mixed traffic through the local stack, memory sampled every minute.

Traffic, in cycles of ``--cycle-s`` (20 s): 4 new users consent (with an employee id) and each
uploads 2 photos through the real SAS path; their status is polled until final. Once 40 users are
enrolled (``--population``, reached within the warm-up), the oldest leave at the same pace, half by
withdrawing (DELETE /api/enrollment), half by an HR termination event on the hr-events topic (the
Service Bus stand-in), so the data stays about the same size and memory growth means a leak, not
more data. Every ``--purge-every-min`` minutes purge_timer is
fired through the local host (POST /admin/functions/purge_timer), and once, at the middle of the run,
a re-enrollment to recognition_05 is started (POST /api/admin/reenrollments) and followed.

Every minute the resident memory (/proc VmRSS) of the local Functions host (which runs the app in
process; its children too, if any) and of the Face emulator is sampled; Azurite's is recorded as
information (it keeps everything in memory, including the audit rows that grow by design).
Verdict: memory is flat when the mean of the last 3 samples is at most 10% above the mean of the first
3 samples after the warm-up (``--warmup-min``, default 4). Also reported: HTTP 5xx and photos never
final (both must be 0), erasures still pending at the end. Exit code 1 when a goal is missed.
Results: .local/bench/soak-<time>.json and benches.soak in .local/bench/results.json.

    python bench/bench_soak.py [--minutes 30] [--warmup-min 4] [--users-per-cycle 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import loadkit  # noqa: E402
from local.stack import Stack, running_stack  # noqa: E402

GROWTH_LIMIT_PCT = 10.0
POLL_SECONDS = 2.0


def termination(employee_id: str) -> bytes:
    return json.dumps({"specversion": "1.0", "id": f"hr-{uuid.uuid4().hex}", "source": "/hr/soak",
                       "type": "hr.employee.terminated",
                       "time": datetime.now(UTC).isoformat(timespec="seconds"),
                       "data": {"employeeId": employee_id,
                                "effectiveDate": datetime.now(UTC).date().isoformat()}}).encode()


class Sampler(threading.Thread):
    """RSS of the host and the emulator (and Azurite) every ``every`` seconds."""

    def __init__(self, stack: Stack, every: float, started: float) -> None:
        super().__init__(daemon=True)
        self.pids = {name: c.process.pid for name in ("host", "face-api", "azurite")
                     if (c := stack.child(name)) is not None}
        self.every, self.started = every, started
        self.samples: list[dict[str, Any]] = []
        self.stop = threading.Event()

    def sample(self) -> None:
        row: dict[str, Any] = {"minute": round((time.monotonic() - self.started) / 60, 2)}
        row.update({name: loadkit.rss_kib(pid) for name, pid in self.pids.items()})
        self.samples.append(row)
        print(f"  memory at {row['minute']:5.1f} min: " + ", ".join(
            f"{n} {row[n] / 1024:.1f} MiB" for n in self.pids), flush=True)

    def run(self) -> None:
        self.sample()
        while not self.stop.wait(self.every):
            self.sample()


def growth(samples: list[dict[str, Any]], name: str, warmup_min: float) -> dict[str, Any]:
    after = [s[name] for s in samples if s["minute"] >= warmup_min and s.get(name)]
    if len(after) < 4:
        return {"baselineMiB": None, "endMiB": None, "maxMiB": None, "growthPct": None, "samples": len(after)}
    base, end = statistics.mean(after[:3]), statistics.mean(after[-3:])
    return {"baselineMiB": round(base / 1024, 1), "endMiB": round(end / 1024, 1), "maxMiB": round(max(after) / 1024, 1),
            "growthPct": round((end - base) / base * 100, 2), "samples": len(after)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--warmup-min", type=float, default=4.0)
    parser.add_argument("--sample-s", type=float, default=60.0)
    parser.add_argument("--cycle-s", type=float, default=20.0)
    parser.add_argument("--users-per-cycle", type=int, default=4)
    parser.add_argument("--photos", type=int, default=2)
    parser.add_argument("--population", type=int, default=40, help="enrolled users kept (the oldest leave)")
    parser.add_argument("--purge-every-min", type=float, default=3.0)
    parser.add_argument("--model", choices=["synthetic", "dlib"], default="synthetic")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    loadkit.stop_cleanly_on_signals()
    photos = loadkit.photo_bytes(args.model)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    full = args.minutes >= 30
    with loadkit.recorded("soak", args.json, publish=full) as record:
        print(f"logs in {log_dir}; {args.minutes:g} min, warm-up {args.warmup_min:g} min, "
              f"{args.users_per_cycle} users x {args.photos} photos every {args.cycle_s:g} s")
        with running_stack(log_dir=log_dir) as stack:
            from shared.adapters.storage_queue_bus import StorageQueueBus
            from shared.ports import OutgoingMessage

            loadkit.configure_face(stack.face_endpoint, synthetic=args.model == "synthetic")
            bus = StorageQueueBus(connection_string=stack.connection_string)
            topic = stack.env.get("HR_EVENTS_TOPIC", "hr-events")
            client = loadkit.Client(stack.host_url)
            admin = "soak-admin"
            started = time.monotonic()
            end = started + args.minutes * 60
            sampler = Sampler(stack, args.sample_s, started)
            sampler.start()
            counts = {"enrolled": 0, "withdrawn": 0, "terminated": 0, "purges": 0, "purgeFailures": 0,
                      "uploads": 0, "lost": 0, "cycles": 0}
            latencies: list[float] = []
            population: list[loadkit.UserRun] = []  # enrolled, not yet gone
            reenroll: dict[str, Any] = {}
            next_purge = started + args.purge_every_min * 60
            purge_threads: list[threading.Thread] = []

            def purge() -> None:
                try:
                    r = requests.post(f"{stack.host_url}/admin/functions/purge_timer", data=b"{}", timeout=600)
                    ok = r.status_code < 300  # 500 with the error when the invocation failed
                except requests.RequestException:
                    ok = False
                counts["purges"] += 1
                counts["purgeFailures"] += 0 if ok else 1

            n = 0
            with ThreadPoolExecutor(max(4, args.users_per_cycle)) as pool:
                while time.monotonic() < end and not loadkit.STOP.is_set():
                    cycle_start = time.monotonic()
                    users = [f"soak-{n + i:05d}" for i in range(args.users_per_cycle)]
                    n += args.users_per_cycle
                    runs = list(pool.map(lambda iu: loadkit.start_user(
                        client, iu[1], args.photos, photos, index=iu[0], store_photos=iu[0] % 2 == 0,
                        employee_id=f"E{iu[1]}"), enumerate(users, n)))
                    list(pool.map(lambda r: loadkit.poll_user(client, r, time.monotonic() + 180, POLL_SECONDS), runs))
                    for r in runs:
                        counts["uploads"] += len(r.put_at)
                        counts["lost"] += sum(1 for u in r.put_at if u not in r.final_at) + (1 if r.failed_step else 0)
                        latencies += [r.final_at[u][0] - t for u, t in r.put_at.items() if u in r.final_at]
                        if any(s == "accepted" for _, s in r.final_at.values()):
                            counts["enrolled"] += 1
                    # Once the population is reached, as many leave as joined (the oldest): half withdraw, half
                    # are terminated; the data then stays about the same size.
                    population += runs
                    cut = max(0, len(population) - args.population)
                    leaving, population = population[:cut], population[cut:]
                    for k, r in enumerate(leaving):
                        if k % 2 == 0:
                            resp = client.api("DELETE", "enrollment", r.user)
                            counts["withdrawn"] += 1 if resp is not None and resp.status_code == 202 else 0
                        else:
                            assert r.employee_id is not None
                            bus.send(topic, [OutgoingMessage(body=termination(r.employee_id),
                                                             message_id=f"hr-{uuid.uuid4().hex}")])
                            counts["terminated"] += 1
                    if time.monotonic() >= next_purge:
                        next_purge += args.purge_every_min * 60
                        t = threading.Thread(target=purge, daemon=True)
                        t.start()
                        purge_threads.append(t)
                    if not reenroll and time.monotonic() - started >= args.minutes * 30:
                        asked = client.api("POST", "admin/reenrollments", admin, admin=True,
                                           json={"recognitionModel": "recognition_05"})
                        reenroll = {"startedAtMin": round((time.monotonic() - started) / 60, 2),
                                    "answer": getattr(asked, "status_code", None),
                                    "runId": asked.json().get("runId")
                                    if asked is not None and asked.status_code < 300 else None}
                        print(f"  re-enrollment started at {reenroll['startedAtMin']} min: HTTP {reenroll['answer']}")
                    if reenroll.get("runId") and "final" not in reenroll:
                        got = client.api("GET", f"admin/reenrollments/{reenroll['runId']}", admin, admin=True)
                        if got is not None and got.status_code == 200:
                            body = got.json()
                            reenroll["status"] = body.get("status")
                            if body.get("status") in ("switched", "failed", "cancelled"):
                                reenroll["final"] = body.get("status")
                                reenroll["endedAtMin"] = round((time.monotonic() - started) / 60, 2)
                                reenroll.update({k: body.get(k) for k in ("total", "done", "failed", "skipped")})
                                print(f"  re-enrollment {body.get('status')} at {reenroll['endedAtMin']} min")
                    counts["cycles"] += 1
                    time.sleep(max(0.0, args.cycle_s - (time.monotonic() - cycle_start)))
            for t in purge_threads:
                t.join(timeout=600)
            sampler.stop.set()
            sampler.join(timeout=30)
            sampler.sample()  # the last one, after the traffic
            from shared.bootstrap import build
            from shared.settings import Settings

            services = build(Settings.from_env(stack.env))
            pending = sum(1 for _ in services.repos.pending_erasures.range())
            dead = [c.name for c in stack.dead_children()]
        host = growth(sampler.samples, "host", args.warmup_min)
        face = growth(sampler.samples, "face-api", args.warmup_min)
        azurite = growth(sampler.samples, "azurite", args.warmup_min)
        five_xx = client.five_xx
        print(f"traffic: {counts}")
        if latencies:
            print(f"upload -> final: p50 {statistics.median(latencies):.1f} s, p95 {loadkit.pct(latencies, 0.95):.1f} s, "
                  f"max {max(latencies):.1f} s")
        print(f"re-enrollment: {reenroll}")
        print(f"HTTP statuses {dict(sorted(client.statuses.items()))}; 5xx {five_xx}; client errors "
              f"{dict(client.errors) or 0}; erasures pending at the end {pending}")
        if client.failures:
            print(f"5xx answers: {dict(client.failures)}")
        for name, g in (("host", host), ("Face emulator", face), ("Azurite (info)", azurite)):
            print(f"{name} RSS after warm-up: {g['baselineMiB']} -> {g['endMiB']} MiB (max {g['maxMiB']}), "
                  f"growth {g['growthPct']}% over {g['samples']} samples")
        flat = all(g["growthPct"] is not None and g["growthPct"] <= GROWTH_LIMIT_PCT for g in (host, face))
        ok = flat and five_xx == 0 and counts["lost"] == 0 and not dead and not client.errors
        if dead:
            print(f"stack children that died: {dead}")
        record.update({"minutes": args.minutes, "warmupMin": args.warmup_min, "model": args.model, **counts,
                       "latencyP50S": round(statistics.median(latencies), 2) if latencies else None,
                       "latencyP95S": round(loadkit.pct(latencies, 0.95), 2) if latencies else None,
                       "reenrollment": reenroll, "http5xx": five_xx,
                       "httpStatuses": {str(k): v for k, v in sorted(client.statuses.items())},
                       "clientErrors": dict(client.errors), "httpFailures": dict(client.failures), "pendingErasures": pending, "deadChildren": dead,
                       "samples": sampler.samples, "host": host, "face": face, "azurite": azurite,
                       "hostGrowthPct": host["growthPct"], "faceGrowthPct": face["growthPct"],
                       "memoryFlat": flat, "ok": ok})
        print(f"memory {'flat' if flat else 'NOT flat'} (limit {GROWTH_LIMIT_PCT:g}% after warm-up); "
              + ("goal met" if ok else "goal MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
