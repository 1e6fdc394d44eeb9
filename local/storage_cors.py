"""CORS on the local photo account (Azurite), so the browser can PUT photos to the SAS URLs.

The front end is served by the Function App and uploads straight to blob storage: a cross-origin
PUT. Only the app's origin may do it, only with PUT, and only with the headers the upload sends.
Azure's photo account gets the same rule from infra/ (Bicep). CORS is a property of the blob
service (the whole account), so it is set once, right after Azurite starts.
"""

from __future__ import annotations

from collections.abc import Iterable

#: What the front end's upload sends: the blob type (required by Put Blob) and its content type.
#: A subset of the Azure rule (infra/app/storage.bicep), which also lets SDK clients send their
#: x-ms-version/x-ms-date/x-ms-client-request-id headers.
UPLOAD_HEADERS = ("x-ms-blob-type", "content-type")
MAX_AGE_SECONDS = 600


def app_origins(host_url: str) -> list[str]:
    """The app's origin, under both names a newcomer may type for the loopback address."""
    origins = [host_url.rstrip("/")]
    for a, b in (("//127.0.0.1:", "//localhost:"), ("//localhost:", "//127.0.0.1:")):
        if a in origins[0]:
            origins.append(origins[0].replace(a, b))
    return origins


def allow_browser_uploads(connection_string: str, origins: Iterable[str]) -> None:
    """Replaces the blob service's CORS rules with one: PUT from ``origins`` with the upload headers."""
    from azure.storage.blob import BlobServiceClient, CorsRule

    rule = CorsRule(allowed_origins=list(origins), allowed_methods=["PUT"], allowed_headers=list(UPLOAD_HEADERS),
                    exposed_headers=["x-ms-request-id"], max_age_in_seconds=MAX_AGE_SECONDS)
    BlobServiceClient.from_connection_string(connection_string).set_service_properties(cors=[rule])
