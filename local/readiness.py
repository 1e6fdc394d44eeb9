"""Is the stack ready? ``python -m local.readiness [--host URL] [--json] [--timeout S]``

Runs the readiness checks (shared/services/readiness.py) and prints one row per check, then the next step
of each check that is not ok. Exit status 0 when ready, 1 when any check failed.

By default it builds the services in this process from the app settings in the environment, exactly as
``GET /api/admin/readiness`` does in the function app; a setting the environment lacks takes the local
stack's value, as ``python -m local.host`` does (Azurite on its default ports, the Face emulator on 7072,
the Service Bus stand-in, ``PRINCIPAL_SOURCE=local``). With ``--host`` it calls a running host's
``GET /api/admin/readiness`` as an administrator instead (the local stack trusts the principal header).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from typing import Any


def via_host(url: str) -> dict[str, Any]:
    import requests

    from local.purge import admin_principal

    r = requests.get(f"{url.rstrip('/')}/api/admin/readiness",
                     headers={"X-MS-CLIENT-PRINCIPAL": admin_principal("local-readiness-cli")}, timeout=60)
    if r.status_code != 200:
        raise SystemExit(f"readiness failed: HTTP {r.status_code}: {r.text[:500]}")
    out: dict[str, Any] = r.json()
    return out


def in_process(*, timeout: float | None = None) -> dict[str, Any]:
    from shared.bootstrap import build
    from shared.settings import Settings, local_environment

    env = dict(os.environ)
    # The local stack's settings where the environment has none, as local.host does (so the checks see
    # what the local host sees, PRINCIPAL_SOURCE=local included). Nothing set is overridden.
    if not env.get("PhotoStorage__tableServiceUri"):
        for key, value in local_environment().items():
            env.setdefault(key, value)
    service = build(Settings.from_env(env)).readiness
    if timeout is not None:
        service.timeout_seconds = timeout
    report: dict[str, Any] = service.check().as_json()
    return report


MARK = {"ok": "ok", "warning": "WARNING", "failed": "FAILED"}


def render(report: dict[str, Any], *, width: int = 100) -> str:
    checks = report["checks"]
    name_w = max(len("check"), *(len(c["name"]) for c in checks))
    status_w = max(len(v) for v in MARK.values())
    detail_w = max(30, width - name_w - status_w - 6)
    lines = [f"{'check':<{name_w}}  {'status':<{status_w}}  detail", f"{'-' * name_w}  {'-' * status_w}  {'-' * detail_w}"]
    for c in checks:
        wrapped = textwrap.wrap(c["detail"], detail_w) or [""]
        lines.append(f"{c['name']:<{name_w}}  {MARK.get(c['status'], c['status']):<{status_w}}  {wrapped[0]}")
        lines.extend(f"{'':<{name_w}}  {'':<{status_w}}  {more}" for more in wrapped[1:])
    steps = [c for c in checks if c["status"] != "ok" and c.get("nextStep")]
    if steps:
        lines.append("")
        lines.append("Next steps:")
        for c in steps:
            lines.extend(textwrap.wrap(f"{c['name']}: {c['nextStep']}", width, initial_indent="- ",
                                       subsequent_indent="  "))
    lines.append("")
    lines.append(f"ready: {'yes' if report['ready'] else 'NO'} (checked at {report['checkedAt']}, "
                 f"{report['timeoutSeconds']:g} s per check)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.readiness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", help="call this host's GET /api/admin/readiness instead of checking in-process")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--timeout", type=float, default=None, help="seconds each check is given (in-process)")
    args = parser.parse_args(argv)
    report = via_host(args.host) if args.host else in_process(timeout=args.timeout)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render(report))
    return 0 if report["ready"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
