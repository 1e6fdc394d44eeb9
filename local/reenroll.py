"""Operator CLI for re-enrollment runs, with a live progress bar.

    python -m local.reenroll start --model recognition_05 [--watch]
    python -m local.reenroll watch RUN_ID
    python -m local.reenroll resume RUN_ID

It calls the admin API (`--api`, default the local host). On the local stack it signs in as an
admin by sending the App Service Authentication principal header itself; against Azure, pass
`--bearer TOKEN` (an Entra token for the app) and App Service Authentication supplies the principal.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from typing import Any

import requests
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

FINAL = ("switched", "failed")


def _headers(args: argparse.Namespace) -> dict[str, str]:
    if args.bearer:
        return {"Authorization": f"Bearer {args.bearer}"}
    doc = {"auth_typ": "aad", "claims": [{"typ": "oid", "val": args.operator}, {"typ": "roles", "val": args.admin_role},
                                         {"typ": "amr", "val": "mfa"}]}
    return {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(doc).encode()).decode()}


def _call(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    r = requests.request(method, f"{args.api.rstrip('/')}/api/{path}", json=body, headers=_headers(args), timeout=30)
    doc: dict[str, Any] = r.json() if r.content else {}
    if r.status_code >= 400:
        error = doc.get("error", {})
        raise SystemExit(f"error {r.status_code}: {error.get('message', r.text)}"
                         + (f" (run {error['runId']})" if error.get("runId") else ""))
    return doc


def watch(args: argparse.Namespace, run_id: str, console: Console) -> int:
    columns = (TextColumn("[bold]{task.fields[status]:<10}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("done {task.fields[done]} · failed {task.fields[failed]} · skipped {task.fields[skipped]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("run", total=None, status="starting", done=0, failed=0, skipped=0)
        while True:
            run = _call(args, "GET", f"admin/reenrollments/{run_id}")
            finished = run["done"] + run["failed"] + run["skipped"]
            progress.update(task, total=run["total"] or None, completed=finished, status=run["status"],
                            done=run["done"], failed=run["failed"], skipped=run["skipped"])
            if run["status"] in FINAL:
                break
            time.sleep(args.interval)
    console.print(f"run {run_id}: [bold]{run['status']}[/bold]" + (f" — {run['message']}" if run.get("message") else ""))
    return 0 if run["status"] == "switched" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.reenroll", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", default="http://127.0.0.1:7071")
    parser.add_argument("--bearer", default=None, help="Entra token (Azure); omit on the local stack")
    parser.add_argument("--operator", default="operator-cli", help="local only: the admin's user key")
    parser.add_argument("--admin-role", default="FaceEnrollment.Admin")
    parser.add_argument("--interval", type=float, default=0.5)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start")
    start.add_argument("--model", required=True)
    start.add_argument("--watch", action="store_true")
    for name in ("watch", "resume"):
        sub.add_parser(name).add_argument("run_id")
    args = parser.parse_args(argv)
    console = Console()
    if args.command == "start":
        run = _call(args, "POST", "admin/reenrollments", {"recognitionModel": args.model})
        console.print(f"started run {run['runId']} to {run['recognitionModel']}")
        return watch(args, run["runId"], console) if args.watch else 0
    if args.command == "resume":
        run = _call(args, "POST", f"admin/reenrollments/{args.run_id}/resume")
        console.print(f"resumed run {args.run_id} ({run['status']})")
        return 0
    return watch(args, args.run_id, console)


if __name__ == "__main__":
    sys.exit(main())
