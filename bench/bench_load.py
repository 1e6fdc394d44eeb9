"""Load: 200 users consent and each upload 3 photos at once, through the local host and the real SAS path.
With ``--chaos``, the same burst while the Face emulator injects 10% 503s, 200 ms latency on every call
and a rate limit below the demand (bench_chaos.py runs it so).

The whole local stack is started on free loopback ports (Azurite, the Face emulator, the local
Functions host running function_app). A bounded pool of 32 client threads plays the front ends:
terms, consent, one upload session of 3 slots, 3 PUTs to the create-only SAS URLs (Azurite), then each
user's status is polled every 2 s until every photo is final (accepted, rejected or discarded) or the
run's deadline (30 min; 40 with --chaos: this 2-core machine is shared) passes. Loopback only; bounded in count and time.

Under ``--chaos`` one user in ten withdraws (DELETE /api/enrollment) once their photos are final, and
after everything settled (the emulator calm again) the invariants are checked against storage and the
emulator: no duplicate face (an upload's face added twice), no orphan person (a person no consenting
user's record names, a revoked user's included), no kept photo without consent, no erasure pending.

Reported: time from a photo's PUT to the first poll that sees it final (p50/p95/max; resolution is the
poll interval), outcomes, HTTP 5xx (must be 0), photos lost (never final; must be 0), Face calls per
enrolled user and by operation (the emulator's counters over the run, status polls' training checks
included), trainings per burst (distinct training operations the emulator started). Exit code 1 if
any 5xx, lost photo or broken invariant. Results: .local/bench/results.json (benches.load / .chaos).

    python bench/bench_load.py [--users 200] [--photos 3] [--chaos] [--rate 6] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import loadkit  # noqa: E402
from local.stack import running_stack  # noqa: E402

CLIENTS = 32
POLL_SECONDS = 2.0
FULL_USERS, FULL_PHOTOS = 200, 3


def withdraw(client: loadkit.Client, runs: list[loadkit.UserRun], deadline: float) -> set[str]:
    """Every tenth user withdraws after their photos are final; returns who asked (202)."""
    revoked: set[str] = set()
    for i, run in enumerate(runs):
        if i % 10 == 5 and not run.failed_step:
            r = client.api("DELETE", "enrollment", run.user)
            if r is not None and r.status_code == 202:
                revoked.add(run.user)
            else:
                print(f"withdrawal answered {getattr(r, 'status_code', 'error')}")
    return revoked


def wait_settled(env: dict[str, str], revoked: set[str], deadline: float) -> bool:
    """Until every withdrawn user's records are erased and no erasure is pending (or the deadline)."""
    from shared.bootstrap import build
    from shared.settings import Settings

    s = build(Settings.from_env(env))
    while time.monotonic() < deadline and not loadkit.STOP.is_set():
        left = [u for u in revoked if s.repos.users.get(u) is not None]
        if not left and not any(True for _ in s.repos.pending_erasures.range()):
            return True
        time.sleep(2)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=FULL_USERS)
    parser.add_argument("--photos", type=int, default=FULL_PHOTOS)
    parser.add_argument("--chaos", action="store_true", help="10%% 503s, 200 ms latency and a rate limit")
    parser.add_argument("--rate", type=float, default=6.0,
                        help="--chaos: the emulator's rate limit, calls/s (the unthrottled burst asks for more)")
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--model", choices=["synthetic", "dlib"], default="synthetic",
                        help="the emulator's face model: synthetic (hash-based, cheap: the app is measured) or dlib "
                             "(the real model: on 2 cores its CPU is the bottleneck)")
    parser.add_argument("--deadline-min", type=float, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    loadkit.stop_cleanly_on_signals()
    bench = "chaos" if args.chaos else "load"
    deadline_s = 60 * (args.deadline_min or (40 if args.chaos else 30))
    full = args.users == FULL_USERS and args.photos == FULL_PHOTOS and args.model == "synthetic"
    photos = loadkit.photo_bytes(args.model)
    log_dir = Path(tempfile.mkdtemp(prefix=f"bench-{bench}-"))
    with loadkit.recorded(bench, args.json, publish=full) as record:
        print(f"logs in {log_dir}")
        with running_stack(log_dir=log_dir) as stack:
            face = stack.face_endpoint
            loadkit.configure_face(face, synthetic=args.model == "synthetic")
            print(f"Face emulator model: {args.model}")
            chaos: dict[str, Any] = {}
            if args.chaos:
                chaos = {"faultRate": args.fault_rate, "faultStatuses": [503], "latencyMs": args.latency_ms,
                         "rateLimitPerSecond": args.rate, "seed": 13}
                loadkit.configure_face(face, **chaos)
                print(f"chaos: {chaos}")
            before = loadkit.face_stats(face)
            meter = loadkit.DemandMeter(face)
            meter.start()
            client = loadkit.Client(stack.host_url)
            started = time.monotonic()
            users = [f"{bench}-{i:04d}" for i in range(args.users)]
            burst = loadkit.burst(client, users, args.photos, photos, clients=CLIENTS, poll_s=POLL_SECONDS,
                                  deadline_s=deadline_s)
            meter.stop.set()
            after = loadkit.face_stats(face)
            delta = loadkit.face_delta(before, after)
            figures = burst.figures()
            revoked: set[str] = set()
            invariants: dict[str, Any] = {}
            settled = True
            if args.chaos:
                revoked = withdraw(client, burst.runs, started + deadline_s)
                settled = wait_settled(stack.env, revoked, started + deadline_s + 300)
                loadkit.configure_face(face, **loadkit.CALM)  # the check reads the emulator; no faults for it
                consenting = {r.user for r in burst.runs if not r.failed_step}
                invariants = loadkit.check_invariants(stack.env, consenting=consenting, revoked=revoked)
            dead = [c.name for c in stack.dead_children()]
        five_xx = client.five_xx
        per_user = delta["calls"] / max(1, figures["enrolledUsers"])
        print(f"{args.users} users x {args.photos} photos = {figures['uploads']} uploads; all PUT in "
              f"{figures['uploadPhaseS']:.1f} s, burst settled in {figures['wallS']:.1f} s")
        if figures["latencyP50S"] is not None:
            print(f"upload -> final status: p50 {figures['latencyP50S']:.1f} s, p95 {figures['latencyP95S']:.1f} s, "
                  f"max {figures['latencyMaxS']:.1f} s (poll every {POLL_SECONDS:.0f} s)")
        print(f"outcomes {figures['outcomes']}; lost {figures['lost']}"
              f"{'; broken flows ' + str(dict(figures['failedSteps'])) if figures['failedSteps'] else ''}")
        print(f"HTTP statuses {dict(sorted(client.statuses.items()))}; 5xx {five_xx}; "
              f"client errors {dict(client.errors) or 0}")
        if client.failures:
            print(f"5xx answers: {dict(client.failures)}")
        print(f"Face calls {delta['calls']} (429 {delta['throttled']}, injected 5xx {delta['faults']}), "
              f"per enrolled user {per_user:.1f} ({figures['enrolledUsers']} enrolled)")
        mean_rate = delta["calls"] / max(figures["wallS"], 1e-9)
        print(f"Face calls/s: mean {mean_rate:.1f} over the burst, peak {meter.peak():.1f} (5 s windows)"
              + (f"; the limit was {args.rate:g}/s" if args.chaos else ""))
        print(f"Face calls by operation: {delta['byOperation']}")
        print(f"trainings in the burst: {delta['trainings']} (train requests answered 202: {delta['trainRequests']})")
        violations = 0
        if args.chaos:
            violations = (invariants["duplicateFaces"] + invariants["uploadUnderTwoPersons"]
                          + invariants["orphanPersons"] + invariants["keptWithoutConsent"]
                          + invariants["revokedUsersStillRecorded"] + invariants["pendingErasures"])
            print(f"withdrawn {len(revoked)} users; erasures settled: {settled}")
            print(f"invariants: {invariants}")
        if dead:
            print(f"stack children that died: {dead}")
        ok = (figures["lost"] == 0 and five_xx == 0 and not client.errors and not dead
              and (not args.chaos or (settled and violations == 0)))
        record.update({"users": args.users, "photos": args.photos, "model": args.model, "chaos": chaos, **figures,
                       "failedSteps": dict(figures["failedSteps"]), "http5xx": five_xx,
                       "httpStatuses": {str(k): v for k, v in sorted(client.statuses.items())},
                       "clientErrors": dict(client.errors), "httpFailures": dict(client.failures), "face": delta, "faceCalls": delta["calls"],
                       "faceCallsPerEnrolledUser": round(per_user, 2),
                       "faceCallsPerSecondMean": round(mean_rate, 2), "faceCallsPerSecondPeak": round(meter.peak(), 2), "trainings": delta["trainings"],
                       "trainRequests": delta["trainRequests"], "withdrawn": len(revoked), "settled": settled,
                       "invariants": invariants, "invariantViolations": violations, "deadChildren": dead, "ok": ok})
        print("goal met" if ok else "goal MISSED (every upload final, zero 5xx, invariants hold)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
