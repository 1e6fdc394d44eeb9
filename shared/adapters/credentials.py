"""Entra credentials for the adapters, built lazily (azure.identity costs import time on cold start).

In Azure the app runs as a user-assigned managed identity whose client id is in the settings;
``DefaultAzureCredential(managed_identity_client_id=...)`` picks it up there and falls back to the
developer's Azure CLI / VS Code login on a workstation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"

_lock = threading.Lock()
_credentials: dict[str | None, TokenCredential] = {}


def default_credential(managed_identity_client_id: str | None = None) -> TokenCredential:
    """One shared ``DefaultAzureCredential`` per managed identity client id (created on first use)."""
    with _lock:
        credential = _credentials.get(managed_identity_client_id)
        if credential is None:
            from azure.identity import DefaultAzureCredential

            if managed_identity_client_id:
                credential = DefaultAzureCredential(managed_identity_client_id=managed_identity_client_id)
            else:
                credential = DefaultAzureCredential()
            _credentials[managed_identity_client_id] = credential
        return credential


class CachedToken:
    """A bearer token for one scope, fetched from ``credential`` and reused until near expiry.

    Thread-safe: Functions runs synchronous invocations on a thread pool, so several calls may ask
    for a token at once; only one of them fetches it.
    """

    def __init__(self, credential: TokenCredential, scope: str, *, refresh_margin: float = 300.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._credential = credential
        self._scope = scope
        self._margin = refresh_margin
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_on: float = 0.0

    def get(self) -> str:
        with self._lock:
            if self._token is None or self._expires_on - self._clock() <= self._margin:
                access = self._credential.get_token(self._scope)
                self._token = access.token
                self._expires_on = float(access.expires_on)
            return self._token

    def invalidate(self) -> None:
        """Forget the token (after a 401) so the next call fetches a fresh one."""
        with self._lock:
            self._token = None
            self._expires_on = 0.0

    def __repr__(self) -> str:  # never show the token
        return f"CachedToken(scope={self._scope!r}, cached={self._token is not None})"
