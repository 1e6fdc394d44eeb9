"""Local Azure Face API emulator backed by a real face model (dlib).

    python -m local.face_api [--host 127.0.0.1] [--port 7072] [--data-dir DIR] [--key KEY]
                             [--extra-models recognition_05,...] [--synthetic] [--limited-access-unapproved]
                             [--verbose]

FACE_EMULATOR_LIMITED_ACCESS=unapproved does what --limited-access-unapproved does: every Limited Access
call answers 403 UnsupportedFeature, as Face does before Microsoft approves the subscription.

Serves /face/{v1.0,v1.2,v1.2-preview.1}/... and the /_emulator/{config,stats,reset,health} knobs.
See docs/face-emulator.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from local.face_api.model import MODEL
from local.face_api.server import LIMITED_ACCESS_ENV, Emulator, limited_access_approved_from_env, make_server


def _models(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.face_api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7072)
    parser.add_argument("--data-dir", type=Path, default=None, help="persist state here (in memory without)")
    parser.add_argument("--key", default=None, help="require this subscription key (any key accepted without)")
    parser.add_argument("--extra-models", default="", help="extra recognition model names, comma separated")
    parser.add_argument("--synthetic", action="store_true", help="hash-based descriptors, no dlib (benchmarks)")
    parser.add_argument("--no-warm-up", action="store_true", help="load the dlib models on first use")
    parser.add_argument("--limited-access-unapproved", action="store_true",
                        help="answer Limited Access calls with 403 UnsupportedFeature (also config limitedAccessApproved)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    extra = _models(os.environ.get("FACE_EMULATOR_EXTRA_MODELS", "")) + _models(args.extra_models)
    approved = not args.limited_access_unapproved and limited_access_approved_from_env(os.environ.get(LIMITED_ACCESS_ENV))
    emulator = Emulator(data_dir=args.data_dir, key=args.key, extra_models=extra, synthetic=args.synthetic,
                        limited_access_approved=approved)
    if not args.synthetic and not args.no_warm_up:
        threading.Thread(target=MODEL.warm_up, name="warm-up", daemon=True).start()
    server = make_server(emulator, args.host, args.port, verbose=args.verbose)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = str(server.server_address[0]), server.server_address[1]
    print(f"Face API emulator on http://{host}:{port} (models: {', '.join(emulator.models)}; "
          f"{'synthetic' if args.synthetic else 'dlib'}; data: {args.data_dir or 'memory'})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        emulator.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
