"""Cold start: time to import function_app divided by the time of a bare `import azure.functions`.

Each measurement runs in a fresh interpreter (as a cold worker would), several times; the ratio of
medians is printed with the goal (at most 1.5: SDK clients and services are built on first use).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 7
PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def measure(module: str) -> float:
    times = []
    for _ in range(RUNS):
        out = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=ROOT, capture_output=True,
                             text=True, check=True)
        times.append(float(out.stdout.strip()))
    return statistics.median(times)


def heavy_modules_loaded() -> list[str]:
    code = ("import sys, function_app; heavy = ['azure.storage.blob', 'azure.data.tables', 'azure.servicebus', "
            "'azure.identity', 'requests', 'PIL', 'jsonschema', 'tenacity']; "
            "print(','.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def main() -> int:
    bare = measure("azure.functions")
    app = measure("function_app")
    ratio = app / bare
    print(f"import azure.functions   median of {RUNS}: {bare * 1000:7.1f} ms")
    print(f"import function_app      median of {RUNS}: {app * 1000:7.1f} ms")
    print(f"ratio function_app / azure.functions: {ratio:.2f}  (goal <= 1.5)  {'OK' if ratio <= 1.5 else 'OVER'}")
    heavy = heavy_modules_loaded()
    print(f"SDKs loaded at import: {', '.join(heavy) if heavy else 'none'}")
    return 0 if ratio <= 1.5 and not heavy else 1


if __name__ == "__main__":
    raise SystemExit(main())
