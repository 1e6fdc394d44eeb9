"""Renders the README's benchmark table from .local/bench/results.json (written by `make bench`).

    python scripts/render_bench_table.py            # print the table
    python scripts/render_bench_table.py --write    # replace the table between the markers in README.md

The table is never typed by hand: every figure, its goal and PASS/FAIL come from the results file, with
the machine, the date of each measurement, the code it measured and the load average when it started
(this machine is shared; a loaded machine gives slower figures, and the table says how loaded it was).
A figure the results file has no run for is still listed, as "not measured"; with ``--write`` its row
is carried over from the table in the README, if that row holds a measurement (each row names its own
date, load and code, so a carried row still says when and on what it was measured).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / ".local" / "bench" / "results.json"
README = ROOT / "README.md"
START = "<!-- bench-table:start: rendered by scripts/render_bench_table.py from .local/bench/results.json -->"
END = "<!-- bench-table:end -->"


def _load(text: str) -> str:
    found = re.search(r"load averages?:\s*([\d.]+)", text or "")
    return found.group(1) if found else "?"


def _value(row: dict[str, Any], measured: bool) -> str:
    value = row.get("value")
    if value is None:
        return "no figure in its output" if measured else "not measured"
    text = f"{value:.3g}" if isinstance(value, float) and not float(value).is_integer() else f"{value:g}"
    return f"{text} {row['unit']}".strip()


def _rows(readme: str) -> dict[str, str]:
    """The README table's rows by figure (its first cell)."""
    if START not in readme or END not in readme:
        return {}
    body = readme.split(START, 1)[1].split(END, 1)[0]
    out = {}
    # Rows carried over once keep naming the machine they were measured on, not the one that rendered them.
    machine = (re.search(r"that table's machine: (.*)\)\.$", body, re.MULTILINE)
               or re.search(r"^Machine: (.*?)\. Measured", body, re.MULTILINE))
    if machine:
        out["__machine__"] = machine.group(1)
    for line in body.splitlines():
        cells = line.split(" | ")
        if line.startswith("| ") and len(cells) >= 7 and not line.startswith(("| Figure |", "|---")):
            out[cells[0][2:]] = line
    return out


def render(results: dict[str, Any], *, previous: dict[str, str] | None = None) -> str:
    m = results.get("machine", {})
    benches = results.get("benches", {})
    dates = sorted(r["startedAt"] for b in benches.values() for r in b.get("runs", []) if r.get("startedAt"))
    previous = previous or {}
    carried = [row["figure"] for row in results.get("table", [])
               if not benches.get(row["bench"], {}).get("runs") and "| never |" not in previous.get(row["figure"], "| never |")]
    dates += [previous[f].split(" | ")[4] for f in carried]
    dates.sort()
    span = f"{dates[0]} – {dates[-1]}" if dates else "never"
    lines = [
        START,
        f"Machine: {m.get('cpus', '?')} CPUs ({m.get('cpu', '?')}), {m.get('system', '?')}, Python "
        f"{m.get('python', '?')}. Measured {span} (UTC). Load is the 1-minute load average when the "
        f"benchmark started: above the CPU count, the machine was busy with other work. Code is the commit "
        f"measured; a figure measured on older code than the README describes is not a figure of this code."
        + (f" {len(carried)} rows were not measured in this results file and are carried over from the previous "
           f"table, with their own date, load and code"
           + (f" (that table's machine: {previous['__machine__']})" if previous.get("__machine__") else "")
           + "." if carried else ""),
        "",
        "| Figure | Value | Goal | Result | Measured (UTC) | Load | Code |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results.get("table", []):
        runs = benches.get(row["bench"], {}).get("runs", [])
        if row["figure"] in carried:
            lines.append(previous[row["figure"]])
            continue
        when = runs[0]["startedAt"] if runs else "never"
        load = ", ".join(_load(r.get("loadBefore", "")) for r in runs) if runs else "—"
        code = ", ".join(dict.fromkeys(str(r.get("code") or "unrecorded") for r in runs)) if runs else "—"
        lines.append(f"| {row['figure']} | {_value(row, bool(runs))} | {row['goal']} | {row['verdict']} | {when} | {load} "
                     f"| {code} |")
    lines.append(END)
    return "\n".join(lines) + "\n"


def replace_in(readme: str, table: str) -> str:
    if START not in readme or END not in readme:
        raise ValueError("README.md has no bench-table markers")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + table.rstrip("\n") + tail


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not args.results.exists():
        print(f"{args.results} not found: run `make bench` first", file=sys.stderr)
        return 2
    previous = _rows(README.read_text()) if args.write else {}
    table = render(json.loads(args.results.read_text()), previous=previous)
    if args.write:
        README.write_text(replace_in(README.read_text(), table))
    else:
        print(table, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
