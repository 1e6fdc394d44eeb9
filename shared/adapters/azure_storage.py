"""Azure Storage (Tables and Blobs) for the app: connection string on Azurite, managed identity in Azure."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.adapters.http_env import sdk_client_options
from shared.settings import Settings


def _parse_connection_string(conn: str) -> dict[str, str]:
    parts = (p.split("=", 1) for p in conn.split(";") if "=" in p)
    return {k: v for k, v in parts}


class StorageClients:
    """Builds the SDK clients on first use (cold start) and caches them for the process."""

    def __init__(self, settings: Settings, *, credential: Any = None,
                 client_options: Mapping[str, Any] | None = None) -> None:
        """``client_options`` go to every SDK client (e.g. ``connection_timeout``, ``read_timeout``,
        ``retry_total``: readiness probes fail fast instead of retrying for half a minute)."""
        self._settings = settings
        self._credential = credential
        self._options = {**sdk_client_options(), **dict(client_options or {})}
        self._lock = threading.Lock()
        self._tables: Any = None
        self._blobs: Any = None
        self._created: set[str] = set()
        self._clients: dict[str, Any] = {}  # table and container clients, built once each
        self._delegation_key: Any = None
        self._delegation_expiry: datetime | None = None

    @property
    def uses_account_key(self) -> bool:
        conn = self._settings.photo_storage_connection
        return bool(conn and "AccountKey=" in conn)

    def credential(self) -> Any:
        if self._credential is None:
            from azure.identity import DefaultAzureCredential

            self._credential = DefaultAzureCredential(managed_identity_client_id=self._settings.managed_identity_client_id)
        return self._credential

    def table_service(self) -> Any:
        with self._lock:
            if self._tables is None:
                from azure.data.tables import TableServiceClient

                conn = self._settings.photo_storage_connection
                if conn:
                    self._tables = TableServiceClient.from_connection_string(conn, **self._options)
                else:
                    self._tables = TableServiceClient(endpoint=str(self._settings.table_service_uri),
                                                      credential=self.credential(), **self._options)
            return self._tables

    def blob_service(self) -> Any:
        with self._lock:
            if self._blobs is None:
                from azure.storage.blob import BlobServiceClient

                conn = self._settings.photo_storage_connection
                if conn:
                    self._blobs = BlobServiceClient.from_connection_string(conn, **self._options)
                else:
                    self._blobs = BlobServiceClient(account_url=str(self._settings.blob_service_uri),
                                                    credential=self.credential(), **self._options)
            return self._blobs

    def table(self, name: str) -> Any:
        # One client per table, kept: building one (a pipeline of policies) took as long as the request
        # it was built for. SDK clients are safe to share between threads (they share one transport).
        client = self._clients.get(name)
        if client is not None:
            return client
        if name not in self._created:
            self.table_service().create_table_if_not_exists(name)
            self._created.add(name)
        client = self.table_service().get_table_client(name)
        self._clients[name] = client
        return client

    def container(self, name: str) -> Any:
        key = f"container:{name}"
        client = self._clients.get(key)
        if client is not None:
            return client
        client = self.blob_service().get_container_client(name)
        if key not in self._created:
            from azure.core.exceptions import ResourceExistsError

            try:
                client.create_container()
            except ResourceExistsError:
                pass
            self._created.add(key)
        self._clients[key] = client
        return client

    def create_only_sas_url(self, container: str, blob_name: str, *, expires_on: datetime) -> str:
        """A SAS for one new blob: create only (no read, no overwrite, no delete), short-lived.

        In Azure shared keys are disabled on the account, so this is a user delegation SAS signed
        with a key obtained through the app's managed identity. On Azurite, the account key signs a
        service SAS with the same rights.
        """
        from azure.storage.blob import BlobSasPermissions

        return self._blob_sas_url(container, blob_name, BlobSasPermissions(create=True), expires_on=expires_on)

    def read_only_sas_url(self, container: str, blob_name: str, *, expires_on: datetime) -> str:
        """A SAS to read one existing blob (a user's own kept photo): read only, short-lived, signed as the
        create-only one is (a user delegation key in Azure, the account key on Azurite)."""
        from azure.storage.blob import BlobSasPermissions

        # rscc: the blob's reply says no-store, so a shared kiosk's browser keeps no copy of the photo.
        return self._blob_sas_url(container, blob_name, BlobSasPermissions(read=True), expires_on=expires_on,
                                  cache_control="no-store")

    def _blob_sas_url(self, container: str, blob_name: str, permission: Any, *, expires_on: datetime,
                      cache_control: str | None = None) -> str:
        from azure.storage.blob import generate_blob_sas

        service = self.blob_service()
        self.container(container)
        start = datetime.now(timezone.utc) - timedelta(minutes=1)  # clock skew between services
        if self.uses_account_key:
            fields = _parse_connection_string(str(self._settings.photo_storage_connection))
            token = generate_blob_sas(account_name=fields["AccountName"], container_name=container, blob_name=blob_name,
                                      account_key=fields["AccountKey"], permission=permission, expiry=expires_on, start=start,
                                      cache_control=cache_control)
        else:
            key = self._user_delegation_key(expires_on)
            token = generate_blob_sas(account_name=service.account_name, container_name=container, blob_name=blob_name,
                                      user_delegation_key=key, permission=permission, expiry=expires_on, start=start,
                                      cache_control=cache_control)
        return f"{service.get_blob_client(container, blob_name).url}?{token}"

    def _user_delegation_key(self, needed_until: datetime) -> Any:
        with self._lock:
            if self._delegation_key is None or self._delegation_expiry is None or self._delegation_expiry < needed_until:
                start = datetime.now(timezone.utc) - timedelta(minutes=1)
                expiry = datetime.now(timezone.utc) + timedelta(hours=1)
                self._delegation_key = self._blobs.get_user_delegation_key(start, expiry)
                self._delegation_expiry = expiry
            return self._delegation_key
