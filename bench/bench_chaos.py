"""Chaos: bench_load.py's burst (200 users × 3 photos) while the Face emulator injects 10% 503s, 200 ms
latency on every call and a rate limit below the demand; afterwards the convergence invariants (every
photo final, no duplicate face, no orphan person, no kept photo without consent). See bench_load.py.

    python bench/bench_chaos.py [--users 200] [--rate 6] [--json PATH]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_load import main

if __name__ == "__main__":
    raise SystemExit(main(["--chaos", *sys.argv[1:]]))
