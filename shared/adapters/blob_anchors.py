"""The consent ledger's anchors in Blob storage: create-only writes to the WORM container.

In Azure the container has a locked time-based retention policy (infra/app/storage.bicep), so the
service itself refuses to overwrite or delete an anchor during the retention; this adapter never
tries (``overwrite=False``), which also makes a repeated daily write a no-op.
"""

from __future__ import annotations

from shared.adapters.azure_storage import StorageClients


class BlobAnchorStore:
    def __init__(self, clients: StorageClients, *, container: str) -> None:
        self._clients = clients
        self._container = container

    def write_anchor(self, name: str, data: bytes) -> bool:
        from azure.core.exceptions import ResourceExistsError

        try:
            self._clients.container(self._container).upload_blob(name, data, overwrite=False)
        except ResourceExistsError:
            return False
        return True

    def list_anchors(self) -> list[str]:
        return sorted(b.name for b in self._clients.container(self._container).list_blobs())

    def read_anchor(self, name: str) -> bytes:
        return bytes(self._clients.container(self._container).download_blob(name).readall())
