"""What the process environment asks of the HTTP clients, read once instead of on every request.

requests, and the Azure SDK transport built on it, look up proxies, ``NO_PROXY``, a CA bundle and
``~/.netrc`` for *every* request while ``trust_env`` is on: they walk ``os.environ`` and stat files,
holding the GIL. Profiled in the re-enrollment host at R = 50 (py-spy, GIL samples), those lookups
took 13 % of the process's CPU (docs/performance.md §2). So the environment is read once, when a
client is built:

- a proxy setting or a netrc file: the per-request lookups stay on, and requests behaves as it defines
  (``NO_PROXY`` is decided per host, so it cannot be settled once);
- otherwise they are off, and a CA bundle named by ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` is set
  on the client itself, which is what requests would have done with it on each request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: What requests looks up per request besides the CA bundle (upper case; lower case counts too).
PER_REQUEST_SETTINGS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "NETRC")
#: requests' order: REQUESTS_CA_BUNDLE wins over CURL_CA_BUNDLE.
CA_BUNDLE_SETTINGS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@dataclass(frozen=True)
class HttpEnvironment:
    per_request: bool  # a proxy or netrc setting: requests must keep looking the environment up
    ca_bundle: str | None


def read_http_environment(environ: Mapping[str, str] | None = None, *, home: Path | None = None) -> HttpEnvironment:
    values = {name.upper(): value for name, value in (os.environ if environ is None else environ).items() if value}
    bundle = next((values[name] for name in CA_BUNDLE_SETTINGS if name in values), None)
    if any(name in values for name in PER_REQUEST_SETTINGS):
        return HttpEnvironment(per_request=True, ca_bundle=bundle)
    try:
        home = home if home is not None else Path.home()
    except (KeyError, RuntimeError):  # no home directory: no netrc file either
        return HttpEnvironment(per_request=False, ca_bundle=bundle)
    netrc = any((home / name).exists() for name in (".netrc", "_netrc"))
    return HttpEnvironment(per_request=netrc, ca_bundle=bundle)


def sdk_client_options() -> dict[str, Any]:
    """Options for every Azure SDK client (azure-core's ``use_env_settings`` is requests' ``trust_env``)."""
    env = read_http_environment()
    if env.per_request:
        return {"use_env_settings": True}
    return {"use_env_settings": False, **({"connection_verify": env.ca_bundle} if env.ca_bundle else {})}


def configure_session(session: Any) -> None:
    """The same for a ``requests.Session`` of our own (the Face client)."""
    env = read_http_environment()
    session.trust_env = env.per_request
    if not env.per_request and env.ca_bundle:
        session.verify = env.ca_bundle
