"""`make bench`: every benchmark in bench/, one after the other, each printing its figures and ratios
(except the load, chaos and soak runs, which have a make target each)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Whole-stack runs of 10 to 30 minutes each: `make bench-load`, `make bench-chaos`, `make bench-soak`.
SEPARATE = {"bench_load.py", "bench_chaos.py", "bench_soak.py"}


def main() -> int:
    failed = []
    for script in sorted(p for p in HERE.glob("bench_*.py") if p.name not in SEPARATE):
        print(f"\n=== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)], cwd=HERE.parent, check=False).returncode != 0:
            failed.append(script.name)
    print(f"\n{len(failed)} benchmark(s) missed their goal: {', '.join(failed)}" if failed else "\nall goals met")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
