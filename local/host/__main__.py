"""python -m local.host [--app function_app] [--port 7071]: the local Functions host (foreground)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

ROOT_ON_PATH = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
    args = parser.parse_args(argv)

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The SDKs log every HTTP exchange at INFO: noise, and headers that do not belong in a log.
    logging.getLogger("azure").setLevel(logging.WARNING)
    if ROOT_ON_PATH not in sys.path:
        sys.path.insert(0, ROOT_ON_PATH)
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
