"""Shared by bench_load.py, bench_chaos.py and bench_soak.py: the client side of an enrollment burst
through the local stack (real HTTP, real SAS PUTs to Azurite), the convergence invariants checked
against storage and the Face emulator afterwards, memory sampling, and the results file.

Not a benchmark itself (no ``bench_`` prefix: ``make bench`` does not run it).

Results follow the format of ``.local/bench/results.json`` (``benches.<name>.runs[]``: each run's
figures plus ``output``, ``exitCode``, ``startedAt``, ``loadBefore``, ``loadAfter``), so the README
table renderer can read them; ``FIGURES`` lists the table rows these benches contribute.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fixtures.app_stack import principal_header  # noqa: E402
from tests.fixtures.paths import face_bytes  # noqa: E402

OUT = ROOT / ".local" / "bench"
RESULTS = OUT / "results.json"
PHOTOS = ["family1-dad/1.jpg", "family1-dad/2.jpg", "family1-dad/3.jpg",
          "family2-lady/1.jpg", "family2-lady/2.jpg", "family2-lady/3.jpg"]
# The synthetic model's face is half the image's short side: these are large enough for the quality
# rules' minimum face area (10,000 px²), so every upload of a load run is accepted.
SYNTHETIC_PHOTOS = ["family1-dad/1.jpg", "family2-lady/1.jpg", "family2-lady/2.jpg", "family2-lady/3.jpg",
                    "family2-man/2.jpg", "family2-man/3.jpg"]
FINAL = {"accepted", "rejected", "discarded"}
KEEP_RUNS = 5  # a bench's last runs kept in results.json (figures are reported as a range over runs)
STOP = threading.Event()  # set on SIGTERM/SIGINT: client threads stop, and the stack is stopped on the way out


def stop_cleanly_on_signals() -> None:
    """SIGTERM (``timeout``, a kill) and Ctrl-C stop the client threads and unwind the main thread, so
    ``running_stack`` stops Azurite, the emulator and the host instead of leaving them running."""
    import signal

    def handler(signum: int, _frame: Any) -> None:
        STOP.set()
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def photo_bytes(model: str = "synthetic") -> list[bytes]:
    return [face_bytes(p) for p in (SYNTHETIC_PHOTOS if model == "synthetic" else PHOTOS)]


# --- HTTP ------------------------------------------------------------------------------------------
class Client:
    """Thread-safe counters of every HTTP status the clients saw; a session per thread."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()  # connection errors / timeouts: a lost request, not a 5xx
        self.failures: Counter[str] = Counter()  # "METHOD /path -> 5xx": which requests failed (ids cut)
        self._local = threading.local()
        self._lock = threading.Lock()

    def http(self, method: str, url: str, **kwargs: Any) -> requests.Response | None:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        try:
            r = session.request(method, url, timeout=120, **kwargs)
        except requests.RequestException as exc:
            with self._lock:
                self.errors[type(exc).__name__] += 1
            return None
        with self._lock:
            self.statuses[r.status_code] += 1
            if r.status_code >= 500:
                where = url.split("?", 1)[0].split("/api/", 1)[-1] if "/api/" in url else "blob PUT"
                where = "/".join("{}" if len(p) >= 16 else p for p in where.split("/"))
                self.failures[f"{method} {where} -> {r.status_code} {r.text[:120]}"] += 1
        return r

    def api(self, method: str, path: str, user: str, *, employee_id: str | None = None, admin: bool = False,
            **kwargs: Any) -> requests.Response | None:
        headers = {"X-MS-CLIENT-PRINCIPAL": principal_header(user, employee_id=employee_id, admin=admin)}
        # 429 (per-user request quota) is an answer, not a failure: wait as told and ask again.
        for _ in range(10):
            r = self.http(method, f"{self.base}/api/{path}", headers=headers, **kwargs)
            if r is None or r.status_code != 429:
                return r
            time.sleep(min(30.0, float(r.headers.get("Retry-After", "1"))))
        return r

    @property
    def five_xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 500)


# --- one burst -------------------------------------------------------------------------------------
@dataclass
class UserRun:
    user: str
    employee_id: str | None
    store_photos: bool
    put_at: dict[str, float] = field(default_factory=dict)  # uploadId -> monotonic time of its PUT
    final_at: dict[str, tuple[float, str]] = field(default_factory=dict)  # uploadId -> (time seen final, status)
    failed_step: str | None = None  # a step that did not get its expected answer (reported, counts as lost)


def start_user(client: Client, user: str, count: int, photos: list[bytes], *, index: int, store_photos: bool,
               employee_id: str | None = None) -> UserRun:
    run = UserRun(user, employee_id, store_photos)
    if STOP.is_set():
        run.failed_step = "stopped"
        return run
    r = client.api("GET", "consent/terms", user)
    if r is None or r.status_code != 200:
        run.failed_step = f"terms {getattr(r, 'status_code', 'error')}"
        return run
    version = r.json()["termsVersion"]
    r = client.api("POST", "consent", user, employee_id=employee_id,
                   json={"termsVersion": version, "accepted": True, "storePhotos": store_photos})
    if r is None or r.status_code != 201:
        run.failed_step = f"consent {getattr(r, 'status_code', 'error')}"
        return run
    r = client.api("POST", "enrollment/uploads", user, json={"count": count})
    if r is None or r.status_code != 201:
        run.failed_step = f"uploads {getattr(r, 'status_code', 'error')}"
        return run
    for k, slot in enumerate(r.json()["uploads"]):
        put, stored = None, False
        # A front end retries a PUT whose connection failed, as this client does (up to 3 tries). The SAS is
        # create-only: 409 on a retry means the first try stored the blob and only its answer was lost.
        for attempt in range(3):
            put = client.http("PUT", slot["url"], data=photos[(index + k) % len(photos)],
                              headers={"x-ms-blob-type": "BlockBlob"})
            stored = put is not None and (put.status_code == 201 or (attempt > 0 and put.status_code == 409))
            if stored or (put is not None and put.status_code < 500):
                break  # stored, or refused (retrying would not help)
            time.sleep(0.5 * (attempt + 1))
        if not stored:
            run.failed_step = f"PUT {getattr(put, 'status_code', 'error')}"
            continue
        run.put_at[slot["uploadId"]] = time.monotonic()
    return run


def poll_user(client: Client, run: UserRun, deadline: float, poll_s: float) -> None:
    while time.monotonic() < deadline and not STOP.is_set():
        r = client.api("GET", "enrollment", run.user)
        if r is not None and r.status_code == 200:
            now = time.monotonic()
            for p in r.json()["photos"]:
                if p["status"] in FINAL and p["uploadId"] not in run.final_at:
                    run.final_at[p["uploadId"]] = (now, p["status"])
            if all(u in run.final_at for u in run.put_at):
                return
        STOP.wait(poll_s)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class Burst:
    runs: list[UserRun]
    upload_s: float
    wall_s: float

    @property
    def uploads(self) -> int:
        return sum(len(r.put_at) for r in self.runs)

    @property
    def latencies(self) -> list[float]:
        return [r.final_at[u][0] - t for r in self.runs for u, t in r.put_at.items() if u in r.final_at]

    @property
    def outcomes(self) -> Counter[str]:
        return Counter(s for r in self.runs for _, s in r.final_at.values())

    @property
    def lost(self) -> int:
        """Uploads PUT but never seen final, plus users whose flow broke before their PUTs."""
        never_final = sum(1 for r in self.runs for u in r.put_at if u not in r.final_at)
        return never_final + sum(1 for r in self.runs if r.failed_step)

    @property
    def enrolled(self) -> int:
        return sum(1 for r in self.runs if any(s == "accepted" for _, s in r.final_at.values()))

    def figures(self) -> dict[str, Any]:
        lat = self.latencies
        return {
            "uploads": self.uploads, "usersStarted": len(self.runs), "enrolledUsers": self.enrolled,
            "uploadPhaseS": round(self.upload_s, 2), "wallS": round(self.wall_s, 2),
            "latencyP50S": round(statistics.median(lat), 2) if lat else None,
            "latencyP95S": round(pct(lat, 0.95), 2) if lat else None,
            "latencyMaxS": round(max(lat), 2) if lat else None,
            "outcomes": dict(self.outcomes), "lost": self.lost,
            "failedSteps": Counter(r.failed_step for r in self.runs if r.failed_step),
        }


def burst(client: Client, users: list[str], count: int, photos: list[bytes], *, clients: int, poll_s: float,
          deadline_s: float, store: Callable[[int], bool] = lambda i: i % 2 == 0,
          employee: Callable[[int], str | None] = lambda i: None) -> Burst:
    """Every user consents and opens one session of ``count`` slots and PUTs them all at once (bounded
    by ``clients`` threads), then each user's status is polled until every photo is final or the deadline."""
    started = time.monotonic()
    deadline = started + deadline_s
    with ThreadPoolExecutor(clients) as pool:
        runs = list(pool.map(lambda iu: start_user(client, iu[1], count, photos, index=iu[0], store_photos=store(iu[0]),
                                                   employee_id=employee(iu[0])), enumerate(users)))
        upload_s = time.monotonic() - started
        list(pool.map(lambda r: poll_user(client, r, deadline, poll_s), runs))
    return Burst(runs, upload_s, time.monotonic() - started)


# --- the Face emulator -----------------------------------------------------------------------------
def face_stats(endpoint: str) -> dict[str, Any]:
    stats: dict[str, Any] = requests.get(f"{endpoint}/_emulator/stats", timeout=30).json()
    stats.pop("personIds", None)
    return stats


def face_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    ops = {k: v - before.get("byOperation", {}).get(k, 0) for k, v in after.get("byOperation", {}).items()}
    status = {k: v - before.get("byStatus", {}).get(k, 0) for k, v in after.get("byStatus", {}).items()}
    return {"calls": after["calls"] - before["calls"], "throttled": after["throttled"] - before["throttled"],
            "faults": after["faults"] - before["faults"],
            "trainRequests": after.get("trainRequests", 0) - before.get("trainRequests", 0),
            "trainings": after.get("trainings", 0) - before.get("trainings", 0),
            "byOperation": {k: v for k, v in sorted(ops.items()) if v},
            "byStatus": {k: v for k, v in sorted(status.items()) if v}}


def configure_face(endpoint: str, **cfg: Any) -> dict[str, Any]:
    r = requests.post(f"{endpoint}/_emulator/config", json=cfg, timeout=30)
    r.raise_for_status()
    result: dict[str, Any] = r.json()
    return result


class DemandMeter(threading.Thread):
    """Face calls per second over 5-second windows while a burst runs (the emulator's counter): the
    demand the chaos run's rate limit must be below."""

    def __init__(self, endpoint: str, every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.every = endpoint, every
        self.rates: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        last, at = face_stats(self.endpoint)["calls"], time.monotonic()
        while not self.stop.wait(self.every) and not STOP.is_set():
            try:
                calls, now = face_stats(self.endpoint)["calls"], time.monotonic()
            except requests.RequestException:
                return
            self.rates.append((calls - last) / (now - at))
            last, at = calls, now

    def peak(self) -> float:
        return max(self.rates, default=0.0)


CALM: dict[str, Any] = {"faultRate": 0.0, "latencyMs": 0, "rateLimitPerSecond": None, "slowRate": 0.0}


# --- invariants ------------------------------------------------------------------------------------
def check_invariants(env: dict[str, str], *, consenting: set[str], revoked: set[str]) -> dict[str, Any]:
    """What must hold once everything settled, read from storage and the Face emulator (call with the
    emulator calm: its faults are for the app, not for the check).

    - no duplicate faces: within a person, each upload id (the face's userData) at most once; and no
      upload id under two persons;
    - no orphan persons: every person in every group is named by a user record of a consenting user
      (a person of a revoked user, or named by no record, is an orphan);
    - no kept photo without consent: every kept blob belongs to a user whose consent is in force with
      storePhotos, and to no revoked user.
    """
    from shared.bootstrap import build
    from shared.settings import Settings

    s = build(Settings.from_env(env))
    users = {u.user_key: u for u in s.repos.users.range()}
    named: dict[tuple[str, str], str] = {}
    for u in users.values():
        for pair in u.persons():
            named[pair] = u.user_key
    duplicates = cross = persons = faces = 0
    orphans: list[str] = []
    upload_owner: dict[str, tuple[str, str]] = {}
    for g in s.face.list_groups():
        gid = str(g["largePersonGroupId"])
        for person in s.face.iter_persons(gid):
            persons += 1
            owner = named.get((gid, person.person_id))
            if owner is None or owner not in consenting or owner in revoked:
                orphans.append("unnamed" if owner is None else ("revoked" if owner in revoked else "no consent"))
            seen: Counter[str] = Counter()
            for fid in person.persisted_face_ids:
                faces += 1
                tag = str(s.face.get_face(gid, person.person_id, fid).get("userData"))
                seen[tag] += 1
                other = upload_owner.setdefault(tag, (gid, person.person_id))
                if other[0] == gid and other[1] != person.person_id:
                    cross += 1
            duplicates += sum(n - 1 for n in seen.values() if n > 1)
    by_token = {u.kept_token: u for u in users.values() if u.kept_token}
    kept = s.photos.list_kept()
    kept_bad = 0
    for name in kept:
        holder = by_token.get(name.split("/", 1)[0])
        if holder is None or holder.user_key in revoked or not holder.store_photos \
                or s.consent.current(holder.user_key) is None:
            kept_bad += 1
    revoked_left = sum(1 for k in revoked if k in users)
    pending = sum(1 for _ in s.repos.pending_erasures.range())
    return {"persons": persons, "faces": faces, "duplicateFaces": duplicates, "uploadUnderTwoPersons": cross,
            "orphanPersons": len(orphans), "orphanKinds": dict(Counter(orphans)), "keptPhotos": len(kept),
            "keptWithoutConsent": kept_bad, "revokedUsersStillRecorded": revoked_left, "pendingErasures": pending}


def invariants_ok(inv: dict[str, Any]) -> bool:
    return not (inv["duplicateFaces"] or inv["uploadUnderTwoPersons"] or inv["orphanPersons"]
                or inv["keptWithoutConsent"] or inv["revokedUsersStillRecorded"] or inv["pendingErasures"])


# --- memory ----------------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            out += [int(c) for c in text]
    except OSError:
        pass
    return out


def rss_kib(pid: int, *, with_children: bool = True) -> int:
    """Resident set size of a process (and, recursively, its children), from /proc (psutil is not a dependency)."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
        if with_children:
            todo += _children(p)
    return total


# --- recording -------------------------------------------------------------------------------------
def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}"


class Tee(io.TextIOBase):
    """stdout that is also kept: a run's raw output goes into its record."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.buffer_text = io.StringIO()

    def write(self, s: str) -> int:
        self.stream.write(s)
        self.stream.flush()
        return self.buffer_text.write(s)

    def flush(self) -> None:
        self.stream.flush()


def commit() -> str:
    """The commit measured, recorded as bench/run_all.py records it (imported late: run_all imports this module)."""
    from run_all import code

    return code()


@contextlib.contextmanager
def recorded(bench: str, json_path: Path | None, *, publish: bool = True) -> Iterator[dict[str, Any]]:
    """Runs the body with its stdout kept; the body fills the yielded dict with figures (``ok`` too).
    Afterwards the run is written to ``json_path`` (if given), to ``.local/bench/<bench>-<time>.json``
    and, if ``publish`` (a run at the documented size), appended to ``benches.<bench>.runs`` in
    results.json (the last KEEP_RUNS kept)."""
    tee = Tee(sys.stdout)
    record: dict[str, Any] = {}
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load_before = uptime()
    print(f"{bench}: started {started}; {load_before}")
    old, sys.stdout = sys.stdout, tee
    try:
        yield record
    finally:
        sys.stdout = old
        record.update({"output": tee.buffer_text.getvalue(), "exitCode": 0 if record.get("ok") else 1,
                       "startedAt": started, "loadBefore": load_before, "loadAfter": uptime(), "code": commit()})
        print(f"{bench}: {record['loadAfter']}")
        write_record(bench, record, json_path, publish=publish)


def write_record(bench: str, record: dict[str, Any], json_path: Path | None, *, publish: bool = True) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=2, ensure_ascii=False, default=str)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(text)
    stamp = record["startedAt"].replace(":", "").replace("+0000", "Z")
    (OUT / f"{bench}-{stamp}{'' if publish else '-small'}.json").write_text(text)
    if not publish:
        return
    # Another session's `make bench` may write results.json too: read it as late as possible.
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    runs = results.setdefault("benches", {}).setdefault(bench, {}).setdefault("runs", [])
    runs.append(json.loads(text))
    del runs[:-KEEP_RUNS]
    rows = [r for r in results.get("table", []) if r.get("bench") != bench]
    results["table"] = rows + table_rows(bench, results["benches"][bench])
    results["writtenAt"] = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
    print(f"results: {RESULTS}")


def _span(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return max(values) if values else None


# (bench, label, value over the bench's results, unit, goal, check): the fields of bench/run_all.py's
# Figure on the perf branch, so its FIGURES can take these as they are.
FIGURES: list[tuple[str, str, Callable[[dict[str, Any]], float | None], str, str,
                    Callable[[float], bool] | None]] = []
for _b, _what in (("load", "Load 200 users × 3 photos"), ("chaos", "Chaos (10% 503s, 200 ms, rate limit) 200 × 3")):
    FIGURES += [
        (_b, f"{_what}: upload-to-final p50, worst run", lambda r: _span(r["runs"], "latencyP50S"), "s", "—", None),
        (_b, f"{_what}: upload-to-final p95, worst run", lambda r: _span(r["runs"], "latencyP95S"), "s", "—", None),
        (_b, f"{_what}: HTTP 5xx, all runs", lambda r: sum(x.get("http5xx", 0) for x in r["runs"]), "", "0",
         lambda v: v == 0),
        (_b, f"{_what}: photos lost, all runs", lambda r: sum(x.get("lost", 0) for x in r["runs"]), "", "0",
         lambda v: v == 0),
        (_b, f"{_what}: Face calls per enrolled user, worst run",
         lambda r: _span(r["runs"], "faceCallsPerEnrolledUser"), "", "—", None),
        (_b, f"{_what}: trainings per burst, most in a run", lambda r: _span(r["runs"], "trainings"), "", "—", None),
    ]
FIGURES += [
    ("chaos", "Chaos: duplicate faces + orphan persons + kept photos without consent, all runs",
     lambda r: sum(x.get("invariantViolations", 0) for x in r["runs"]), "", "0", lambda v: v == 0),
    ("soak", "Soak: host RSS growth after warm-up, latest run", lambda r: r["runs"][-1]["hostGrowthPct"], "%", "≤ 10",
     lambda v: v <= 10),
    ("soak", "Soak: Face emulator RSS growth after warm-up, latest run", lambda r: r["runs"][-1]["faceGrowthPct"], "%",
     "≤ 10", lambda v: v <= 10),
]


def table_rows(bench: str, results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for b, label, value_of, unit, goal, check in FIGURES:
        if b != bench:
            continue
        try:
            value = value_of(results)
        except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
            value = None
        verdict = "n/a" if value is None else ("info" if check is None else ("PASS" if check(value) else "FAIL"))
        rows.append({"bench": b, "figure": label, "value": value, "unit": unit, "goal": goal, "verdict": verdict})
    return rows
