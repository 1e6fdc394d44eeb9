"""python -m local.host [--app function_app] [--port 7071]: the local Functions host (foreground)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

ROOT_ON_PATH = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _audit_opens(path: str) -> None:
    """Records each distinct path opened from now on (an audit hook: it sees opens by any library)."""
    out = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open before the hook, for the process's life
    seen: set[str] = set()
    lock = threading.Lock()

    def hook(event: str, event_args: tuple[object, ...]) -> None:
        if event != "open" or not isinstance(event_args[0], (str, bytes, os.PathLike)):
            return
        name = os.path.abspath(os.fsdecode(event_args[0]))
        with lock:
            if name not in seen:
                seen.add(name)
                out.write(name + "\n")
                out.flush()

    sys.addaudithook(hook)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.host", description=__doc__)
    parser.add_argument("--app", default="function_app", help="module[:attribute] holding the FunctionApp")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_HOST_PORT", "7071")))
    parser.add_argument("--lock-seconds", type=float, default=None, help="override Service Bus lock duration")
    parser.add_argument("--concurrency", type=int, default=None, help="Service Bus calls in parallel per function")
    parser.add_argument("--no-timers", action="store_true", help="timers fire only through /admin/functions")
    parser.add_argument("--functions", default=None, help="comma-separated functions to run (default: all)")
    parser.add_argument("--no-blob-watcher", action="store_true", help="blob triggers only through the webhook")
    parser.add_argument("--log-level", default=os.environ.get("LOCAL_HOST_LOG_LEVEL", "INFO"))
    parser.add_argument("--app-dir", default=None,
                        help="serve the app from this folder (an unpacked deployment package) instead of the "
                             "working tree; it becomes the working directory, as /home/site/wwwroot is in Azure")
    parser.add_argument("--audit-opens", default=None,
                        help="append every file path the process opens to this file (the package test)")
    args = parser.parse_args(argv)

    # No SDK logger is configured here on purpose: the app sets its own (shared.logging_policy), so a
    # local log shows exactly what Application Insights would receive.
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.audit_opens:
        _audit_opens(args.audit_opens)
    if ROOT_ON_PATH not in sys.path:
        sys.path.insert(0, ROOT_ON_PATH)
    if args.app_dir:
        app_dir = os.path.abspath(args.app_dir)
        sys.path.insert(0, app_dir)  # first: shared/ and functions/ come from the package, not the tree
        os.chdir(app_dir)
    from shared.settings import local_environment

    # Local defaults for what is not set (what local.settings.json gives Core Tools users).
    for key, value in local_environment().items():
        os.environ.setdefault(key, value)

    from local.host import LocalHost

    host = LocalHost(app_spec=args.app, storage_connection=os.environ["PhotoStorage"], http_port=args.port,
                     host=args.host, lock_seconds=args.lock_seconds, enable_timers=not args.no_timers, enable_watcher=not args.no_blob_watcher,
                     concurrency=args.concurrency,
                     only=[f for f in (args.functions or '').split(',') if f] or None)
    stopped = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    host.start()
    print(f"local host listening on http://{args.host}:{host.http_port}", flush=True)
    stopped.wait()
    host.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
