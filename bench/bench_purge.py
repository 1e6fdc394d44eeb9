"""purge_timer in what Azure bills and what a person waits for: storage requests and wall time.

On a fresh Azurite, N users (10,000 by default; ``--users 100000``), each with a user row, a ledger
grant and its ``consentbyday`` index row, and an upload slot with its ``uploadsbyminute`` row. Grant
and upload times are set so that, at three purge clocks, 0.1%, 1% and 10% of the consents are past the
retention and as many uploads are stale. At each point a real PurgeService dry run (a Face stand-in
with an empty group) is measured step by step, against one full scan of the users table:

- requests: every HTTP request the process sends to storage (counted at the transport), per step;
- wall time per step, and of the full scan (``list_entities`` with two columns, 1,000 rows a page);
- and of the scan a purge without the indexes would need: the ledger and the uploads tables (the users
  table does not say whose consent expired; the issue's comparator is the users scan, shown first).

The sweep is steps 1 and 2 (expired consents, stale uploads); the whole purge adds the orphan scan
(a scan of users, kept photos and the group by nature) and the superseded groups. Goals, per point:
the sweep uses fewer requests and less time than the full scan; at 1% due, so does the whole purge.
A first, unmeasured dry run records the table sizes the purge uses to pick its read plan.

    python bench/bench_purge.py [--users 10000] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.bootstrap import build  # noqa: E402
from shared.commands import RunPurge  # noqa: E402
from shared.domain.enrollment import iso, ledger_entry_id  # noqa: E402
from shared.domain.erasure import day_key, minute_key  # noqa: E402
from shared.settings import Settings  # noqa: E402
from tests.fixtures.azurite import AZURITE, Azurite, free_port, wait_for_port  # noqa: E402

FRACTIONS = (0.001, 0.01, 0.1)
RETENTION_DAYS, MAX_AGE_MINUTES = 365, 60
THREADS = 8
STEPS = ("expiredConsents", "staleUploads", "orphans", "supersededGroups", "ledgerAnchor", "revokedNotErased")
GROUP_ID = "faceenroll-bench"
#: The chains written on the day before each measured purge (consents renewed or given): 1% of the users.
CHANGED_PER_DAY = 0.01


class ListedFace:
    """The Face port for a dry run: the active group holds the persons the records name (listed in pages of
    1,000 by personId, as Face lists them; Face calls are counted apart, they are not storage requests)."""

    def __init__(self, person_ids: list[str]) -> None:
        self.person_ids = sorted(person_ids)
        self.calls = 0

    def list_persons(self, group_id: str, *, start: str | None = None, top: int = 1000) -> list[Any]:
        import bisect

        from shared.ports import PersonRecord

        self.calls += 1
        i = bisect.bisect_right(self.person_ids, start) if start else 0
        return [PersonRecord(p, "p", None, ()) for p in self.person_ids[i:i + top]]

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"Face.{name} is not expected in a dry run")


class RequestCounter:
    """Counts every HTTP request the process sends (the storage SDKs all go through requests' adapter)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def install(self) -> None:
        from requests.adapters import HTTPAdapter

        original = HTTPAdapter.send
        counter = self

        def send(adapter: HTTPAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
            with counter._lock:
                counter.count += 1
            return original(adapter, request, *args, **kwargs)

        HTTPAdapter.send = send  # type: ignore[method-assign]


def by_partition(items: list[dict[str, Any]], size: int = 100) -> Iterator[list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        groups[item["PartitionKey"]].append(item)
    for rows in groups.values():
        for i in range(0, len(rows), size):
            yield rows[i:i + size]


_local = threading.local()


def _client(conn: str, table: str) -> Any:
    """One client per thread and table (Azurite resets connections shared by many threads)."""
    from azure.data.tables import TableClient

    clients = _local.__dict__.setdefault("clients", {})
    if table not in clients:
        clients[table] = TableClient.from_connection_string(conn, table)
    return clients[table]


def _retry(fn: Callable[..., Any], *args: Any) -> Any:
    from azure.core.exceptions import ResourceExistsError, ServiceRequestError, ServiceResponseError

    for attempt in range(5):
        try:
            return fn(*args)
        except ResourceExistsError:
            return None  # a retried write that had landed
        except (ServiceRequestError, ServiceResponseError):
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    return None


def batch_insert(conn: str, table: str, rows: list[dict[str, Any]]) -> None:
    def write(chunk: list[dict[str, Any]]) -> None:
        _retry(_client(conn, table).submit_transaction, [("upsert", r) for r in chunk])

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(write, by_partition(rows)))


def single_insert(conn: str, table: str, rows: Iterable[dict[str, Any]]) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda r: _retry(_client(conn, table).create_entity, r), rows))


def group_of(i: int) -> int | None:
    """Nested due groups: 0 (0.1% of users), 1 (the next 0.9%), 2 (the next 9%), None (never due)."""
    slot = i % 1000
    return 0 if slot == 0 else 1 if slot < 10 else 2 if slot < 100 else None


def setup(conn: str, prefix: str, users: int, clocks: list[datetime]) -> tuple[dict[str, str], list[str], list[str]]:
    from azure.data.tables import TableServiceClient

    service = TableServiceClient.from_connection_string(conn)
    tables = {name: service.create_table_if_not_exists(f"{prefix}{name}").table_name
              for name in ("users", "consent", "consentbyday", "uploads", "uploadsbyminute", "state", "personattempts")}
    retention = timedelta(days=RETENTION_DAYS)
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    keys, persons = [], []
    for i in range(users):
        # As in production: user keys are the identity provider's object ids, personIds Face's GUIDs.
        key, person_id, attempt_id = str(uuid.uuid4()), str(uuid.uuid4()), uuid.uuid4().hex
        keys.append(key)
        persons.append(person_id)
        group = group_of(i)
        # Due at clock g and later: granted a day before the retention ends at clock g.
        granted = (clocks[group] - retention - timedelta(hours=12)) if group is not None else \
            clocks[0] - timedelta(days=1 + i % (RETENTION_DAYS - 30))
        created = (clocks[group] - timedelta(minutes=MAX_AGE_MINUTES + 10)) if group is not None else \
            clocks[-1] - timedelta(minutes=i % (MAX_AGE_MINUTES - 5))
        upload_id = uuid.uuid4().hex
        rows["users"].append({"PartitionKey": key, "RowKey": "user", "storePhotos": False,
                              "keptToken": uuid.uuid4().hex, "createdAt": iso(granted), "personId": person_id,
                              "groupId": GROUP_ID})
        # The person factory's attempt row, kept while the person exists.
        rows["personattempts"].append({"PartitionKey": key, "RowKey": attempt_id, "groupId": GROUP_ID,
                                       "personId": person_id, "slot": "primary", "createdAt": iso(granted)})
        entry = ledger_entry_id(granted, uuid.uuid4().hex)
        rows["consent"].append({"PartitionKey": key, "RowKey": entry, "kind": "consent", "accepted": True,
                                "termsVersion": "t", "storePhotos": False, "at": iso(granted)})
        # Index rows as the app writes them now: settled (no crash left them half-written).
        session_id = uuid.uuid4().hex
        rows["consentbyday"].append({"PartitionKey": day_key(granted), "RowKey": key, "grantRowKey": entry,
                                     "at": iso(granted), "settled": True})
        rows["uploadsbyminute"].append({"PartitionKey": minute_key(created), "RowKey": upload_id, "userKey": key,
                                        "createdAt": iso(created), "sessionId": session_id, "settled": True})
        rows["uploads"].append({"PartitionKey": key, "RowKey": upload_id, "sessionId": session_id,
                                "status": "awaitingUpload" if group is not None else "accepted",
                                "blobName": f"s/{upload_id}", "createdAt": iso(created)})
    t = time.perf_counter()
    batch_insert(conn, tables["consentbyday"], rows["consentbyday"])
    batch_insert(conn, tables["uploadsbyminute"], rows["uploadsbyminute"])
    for name in ("users", "consent", "uploads", "personattempts"):
        single_insert(conn, tables[name], rows[name])
    single_insert(conn, tables["state"], [{"PartitionKey": "group", "RowKey": "active", "groupId": GROUP_ID,
                                           "recognitionModel": "recognition_04", "created": True}])
    print(f"set-up: {users:,} users (user row, person, attempt row, ledger grant, upload, two index rows each) in "
          f"{time.perf_counter() - t:.0f} s", flush=True)
    return tables, keys, persons


def steady_state(conn: str, tables: dict[str, str], settings: Settings, clock: datetime, keys: list[str]) -> None:
    """As on any later night: the first anchor (every chain) was written the night before, and since then 1%
    of the users' chains changed (a consent given or renewed). A purge's anchor reads those, not the ledger."""
    from shared.adapters.table_records import CHANGE_OVERLAP

    # The first anchor as the night after the set-up: its read must not reach back (by the overlap the next
    # read allows for clocks) into the set-up's writes, as a day-old anchor does not reach into the day before.
    time.sleep(CHANGE_OVERLAP.total_seconds() + 1)
    services = build(settings, clock=lambda: clock - timedelta(days=5))
    first = services.ledger.anchor(dry_run=False)
    stats = services.repos.purge_stats.get()
    from shared.domain.records import PurgeStats

    stats = stats or PurgeStats()
    stats.anchored_through = str(first["watermark"])
    services.repos.purge_stats.upsert(stats)
    changed = keys[:: int(1 / CHANGED_PER_DAY)]
    rows = [{"PartitionKey": key, "RowKey": ledger_entry_id(clock - timedelta(days=5), uuid.uuid4().hex),
             "kind": "consent", "accepted": True, "termsVersion": "t", "storePhotos": False,
             "at": iso(clock - timedelta(days=5))} for key in changed]
    single_insert(conn, tables["consent"], rows)
    print(f"steady state: first anchor written ({first['chains']:,} chains), then {len(rows):,} chains changed",
          flush=True)


def start_azurite(workdir: Path) -> Azurite:
    """As the test fixture does, with a longer wait: on a loaded machine Azurite takes a while to listen."""
    import subprocess

    blob, queue, table = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [str(AZURITE), "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry", "--silent",
         "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1",
         "--blobPort", str(blob), "--queuePort", str(queue), "--tablePort", str(table)],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for port in (blob, queue, table):
            wait_for_port(port, timeout=120)
    except TimeoutError:
        proc.kill()
        raise
    return Azurite(blob, queue, table, proc)


def measure(users: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-purge-"))
    azurite = start_azurite(workdir)
    counter = RequestCounter()
    counter.install()
    try:
        prefix = "b" + uuid.uuid4().hex[:8]
        conn = azurite.connection_string
        now = datetime.now(timezone.utc).replace(microsecond=0)
        clocks = [now - timedelta(days=4), now - timedelta(days=2), now]
        tables, keys, persons = setup(conn, prefix, users, clocks)
        env = {"PhotoStorage": conn, "MESSAGING_TRANSPORT": "storage-queues", "TABLE_PREFIX": prefix,
               "CONSENT_RETENTION_DAYS": str(RETENTION_DAYS), "UPLOAD_MAX_AGE_MINUTES": str(MAX_AGE_MINUTES),
               "LEDGER_ANCHORS_CONTAINER": "anchors" + prefix}
        settings = Settings.from_env(env)
        steady_state(conn, tables, settings, clocks[0], keys)
        face = ListedFace(persons)
        from azure.data.tables import TableServiceClient

        scan_client = TableServiceClient.from_connection_string(conn).get_table_client(tables["users"])
        points = []
        build(settings, clock=lambda: clocks[-1], face=face).purge.run(RunPurge(dry_run=True, trigger="warm-up"))
        for fraction, clock in zip(FRACTIONS, clocks, strict=True):
            services = build(settings, clock=lambda c=clock: c, face=face)  # type: ignore[misc]
            purge = services.purge
            per_step: dict[str, int] = {}
            for step in STEPS:
                method = getattr(purge, f"_{_snake(step)}")

                def wrapped(report: Any, dry: bool, at: datetime, method: Any = method, step: str = step,
                            per_step: dict[str, int] = per_step) -> None:
                    before = counter.count
                    try:
                        method(report, dry, at)
                    finally:
                        per_step[step] = counter.count - before

                setattr(purge, f"_{_snake(step)}", wrapped)
            face_calls = face.calls
            before = counter.count
            t = time.perf_counter()
            report = purge.run(RunPurge(dry_run=True, trigger="bench")).as_json()
            total_s = time.perf_counter() - t
            total_requests = counter.count - before
            face_calls = face.calls - face_calls
            due = round(users * fraction)
            assert report["expiredConsents"] == due and report["staleUploads"] == due, (fraction, report)
            before = counter.count
            t = time.perf_counter()
            scanned = sum(1 for _ in scan_client.list_entities(select=["PartitionKey", "RowKey"]))
            scan_s = time.perf_counter() - t
            scan_requests = counter.count - before
            assert scanned == users
            # What a purge without the indexes must read to find what is due: the ledger and the uploads.
            before = counter.count
            t = time.perf_counter()
            for name in ("consent", "uploads"):
                client = TableServiceClient.from_connection_string(conn).get_table_client(tables[name])
                sum(1 for _ in client.list_entities(select=["PartitionKey", "RowKey", "at", "createdAt", "status"]))
            answer_s = time.perf_counter() - t
            answer_requests = counter.count - before
            ms = report["stepMs"]
            sweep_requests = per_step["expiredConsents"] + per_step["staleUploads"]
            sweep_s = (ms["expiredConsents"] + ms["staleUploads"]) / 1000
            points.append({
                "users": users, "dueFraction": fraction, "dueConsents": due, "dueUploads": due,
                "readPlans": report["readPlans"],
                "sweep": {"requests": sweep_requests, "seconds": round(sweep_s, 3)},
                "orphans": {"requests": per_step["orphans"], "seconds": round(ms["orphans"] / 1000, 3),
                            "faceCalls": face_calls, "range": report["orphanScanRange"],
                            "userRowsRead": report["orphanScan"]["userRowsRead"],
                            "attemptRowsRead": report["orphanScan"]["attemptRowsRead"]},
                "anchor": {"requests": per_step["ledgerAnchor"], "seconds": round(ms["ledgerAnchor"] / 1000, 3),
                           "chains": report["ledgerAnchor"].get("chains"), "scope": report["ledgerAnchor"].get("scope")},
                "wholePurge": {"requests": total_requests, "seconds": round(total_s, 3)},
                "fullScan": {"requests": scan_requests, "seconds": round(scan_s, 3), "rows": scanned},
                "answerScan": {"requests": answer_requests, "seconds": round(answer_s, 3)},
                "requestsPerStep": per_step,
            })
        return {"users": users, "points": points}
    finally:
        azurite.process.terminate()
        azurite.process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _snake(step: str) -> str:
    return {"expiredConsents": "expired_consents", "staleUploads": "stale_uploads", "orphans": "orphans",
            "supersededGroups": "superseded_groups", "ledgerAnchor": "ledger_anchor",
            "revokedNotErased": "revoked_not_erased"}[step]


def verdicts(point: dict[str, Any]) -> dict[str, bool]:
    scan = point["fullScan"]
    answer = point["answerScan"]
    out = {"sweep cheaper than the users scan (requests)": point["sweep"]["requests"] < scan["requests"],
           "sweep faster than the users scan": point["sweep"]["seconds"] < scan["seconds"],
           "sweep cheaper than scanning ledger + uploads (requests)": point["sweep"]["requests"] < answer["requests"],
           "sweep faster than scanning ledger + uploads": point["sweep"]["seconds"] < answer["seconds"]}
    if point["dueFraction"] == 0.01:
        out["whole purge cheaper than the scan (requests)"] = point["wholePurge"]["requests"] < scan["requests"]
        out["whole purge faster than the scan"] = point["wholePurge"]["seconds"] < scan["seconds"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = measure(args.users)
    ok = True
    print(f"{'users':>8} {'due':>6} {'plans':>18} {'sweep req':>9} {'sweep s':>8} {'orphan req':>10} {'anchor req':>10} "
          f"{'purge req':>9} {'purge s':>8} {'scan req':>8} {'scan s':>7} {'l+u req':>7} {'l+u s':>6}  orphan range")
    for p in result["points"]:
        plans = "/".join(p["readPlans"].get(s, "-") for s in ("expiredConsents", "staleUploads"))
        print(f"{p['users']:>8,} {p['dueFraction']:>6.1%} {plans:>18} {p['sweep']['requests']:>9} "
              f"{p['sweep']['seconds']:>8.2f} {p['orphans']['requests']:>10} {p['anchor']['requests']:>10} "
              f"{p['wholePurge']['requests']:>9} "
              f"{p['wholePurge']['seconds']:>8.2f} {p['fullScan']['requests']:>8} {p['fullScan']['seconds']:>7.2f} "
              f"{p['answerScan']['requests']:>7} {p['answerScan']['seconds']:>6.2f}  "
              f"[{p['orphans']['range'].get('from') or '-'}, {p['orphans']['range'].get('to') or '-'}) "
              f"{p['orphans']['userRowsRead']:,} user + {p['orphans']['attemptRowsRead']:,} attempt rows, "
              f"{p['orphans']['faceCalls']} Face calls")
        for goal, met in verdicts(p).items():
            ok = ok and met
            print(f"      {goal}: {'PASS' if met else 'FAIL'}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print("all goals met" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
