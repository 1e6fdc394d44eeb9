"""The Function App: one blueprint per folder under functions/, nothing else.

Kept import-light on purpose (cold start): blueprints import only azure.functions and the
settings; services and SDK clients are built on first use by shared.bootstrap.
"""

from __future__ import annotations

import azure.functions as func

from functions.api import bp as api
from functions.enroll import bp as enroll
from functions.events import bp as events
from functions.purge_timer import bp as purge_timer
from functions.reenroll import bp as reenroll
from functions.revoke import bp as revoke
from functions.web import bp as web
from shared.logging_policy import quiet_sdk_logging

# Before any SDK client exists: no storage URL (user keys, SAS signatures) may reach Application Insights.
quiet_sdk_logging()

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
for blueprint in (api, enroll, revoke, purge_timer, reenroll, web, events):
    app.register_functions(blueprint)
