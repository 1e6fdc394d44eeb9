"""Verify or anchor the consent ledger from a shell: ``python -m local.ledger verify [--host URL]``
and ``python -m local.ledger anchor``.

``verify`` recomputes every user's hash chain and compares it with every anchor in the WORM
container; it prints the report as JSON and exits 1 when it finds an edited, deleted or reordered
entry (or a damaged anchor), 0 when all is intact. ``anchor`` writes today's anchor (what
purge_timer does once a day); a second run the same day writes nothing.

In-process by default, from the app settings in the environment (the local stack's when
``PhotoStorage`` and ``PhotoStorage__tableServiceUri`` are both unset); with ``--host`` it calls a
running host's ``POST /api/admin/ledger/verify`` as an administrator.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def _services() -> Any:
    from shared.bootstrap import build
    from shared.settings import Settings, local_environment

    env = dict(os.environ)
    if not env.get("PhotoStorage") and not env.get("PhotoStorage__tableServiceUri"):
        for key, value in local_environment().items():
            env.setdefault(key, value)
    return build(Settings.from_env(env))


def via_host(url: str) -> dict[str, Any]:
    import requests

    from local.purge import admin_principal

    r = requests.post(f"{url.rstrip('/')}/api/admin/ledger/verify",
                      headers={"X-MS-CLIENT-PRINCIPAL": admin_principal("local-ledger-cli")}, timeout=600)
    if r.status_code != 200:
        raise SystemExit(f"verify failed: HTTP {r.status_code}: {r.text[:500]}")
    out: dict[str, Any] = r.json()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.ledger", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="recompute the chains against the anchors")
    verify.add_argument("--host", help="call this host's POST /api/admin/ledger/verify instead of running in-process")
    sub.add_parser("anchor", help="write today's anchor now, over every chain (purge_timer's covers what changed)")
    args = parser.parse_args(argv)
    if args.command == "anchor":
        print(json.dumps(_services().ledger.anchor(), indent=2))
        return 0
    report: dict[str, Any] = via_host(args.host) if args.host else _services().ledger.verify(actor="cli").as_json()
    print(json.dumps(report, indent=2))
    return 0 if report.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
