"""The app's services in-process (shared.bootstrap.build) against the real Azurite and Face emulator,
with a controllable clock and a publisher that keeps what it is given: the erasure tests drive the
services directly, in the order they choose, and inspect every store afterwards."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import requests
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from shared.bootstrap import Services, build
from shared.commands import CreateUploads, GrantConsent, ProcessUpload
from shared.domain.principal import Principal
from shared.ports import OutgoingMessage
from shared.settings import Settings
from tests.fixtures.app_stack import app_env
from tests.fixtures.azurite import Azurite


class Clock:
    """The real time plus an offset that only grows: it keeps moving (ledger keys stay ordered) and
    is never behind the real time (SAS expiry is checked by Azurite against the real time)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset

    @property
    def now(self) -> datetime:
        return self()

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@dataclass
class KeepingPublisher:
    sent: list[tuple[str, OutgoingMessage]] = field(default_factory=list)

    def send(self, destination: str, messages: Sequence[OutgoingMessage]) -> None:
        self.sent.extend((destination, m) for m in messages)

    def schedule(self, destination: str, message: OutgoingMessage) -> str:
        self.sent.append((destination, message))
        return str(len(self.sent) - 1)

    def cancel(self, destination: str, token: str) -> bool:
        return False


def principal(user_key: str, hr_key: str | None = None, *, admin: bool = False) -> Principal:
    return Principal(user_key=user_key, hr_key=hr_key, is_admin=admin, mfa=True,
                     roles=frozenset({"FaceEnrollment.Admin"}) if admin else frozenset())


@dataclass
class Slot:
    user_key: str
    upload_id: str
    url: str
    blob_name: str


@dataclass
class InProcess:
    services: Services
    env: dict[str, str]
    azurite: Azurite
    clock: Clock
    publisher: KeepingPublisher

    @property
    def prefix(self) -> str:
        return self.env["TABLE_PREFIX"]

    # One client each, kept: a new SDK client builds a new pipeline (tens of ms), and the fault matrix
    # inspects a dozen tables after each of its 120 cases.
    @functools.cached_property
    def _tables(self) -> TableServiceClient:
        return TableServiceClient.from_connection_string(self.azurite.connection_string)

    @functools.cached_property
    def _blobs(self) -> BlobServiceClient:
        return BlobServiceClient.from_connection_string(self.azurite.connection_string)

    # --- driving the services ------------------------------------------------------------------
    def consent(self, user_key: str, *, store_photos: bool, hr_key: str | None = None) -> None:
        terms = self.services.consent.terms()
        self.services.consent.grant(GrantConsent(principal(user_key, hr_key), terms.version, store_photos, "test"))

    def slots(self, user_key: str, count: int = 1, hr_key: str | None = None) -> list[Slot]:
        out = self.services.enrollment.create_uploads(CreateUploads(principal(user_key, hr_key), count)).as_json()
        container = self.env["UPLOADS_CONTAINER"]
        return [Slot(user_key, u["uploadId"], u["url"], u["url"].split("?")[0].split(f"/{container}/", 1)[1])
                for u in out["uploads"]]

    def deliver(self, slot: Slot, data: bytes) -> str:
        """The front end's PUT, then the BlobCreated event (processed in-process)."""
        put = requests.put(slot.url, data=data, headers={"x-ms-blob-type": "BlockBlob"}, timeout=30)
        assert put.status_code == 201, put.text
        return str(self.services.enrollment.process_upload(ProcessUpload(slot.blob_name, data)))

    def wait_status(self, user_key: str, wanted: str, *, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.services.enrollment.status(user_key).as_json()
            if status["status"] == wanted:
                return status
            time.sleep(0.05)
        raise AssertionError(f"status {wanted} not reached: {status}")

    # --- inspecting the stores -----------------------------------------------------------------
    def table_rows(self, table: str, *, pk: str | None = None, where: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        client = self._tables.get_table_client(f"{self.prefix}{table}")
        field, value = where or ("PartitionKey", pk)
        try:
            if value is None:
                return [dict(r) for r in client.list_entities()]
            return [dict(r) for r in client.query_entities(f"{field} eq @v", parameters={"v": value})]
        except Exception:  # the table does not exist yet
            return []

    def blobs(self, container_setting: str) -> list[str]:
        c = self._blobs.get_container_client(self.env[container_setting])
        return [b.name for b in c.list_blobs()] if c.exists() else []

    def persons(self) -> dict[str, str | None]:
        found = self.services.records.get("state", "group", "active")
        if found is None:
            return {}
        return {p.person_id: p.user_data for p in self.services.face.iter_persons(str(found[0]["groupId"]))}


def in_process(azurite: Azurite, face_endpoint: str, *, clock: Clock | None = None, wrap: Any = None,
               **overrides: str) -> InProcess:
    env = app_env(azurite, face_endpoint)
    env.update(overrides)
    settings = Settings.from_env(env)
    clock = clock or Clock()
    publisher = KeepingPublisher()
    base = build(settings, clock=clock, publisher=publisher)
    if wrap is not None:
        base = build(settings, clock=clock, publisher=publisher, records=wrap(base.records), photos=wrap(base.photos),
                     face=wrap(base.face))
    return InProcess(base, env, azurite, clock, publisher)


def new_user() -> str:
    return f"u-{uuid.uuid4().hex[:10]}"
