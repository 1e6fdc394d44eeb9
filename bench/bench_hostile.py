"""Every file of the hostile-image corpus is accepted or refused within 2 s of CPU and 200 MB of memory.

The corpus (tests/hostile/corpus.py) is generated at run time: progressive-JPEG scan bombs (1,000 and
10,000 empty AC scans on a 6300x6300 frame), cheap huge PNGs (stripes, 16-bit grayscale), decompression
bombs, huge declared dimensions over a tiny payload, truncated and mislabelled files, an empty file,
and ordinary camera-sized photos that must still be accepted.

Per file, a fresh interpreter runs ``validate_image`` with the default limits on the work itself
(``isolate=False``: the checks must bound the cost without the sandbox having to kill anything), and
the parent reads that child's own resource usage with ``os.wait4``: user+system CPU and peak RSS
(``ru_maxrss``). The figures include the interpreter and Pillow's import, shown once as "baseline".
A second child times the production path (sandboxed) by the wall clock. Finally, with the scan cap
lifted, the 10,000-scan bomb shows the sandbox's own CPU limit stopping a decode.

Goal: every file within 2 s CPU and 200 MB peak, with the expected outcome (bench exits 1 otherwise).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hostile import corpus  # noqa: E402

CPU_GOAL = 2.0
MEMORY_GOAL_MB = 200.0

CHILD = r"""
import json, sys, time
from shared.images import ImageRejected, validate_image
path, isolate, overrides = sys.argv[1], sys.argv[2] == "1", json.loads(sys.argv[3])
data = open(path, "rb").read() if path else None
started = time.monotonic()
try:
    outcome = "accepted" if data is None or validate_image(data, isolate=isolate, **overrides) else ""
except ImageRejected as exc:
    outcome = exc.code
print(json.dumps({"outcome": outcome, "wall": time.monotonic() - started}))
"""


def run_child(path: str, *, isolate: bool, overrides: dict[str, object] | None = None) -> dict[str, float | str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, path, "1" if isolate else "0", json.dumps(overrides or {})],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed on {path}: {err.decode()[-2000:]}")
    doc = json.loads(out)
    return {"outcome": doc["outcome"], "wall": doc["wall"], "cpu": usage.ru_utime + usage.ru_stime,
            "rss_mb": usage.ru_maxrss / 1024}


WRITE_CORPUS = r"""
import sys
from pathlib import Path
from tests.hostile import corpus
for name, data in corpus.build().items():
    (Path(sys.argv[1]) / name).write_bytes(data)
"""


def main() -> int:
    started = time.monotonic()
    tmp_dir = tempfile.TemporaryDirectory()
    tmp = tmp_dir.name
    # Built in a child: a forked child's ru_maxrss starts from its parent's, so this process stays small.
    subprocess.run([sys.executable, "-c", WRITE_CORPUS, tmp], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                   check=True)
    sizes = {name: (Path(tmp) / name).stat().st_size for name in corpus.BUILDERS}
    print(f"corpus: {len(sizes)} files, {sum(sizes.values()) / 1e6:.1f} MB, built in {time.monotonic() - started:.1f} s")
    base = run_child("", isolate=False)
    print(f"baseline (interpreter + Pillow import, no file): cpu {base['cpu']:.2f} s, peak {base['rss_mb']:.0f} MB\n")
    print(f"{'file':32} {'bytes':>9} {'outcome':>14} {'cpu s':>6} {'peak MB':>8} {'sandboxed wall s':>17}")
    missed: list[str] = []
    rows = []
    with tmp_dir:
        for name, size in sizes.items():
            path = Path(tmp) / name
            work = run_child(str(path), isolate=False)
            sandboxed = run_child(str(path), isolate=True)
            rows.append((name, work))
            outcome = str(work["outcome"])
            wrong = (name in corpus.ACCEPTED and outcome != "accepted") or (
                name in corpus.REFUSED and outcome == "accepted") or sandboxed["outcome"] != outcome
            over = float(work["cpu"]) > CPU_GOAL or float(work["rss_mb"]) > MEMORY_GOAL_MB
            flag = " MISSED" if (wrong or over) else ""
            if wrong or over:
                missed.append(name)
            print(f"{name:32} {size:>9} {outcome:>14} {float(work['cpu']):>6.2f} {float(work['rss_mb']):>8.0f} "
                  f"{float(sandboxed['wall']):>17.2f}{flag}", flush=True)
        worst_cpu = max(rows, key=lambda r: float(r[1]["cpu"]))
        worst_rss = max(rows, key=lambda r: float(r[1]["rss_mb"]))
        print(f"\nworst CPU:    {worst_cpu[0]} {float(worst_cpu[1]['cpu']):.2f} s (goal {CPU_GOAL} s, "
              f"ratio {float(worst_cpu[1]['cpu']) / CPU_GOAL:.2f})")
        print(f"worst memory: {worst_rss[0]} {float(worst_rss[1]['rss_mb']):.0f} MB (goal {MEMORY_GOAL_MB:.0f} MB, "
              f"ratio {float(worst_rss[1]['rss_mb']) / MEMORY_GOAL_MB:.2f})")
        # The sandbox as the last line: the 10,000-scan bomb with every header limit lifted.
        path = Path(tmp) / "jpeg-scan-bomb-10000"
        lifted = {"max_scans": 10**6, "max_segments": 10**6, "max_side": 10_000, "max_pixels": 10**8}
        caught = run_child(str(path), isolate=True, overrides=lifted)
        print(f"sandbox alone (header limits lifted) on jpeg-scan-bomb-10000: {caught['outcome']} after "
              f"{float(caught['wall']):.2f} s wall")
        if caught["outcome"] != "tooCostly":
            missed.append("sandbox")
    print(f"\n{'goal met' if not missed else 'goal MISSED: ' + ', '.join(missed)} "
          f"({time.monotonic() - started:.0f} s in all)")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
