"""A small Functions host for the local stack: ``python -m local.host``.

It imports the app, discovers every function from the real decorators and drives each trigger:
HTTP on ``/api/<route>``, the Core Tools-compatible Event Grid webhooks, a blob watcher that
synthesises ``BlobCreated`` events from Azurite, Service Bus triggers on the stand-in, timers on
their NCRONTAB schedule, and ``POST /admin/functions/<name>`` to fire any non-HTTP function now.
"""

from __future__ import annotations

from local.host.host import LocalHost

__all__ = ["LocalHost"]
