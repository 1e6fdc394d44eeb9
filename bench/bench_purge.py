"""purge_timer's cost follows what is due, not how many users there are.

On a fresh Azurite: 100,000 users, 1% of whose consents are past the retention, and as many upload
slots, 1% of them stale. The index rows (``consentbyday``, ``uploadsbyminute``) are written in batch
transactions (100 per partition); the user rows, the ledger entries of the due users and their upload
records with single inserts on a few threads. Then:

- the due-driven steps of a real PurgeService dry run (expired consents, stale uploads) against a
  Face stand-in with an empty group: rows read, rows due, their ratio and the time;
- the naive alternative: read every user row (a full scan of 100,000), the least any sweep without
  the index would read.

Goal: the due-driven steps read at most 3 rows per due item (the index row, the ledger or upload
record), and fewer than a tenth of the naive scan.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.bootstrap import build  # noqa: E402
from shared.commands import RunPurge  # noqa: E402
from shared.domain.enrollment import iso, ledger_row_key  # noqa: E402
from shared.domain.erasure import day_key, minute_key  # noqa: E402
from shared.settings import Settings  # noqa: E402
from tests.fixtures.azurite import start_azurite  # noqa: E402

USERS = 100_000
DUE_FRACTION = 0.01
RETENTION_DAYS, MAX_AGE_MINUTES = 365, 60
THREADS = 8


class EmptyFace:
    """The Face port with an empty active group (the orphan scan is not what is measured here)."""

    def list_persons(self, group_id: str, *, start: str | None = None, top: int = 1000) -> list[Any]:
        return []

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"Face.{name} is not expected in a dry run")


def chunks(items: list[dict[str, Any]], size: int = 100) -> Iterator[list[dict[str, Any]]]:
    by_pk: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        by_pk[item["PartitionKey"]].append(item)
    for rows in by_pk.values():
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


def _retry(fn: Any, *args: Any) -> Any:
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
        list(pool.map(write, chunks(rows)))


def single_insert(conn: str, table: str, rows: Iterable[dict[str, Any]]) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda r: _retry(_client(conn, table).create_entity, r), rows))


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-purge-"))
    azurite = start_azurite(workdir)
    try:
        return run(azurite)
    finally:
        azurite.process.terminate()
        azurite.process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def run(azurite: Any) -> int:
    from azure.data.tables import TableServiceClient

    prefix = "b" + uuid.uuid4().hex[:8]
    env = {"PhotoStorage": azurite.connection_string, "MESSAGING_TRANSPORT": "storage-queues", "TABLE_PREFIX": prefix,
           "CONSENT_RETENTION_DAYS": str(RETENTION_DAYS), "UPLOAD_MAX_AGE_MINUTES": str(MAX_AGE_MINUTES)}
    settings = Settings.from_env(env)
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    tables = {name: service.create_table_if_not_exists(f"{prefix}{name}").table_name
              for name in ("users", "consent", "consentbyday", "uploads", "uploadsbyminute", "state")}
    now = datetime.now(timezone.utc)
    due_every = round(1 / DUE_FRACTION)
    users, grants, by_day, uploads, by_minute = [], [], [], [], []
    for i in range(USERS):
        key = f"user-{i:06d}"
        due = i % due_every == 0
        # Consents spread over the past year; the due ones a little older than the retention.
        granted = now - timedelta(days=RETENTION_DAYS + 1 + i % 30) if due else now - timedelta(days=i % RETENTION_DAYS)
        users.append({"PartitionKey": key, "RowKey": "user", "state": "active", "generation": 1, "storePhotos": False,
                      "keptToken": uuid.uuid4().hex, "createdAt": iso(granted)})
        by_day.append({"PartitionKey": day_key(granted), "RowKey": key, "at": iso(granted)})
        created = now - timedelta(minutes=MAX_AGE_MINUTES + 5 + i % 600) if due else now - timedelta(minutes=i % MAX_AGE_MINUTES)
        upload_id = uuid.uuid4().hex
        by_minute.append({"PartitionKey": minute_key(created), "RowKey": upload_id, "userKey": key, "createdAt": iso(created)})
        if due:
            grants.append({"PartitionKey": key, "RowKey": ledger_row_key(granted, uuid.uuid4().hex), "kind": "consent",
                           "accepted": True, "termsVersion": "t", "storePhotos": False, "at": iso(granted)})
            uploads.append({"PartitionKey": key, "RowKey": upload_id, "sessionId": uuid.uuid4().hex, "status": "awaitingUpload",
                            "blobName": f"s/{upload_id}", "createdAt": iso(created)})
    t = time.perf_counter()
    conn = azurite.connection_string
    batch_insert(conn, tables["consentbyday"], by_day)
    batch_insert(conn, tables["uploadsbyminute"], by_minute)
    print(f"  index rows written in batch transactions: {time.perf_counter() - t:.1f} s", flush=True)
    single_insert(conn, tables["users"], users)
    single_insert(conn, tables["consent"], grants)
    single_insert(conn, tables["uploads"], uploads)
    print(f"setup: {USERS:,} users, {len(by_day):,} + {len(by_minute):,} index rows, "
          f"{len(grants):,} due consents, {len(uploads):,} stale uploads ({time.perf_counter() - t:.1f} s)")

    services = build(settings, clock=lambda: now, face=EmptyFace())
    t = time.perf_counter()
    report = services.purge.run(RunPurge(dry_run=True, trigger="bench")).as_json()
    took = time.perf_counter() - t
    swept = (report["stepMs"]["expiredConsents"] + report["stepMs"]["staleUploads"]) / 1000
    due = report["expiredConsents"] + report["staleUploads"]
    read = report["rowsRead"]["expiredConsents"] + report["rowsRead"]["staleUploads"]
    assert report["expiredConsents"] == len(grants) and report["staleUploads"] == len(uploads), report
    orphan_rows = report["orphanScan"]["userRowsRead"]

    t = time.perf_counter()
    naive = sum(1 for _ in service.get_table_client(tables["users"]).list_entities(select=["PartitionKey", "RowKey"]))
    naive_took = time.perf_counter() - t

    print(f"index sweep (purge dry run: expired consents + stale uploads): rows read {read:,}, rows due {due:,}, "
          f"read/due {read / due:.2f}, {swept:.2f} s ({took:.2f} s for the whole dry run)")
    print(f"  expired consents: read {report['rowsRead']['expiredConsents']:,} for {report['expiredConsents']:,} due; "
          f"stale uploads: read {report['rowsRead']['staleUploads']:,} for {report['staleUploads']:,} due")
    print(f"naive full scan of users: rows read {naive:,}, rows due {due:,}, read/due {naive / due:.1f}, {naive_took:.2f} s")
    print(f"index sweep reads {read / naive:.2%} of the naive scan's rows ({naive / read:.0f}x fewer)")
    print(f"(the orphan scan, reported apart in orphanScan, read {orphan_rows:,} user rows in "
          f"{report['stepMs']['orphans'] / 1000:.2f} s: a scan by nature)")
    ok = read <= 3 * due and read * 10 < naive
    print(f"goal: read <= 3 x due and < 1/10 of the naive scan  {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
