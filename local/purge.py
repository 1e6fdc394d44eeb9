"""Run the purge now, from a shell: ``python -m local.purge [--dry-run | --run] [--host URL]``.

By default it builds the services in this process from the app settings in the environment
(``shared.bootstrap.build(Settings.from_env())``), exactly as purge_timer does; when neither
``PhotoStorage`` nor ``PhotoStorage__tableServiceUri`` is set it uses the local stack's settings
(Azurite on its default ports, the Face emulator on 7072). With ``--host`` it instead calls a running
local host's ``POST /api/admin/purge`` as an administrator. Either way the run writes its report to
the audit log and prints it as JSON. A dry run (the default) deletes nothing.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from typing import Any


def admin_principal(user_key: str = "local-purge-cli") -> str:
    claims = [{"typ": "oid", "val": user_key}, {"typ": "roles", "val": os.environ.get("ADMIN_ROLE", "FaceEnrollment.Admin")},
              {"typ": "amr", "val": "mfa"}]
    return base64.b64encode(json.dumps({"auth_typ": "aad", "claims": claims, "name_typ": "name",
                                        "role_typ": "roles"}).encode()).decode()


def via_host(url: str, *, dry_run: bool) -> dict[str, Any]:
    import requests

    r = requests.post(f"{url.rstrip('/')}/api/admin/purge", json={"dryRun": dry_run},
                      headers={"X-MS-CLIENT-PRINCIPAL": admin_principal()}, timeout=600)
    if r.status_code != 200:
        raise SystemExit(f"purge failed: HTTP {r.status_code}: {r.text[:500]}")
    out: dict[str, Any] = r.json()
    return out


def in_process(*, dry_run: bool) -> dict[str, Any]:
    from shared.bootstrap import build
    from shared.commands import RunPurge
    from shared.settings import Settings, local_environment

    env = dict(os.environ)
    if not env.get("PhotoStorage") and not env.get("PhotoStorage__tableServiceUri"):
        for key, value in local_environment().items():
            env.setdefault(key, value)
    report: dict[str, Any] = build(Settings.from_env(env)).purge.run(RunPurge(dry_run=dry_run, trigger="cli")).as_json()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.purge", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="report what would be deleted (the default)")
    mode.add_argument("--run", action="store_true", help="delete what is due")
    parser.add_argument("--host", help="call this local host's POST /api/admin/purge instead of running in-process")
    args = parser.parse_args(argv)
    dry_run = not args.run
    report = via_host(args.host, dry_run=dry_run) if args.host else in_process(dry_run=dry_run)
    json.dump(report, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 1 if report.get("errors") else 0


if __name__ == "__main__":
    raise SystemExit(main())
