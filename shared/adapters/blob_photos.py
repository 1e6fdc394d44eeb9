"""Photos in Blob storage: the uploads container (SAS, create-only) and the kept-photos container."""

from __future__ import annotations

from datetime import datetime

from shared.adapters.azure_storage import StorageClients
from shared.errors import PhotoNotFound


class BlobPhotoStore:
    def __init__(self, clients: StorageClients, *, uploads_container: str, kept_container: str) -> None:
        self._clients = clients
        self._uploads = uploads_container
        self._kept = kept_container

    def upload_url(self, blob_name: str, *, expires_on: datetime) -> str:
        return self._clients.create_only_sas_url(self._uploads, blob_name, expires_on=expires_on)

    def kept_read_url(self, kept_name: str, *, expires_on: datetime) -> str:
        return self._clients.read_only_sas_url(self._kept, kept_name, expires_on=expires_on)

    def _delete(self, container: str, name: str) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            # Snapshots go with the blob; soft delete and versioning are off on this account
            # (infra/), so a deletion is an erasure.
            self._clients.container(container).delete_blob(name, delete_snapshots="include")
        except ResourceNotFoundError:
            return False
        return True

    def delete_upload(self, blob_name: str) -> bool:
        return self._delete(self._uploads, blob_name)

    def list_uploads(self, prefix: str = "") -> list[str]:
        return [b.name for b in self._clients.container(self._uploads).list_blobs(name_starts_with=prefix or None)]

    def keep(self, kept_name: str, data: bytes) -> None:
        self._clients.container(self._kept).upload_blob(kept_name, data, overwrite=True)

    def read_kept(self, kept_name: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return bytes(self._clients.container(self._kept).download_blob(kept_name).readall())
        except ResourceNotFoundError:
            pass
        # Raised outside the except block: no SDK internals (or blob URLs) are chained to it.
        raise PhotoNotFound("kept photo not found")

    def list_kept(self, prefix: str = "") -> list[str]:
        return [b.name for b in self._clients.container(self._kept).list_blobs(name_starts_with=prefix or None)]

    def delete_kept(self, kept_name: str) -> bool:
        return self._delete(self._kept, kept_name)
