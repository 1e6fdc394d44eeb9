"""What the app lets the Azure SDKs log: nothing that carries a URL, a header or a body.

Storage URLs carry user keys (a table row's ``PartitionKey``, a kept photo's blob name) and SAS
signatures; in Azure every log line goes to Application Insights, where erasure never reaches.
The SDKs' HTTP logging policy writes the full request URL and headers at INFO, and the AMQP and
identity stacks write connection details at INFO, so the app, not whoever hosts it, raises those
loggers to WARNING. It runs when the app is imported (``function_app``) and when services are built
(the operator CLIs), so a local log shows exactly what Application Insights would receive.
"""

from __future__ import annotations

import logging

#: Loggers that write request URLs, headers or bodies (or connection details) below WARNING.
SDK_LOGGERS = (
    "azure.core.pipeline.policies.http_logging_policy",  # "Request URL: ...", headers, at INFO
    "azure.core",
    "azure.storage",
    "azure.data.tables",
    "azure.servicebus",
    "azure.eventgrid",
    "azure.identity",
    "azure.ai",
    "uamqp",
    "urllib3",  # DEBUG lines carry the request path: only a WARNING level keeps them out
)


def quiet_sdk_logging() -> None:
    """Idempotent; leaves WARNING and above (SDK failures an operator must see) untouched."""
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
