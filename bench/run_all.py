"""`make bench`: every benchmark in bench/ (but the load, chaos and soak runs, which have a make target
each), their figures in one file and one table.

Each benchmark runs in its own process; its raw output goes to .local/bench/<name>.txt and its
figures to .local/bench/results.json, with the machine, the date, the commit measured and the load
average (``uptime``) before and after it: figures taken while the machine is busy with other work are
slower, and say so.
The table printed at the end has every figure, its goal and PASS/FAIL. ``scripts/render_bench_table.py``
renders the README's table from the same file.

    python bench/run_all.py                      # everything (about an hour on 2 cores)
    python bench/run_all.py --only reenroll-r20 purge   # some; the others keep their last results
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / ".local" / "bench"
RESULTS = OUT / "results.json"


@dataclass(frozen=True)
class Bench:
    name: str
    args: list[str]
    json: bool = True  # writes --json; otherwise figures are parsed from its output
    runs: int = 1


BENCHES = [
    Bench("roundtrips", ["roundtrips_reenroll.py"], json=False),
    Bench("reenroll-r20", ["bench_reenroll.py", "--rate", "20"], runs=3),
    # Two host instances, as Flex Consumption scales out for a backlog: one Python process is GIL-bound
    # near 0.7 of R = 50 on a 2-core machine (docs/performance.md §2); one instance is measured too.
    Bench("reenroll-r50", ["bench_reenroll.py", "--rate", "50", "--instances", "2"], runs=3),
    Bench("reenroll-r50-one", ["bench_reenroll.py", "--rate", "50", "--instances", "1"]),
    Bench("purge", ["bench_purge.py", "--users", "10000"]),
    # The point: 100,000 users (the set-up takes about half an hour here).
    Bench("purge-100k", ["bench_purge.py", "--users", "100000"]),
    Bench("enroll-burst", ["bench_enroll_burst.py"]),
    Bench("cold-start", ["bench_cold_start.py"], json=False),
    Bench("face-emulator", ["bench_face_emulator.py"], json=False),
    Bench("hostile-images", ["bench_hostile.py"], json=False, runs=3),
]


@dataclass(frozen=True)
class Figure:
    """One row of the table: a value taken from a benchmark's results, its goal and the check."""

    bench: str
    label: str
    value: Callable[[dict[str, Any]], float | None]
    unit: str
    goal: str
    check: Callable[[float], bool] | None


def _runs(r: dict[str, Any]) -> list[dict[str, Any]]:
    return list(r.get("runs") or [])


def _point(r: dict[str, Any], fraction: float) -> dict[str, Any]:
    return next(p for p in r["runs"][0]["points"] if abs(p["dueFraction"] - fraction) < 1e-9)


def _parsed(pattern: str) -> Callable[[dict[str, Any]], float | None]:
    def get(r: dict[str, Any]) -> float | None:
        found = re.search(pattern, r["runs"][0].get("output", ""))
        return float(found.group(1)) if found else None
    return get


def _worst(pattern: str) -> Callable[[dict[str, Any]], float | None]:
    """The highest value ``pattern`` finds across all runs (None if no run printed it)."""
    def get(r: dict[str, Any]) -> float | None:
        found = [float(m.group(1)) for run in _runs(r) if (m := re.search(pattern, run.get("output", "")))]
        return max(found) if found else None
    return get


FIGURES: list[Figure] = [
    # 29 before issue 14; 17 before the person factory tracked persons in personattempts (2 writes).
    Figure("roundtrips", "Re-enrollment: storage round trips per user on the critical path (was 29)",
           _parsed(r"work item \(critical path\): .*storage ([\d.]+)"), "", "≤ 19", lambda v: v <= 19),
    Figure("reenroll-r20", "Re-enrollment R = 20, 500 users × 3 photos: achieved / R, lowest of 3 runs",
           lambda r: min(x["achievedOverR"] for x in _runs(r)), "", "≥ 0.95", lambda v: v >= 0.95),
    Figure("reenroll-r20", "Re-enrollment R = 20: achieved / R, highest of 3 runs",
           lambda r: max(x["achievedOverR"] for x in _runs(r)), "", "≥ 0.95", lambda v: v >= 0.95),
    Figure("reenroll-r20", "Re-enrollment R = 20: 429 share, worst run",
           lambda r: max(x["throttledShare"] for x in _runs(r)) * 100, "%", "≤ 1", lambda v: v <= 1.0),
    Figure("reenroll-r20", "Re-enrollment R = 20: users lost, all runs",
           lambda r: sum(x["usersLost"] for x in _runs(r)), "", "0", lambda v: v == 0),
    Figure("reenroll-r50", "Re-enrollment R = 50, 2 host instances: achieved / R, lowest of 3 runs",
           lambda r: min(x["achievedOverR"] for x in _runs(r)), "", "≥ 0.9", lambda v: v >= 0.9),
    Figure("reenroll-r50", "Re-enrollment R = 50, 2 host instances: achieved / R, highest of 3 runs",
           lambda r: max(x["achievedOverR"] for x in _runs(r)), "", "≥ 0.9", lambda v: v >= 0.9),
    Figure("reenroll-r50", "Re-enrollment R = 50, 2 host instances: 429 share, worst run",
           lambda r: max(x["throttledShare"] for x in _runs(r)) * 100, "%", "≤ 1", lambda v: v <= 1.0),
    Figure("reenroll-r50", "Re-enrollment R = 50, 2 host instances: users lost, all runs",
           lambda r: sum(x["usersLost"] for x in _runs(r)), "", "0", lambda v: v == 0),
    Figure("reenroll-r50-one", "Re-enrollment R = 50, one host instance: achieved / R (the process is the limit)",
           lambda r: r["runs"][0]["achievedOverR"], "", "—", None),
]


def _sweep_figures(bench: str, users: str, *, against_answer_scan: bool) -> list[Figure]:
    """The sweep against the users scan at each due fraction (and against the ledger+uploads scan)."""
    out: list[Figure] = []
    for fraction in (0.001, 0.01, 0.1):
        out += [
            Figure(bench, f"Purge sweep at {users} users, {fraction:.1%} due: "
                          f"{'storage requests' if against_answer_scan else 'requests'} / users-scan requests",
                   lambda r, f=fraction: _point(r, f)["sweep"]["requests"] / _point(r, f)["fullScan"]["requests"],
                   "", "< 1", lambda v: v < 1),
            Figure(bench, f"Purge sweep at {users} users, {fraction:.1%} due: wall time / users-scan time",
                   lambda r, f=fraction: _point(r, f)["sweep"]["seconds"] / _point(r, f)["fullScan"]["seconds"],
                   "", "< 1", lambda v: v < 1),
        ]
        if against_answer_scan:
            out.append(Figure(
                bench, f"Purge sweep at {users} users, {fraction:.1%} due: requests / ledger+uploads-scan requests",
                lambda r, f=fraction: _point(r, f)["sweep"]["requests"] / _point(r, f)["answerScan"]["requests"],
                "", "< 1", lambda v: v < 1))
    return out


FIGURES += _sweep_figures("purge", "10,000", against_answer_scan=True)
FIGURES += [
    Figure("purge", "Whole purge at 10,000 users, 1% due: requests / users-scan requests (the goal is at 100,000)",
           lambda r: _point(r, 0.01)["wholePurge"]["requests"] / _point(r, 0.01)["fullScan"]["requests"], "",
           "—", None),
]
FIGURES += _sweep_figures("purge-100k", "100,000", against_answer_scan=False)
FIGURES += [
    Figure("purge-100k", "Whole purge (orphans, anchor included) at 100,000 users, 1% due: requests / users-scan requests",
           lambda r: _point(r, 0.01)["wholePurge"]["requests"] / _point(r, 0.01)["fullScan"]["requests"], "",
           "< 1", lambda v: v < 1),
    Figure("purge-100k", "Whole purge at 100,000 users, 1% due: wall time / users-scan time",
           lambda r: _point(r, 0.01)["wholePurge"]["seconds"] / _point(r, 0.01)["fullScan"]["seconds"], "",
           "< 1", lambda v: v < 1),
    Figure("enroll-burst", "Enrollment burst 100 users × 3 photos: upload-to-enrolled p50",
           lambda r: r["runs"][0]["latencyP50S"], "s", "—", None),
    Figure("enroll-burst", "Enrollment burst: upload-to-enrolled p95",
           lambda r: r["runs"][0]["latencyP95S"], "s", "—", None),
    Figure("enroll-burst", "Enrollment burst: wall time / time inside Face calls",
           lambda r: r["runs"][0]["wallOverFace"], "", "≤ 1.5", lambda v: v <= 1.5),
    Figure("cold-start", "Cold start: import function_app / import azure.functions",
           _parsed(r"ratio function_app / azure.functions: ([\d.]+)"), "", "≤ 1.5", lambda v: v <= 1.5),
    Figure("face-emulator", "Face emulator: identify p95 at 100,000 persons",
           _parsed(r"p95 ([\d.]+) ms"), "ms", "≤ 20", lambda v: v <= 20),
    Figure("face-emulator", "Face emulator: training 100,000 persons",
           _parsed(r"training via HTTP: ([\d.]+) s"), "s", "≤ 10", lambda v: v <= 10),
    Figure("hostile-images", "Hostile images (generated corpus, one process per file): worst CPU per file, worst of 3 runs",
           _worst(r"worst CPU:\s+\S+ ([\d.]+) s"), "s", "≤ 2", lambda v: v <= 2.0),
    Figure("hostile-images", "Hostile images: worst peak memory per file, worst of 3 runs",
           _worst(r"worst memory:\s+\S+ ([\d.]+) MB"), "MB", "≤ 200", lambda v: v <= 200.0),
]


def _load_figures() -> list[Figure]:
    """The load, chaos and soak rows: those benches record their runs themselves (make bench-load,
    bench-chaos, bench-soak; not part of `make bench`, they take half an hour each)."""
    sys.path.insert(0, str(HERE))
    from loadkit import FIGURES as LOAD_FIGURES

    return [Figure(*f) for f in LOAD_FIGURES]


FIGURES += _load_figures()


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}"


def code() -> str:
    """The commit measured, "+changes" when the checkout had uncommitted changes to tracked files."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+changes" if dirty else head


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version()}


def run_one(bench: Bench) -> dict[str, Any]:
    OUT.mkdir(parents=True, exist_ok=True)
    runs = []
    for i in range(bench.runs):
        target = OUT / f"{bench.name}-{i + 1}.json"
        args = [sys.executable, str(HERE / bench.args[0]), *bench.args[1:]]
        if bench.json:
            args += ["--json", str(target)]
        load_before = uptime()
        started = datetime.now(UTC).isoformat(timespec="seconds")
        print(f"\n=== {bench.name} run {i + 1}/{bench.runs}   ({load_before})", flush=True)
        proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
        output = proc.stdout + (proc.stderr[-3000:] if proc.returncode else "")
        print(output, end="", flush=True)
        record: dict[str, Any] = json.loads(target.read_text()) if bench.json and target.exists() else {}
        record.update({"output": output, "exitCode": proc.returncode, "startedAt": started,
                       "loadBefore": load_before, "loadAfter": uptime(), "code": code()})
        (OUT / f"{bench.name}-{i + 1}.txt").write_text(f"{load_before}\n{output}{record['loadAfter']}\n")
        runs.append(record)
    return {"runs": runs}


def table(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for f in FIGURES:
        got = results.get("benches", {}).get(f.bench)
        value: float | None = None
        if got:
            try:
                value = f.value(got)
            except (KeyError, IndexError, StopIteration, TypeError, ValueError, ZeroDivisionError):
                value = None
        verdict = "n/a" if value is None else ("info" if f.check is None else ("PASS" if f.check(value) else "FAIL"))
        rows.append({"bench": f.bench, "figure": f.label, "value": value, "unit": f.unit, "goal": f.goal,
                     "verdict": verdict})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", choices=[b.name for b in BENCHES])
    args = parser.parse_args()
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.setdefault("benches", {})
    for bench in BENCHES:
        if args.only is not None and bench.name not in args.only:
            continue
        results["benches"][bench.name] = run_one(bench)
        OUT.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False))  # kept if a later one is stopped
    results["machine"] = machine()
    results["writtenAt"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["table"] = table(results)
    OUT.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"\n{'figure':<92} {'value':>10} {'goal':>8}  verdict")
    for row in results["table"]:
        value = "—" if row["value"] is None else f"{row['value']:.3g}{row['unit']}"
        print(f"{row['figure']:<92} {value:>10} {row['goal']:>8}  {row['verdict']}")
    failed = [r for r in results["table"] if r["verdict"] == "FAIL"]
    print(f"\n{len(failed)} figure(s) missed their goal" if failed else "\nall goals met")
    print(f"results: {RESULTS}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
