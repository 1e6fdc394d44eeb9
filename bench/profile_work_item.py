"""Where one re-enrollment work item spends its time, against Azurite and the Face emulator.

Builds the app's services with every port wrapped in a timing proxy, sets up N users with k kept
photos, fans a re-enrollment out (without the host: the work messages are not consumed), then runs
the work items one after the other in this process and reports, per item: wall time, time inside
storage requests (tables and blobs), Face calls and bus sends, and what is left (Python). With
``--profile`` one more item runs under pyinstrument and its call tree is printed.

The emulator has no rate limit here: this measures the app's own cost per item.

    python bench/profile_work_item.py [--users 20] [--photos 3] [--profile]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.bootstrap import build  # noqa: E402
from shared.commands import GrantConsent, ReenrollFanout, ReenrollWork, StartReenrollment  # noqa: E402
from shared.domain.principal import Principal  # noqa: E402
from shared.settings import Settings  # noqa: E402
from tests.fixtures.azurite import start_azurite  # noqa: E402
from tests.fixtures.face_emulator import start_face_emulator  # noqa: E402


class Timed:
    """Wraps a port: every public method call is counted and timed under ``kind``."""

    def __init__(self, inner: Any, kind: str, ledger: Ledger) -> None:
        self._inner, self._kind, self._ledger = inner, kind, ledger

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                result = attr(*args, **kwargs)
                if name == "range":  # a lazy query: its pages are fetched while iterating
                    result = list(result)
                return result
            finally:
                label = f"{name}:{args[0]}" if self._kind == "storage" and args and isinstance(args[0], str) else name
                self._ledger.add(self._kind, label, time.perf_counter() - t)
        return call


class Ledger:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, kind: str, label: str, seconds: float) -> None:
        with self._lock:
            self.seconds[kind] += seconds
            self.calls[f"{kind} {label}"] += 1

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    azurite = start_azurite(workdir)
    face = start_face_emulator("--extra-models", "recognition_05")
    try:
        face.configure(synthetic=True)
        env = {"PhotoStorage": azurite.connection_string, "MESSAGING_TRANSPORT": "storage-queues",
               "FACE_ENDPOINT": face.endpoint, "FACE_KEY": "k", "TABLE_PREFIX": "p" + uuid.uuid4().hex[:8],
               "TRAINING_COALESCE_SECONDS": "0", "FACE_RECOGNITION_MODELS": "recognition_04,recognition_05"}
        settings = Settings.from_env(env)
        plain = build(settings)
        ledger = Ledger()
        services = build(settings, records=Timed(plain.records, "storage", ledger),
                         photos=Timed(plain.photos, "storage", ledger), face=Timed(plain.face, "face", ledger),
                         publisher=Timed(plain.publisher, "bus", ledger))
        services.groups.active()
        terms = services.consent.terms().version
        users = [f"prof-{i:04d}" for i in range(args.users + 1)]
        for user in users:
            p = Principal(user_key=user, hr_key=None, is_admin=False, mfa=True, roles=frozenset())
            services.consent.grant(GrantConsent(p, terms, True, "bench"))
            token = services.repos.users.get(user).kept_token  # type: ignore[union-attr]
            for j in range(args.photos):
                services.photos.keep(f"{token}/{j}.jpg", os.urandom(2048))
        run = services.reenrollment.start(StartReenrollment("recognition_05", "bench"))
        services.reenrollment.control(ReenrollFanout(run.run_id, "", None))
        walls, parts = [], defaultdict(list)
        cpu0 = time.process_time()
        calls_total: Counter[str] = Counter()
        for user in users[:-1]:
            ledger.reset()
            t = time.perf_counter()
            assert services.reenrollment.work(ReenrollWork(run.run_id, user)) == "done"
            wall = time.perf_counter() - t
            walls.append(wall)
            for kind in ("storage", "face", "bus"):
                parts[kind].append(ledger.seconds.get(kind, 0.0))
            parts["python"].append(wall - sum(ledger.seconds.values()))
            calls_total.update(ledger.calls)
        n = len(walls)
        cpu_ms = (time.process_time() - cpu0) / n * 1000  # this process's CPU (all threads) per item
        print(f"one work item ({args.photos} kept photos), {n} items, median over items (ms):")
        print(f"  wall {statistics.median(walls) * 1000:7.1f}")
        for kind in ("storage", "face", "bus", "python"):
            print(f"  {kind:7s} {statistics.median(parts[kind]) * 1000:7.1f}")
        print(f"  CPU of this process per item (mean): {cpu_ms:.1f} ms")
        print("calls per item:")
        for name, count in sorted(calls_total.items()):
            print(f"  {count / n:5.2f}  {name}")
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            profiler.start()
            services.reenrollment.work(ReenrollWork(run.run_id, users[-1]))
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False, show_all=False))
        return 0
    finally:
        face.stop()
        azurite.process.terminate()
        azurite.process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
