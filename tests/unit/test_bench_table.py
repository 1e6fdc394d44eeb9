"""The README's benchmark table is the renderer's output (scripts/render_bench_table.py), not typed by hand:
the same rows, columns and words, whatever the numbers."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


renderer = _module(ROOT / "scripts" / "render_bench_table.py", "render_bench_table")
run_all = _module(ROOT / "bench" / "run_all.py", "bench_run_all")


def shape(table: str) -> list[str]:
    """The table with its numbers, dates, machine description and verdicts blanked out."""
    out = []
    for line in table.strip().splitlines():
        if line.startswith("Machine:"):
            out.append("Machine:")
            continue
        line = re.sub(r"\d{4}-\d\d-\d\dT[\d:]+(\+00:00|Z)?", "DATE", line)
        line = re.sub(r"\| (PASS|FAIL|n/a|info) \|", "| VERDICT |", line)
        cells = line.split("|")
        if len(cells) > 3 and not line.startswith("|---") and not line.startswith("| Figure |"):
            cells[2] = " VALUE "  # the value column: a number and unit, or "not measured"
            cells[5] = " WHEN "  # a date, or "never"
            cells[6] = " LOAD "
            cells[7] = " CODE "  # the commit measured
        out.append("|".join(cells))
    return out


def sample_results() -> dict[str, Any]:
    table = [{"bench": f.bench, "figure": f.label, "value": 1.0, "unit": f.unit, "goal": f.goal, "verdict": "PASS"}
             for f in run_all.FIGURES]
    run = {"startedAt": "2026-01-01T00:00:00+00:00", "loadBefore": "load average: 1.00, 1.00, 1.00",
           "code": "abc1234"}
    return {"machine": {"cpus": 2, "cpu": "x", "system": "Linux", "python": "3.11"},
            "benches": {f.bench: {"runs": [run]} for f in run_all.FIGURES}, "table": table}


def test_the_readme_table_is_what_the_renderer_writes() -> None:
    readme = (ROOT / "README.md").read_text()
    assert renderer.START in readme and renderer.END in readme
    section = readme.split(renderer.START, 1)[1].split(renderer.END, 1)[0]
    in_readme = shape(renderer.START + section + renderer.END)
    assert in_readme == shape(renderer.render(sample_results()))


def test_every_figure_has_a_goal_and_a_row() -> None:
    rendered = renderer.render(sample_results())
    for f in run_all.FIGURES:
        assert f"| {f.label} |" in rendered
        assert f.goal


def test_replace_keeps_the_rest_of_the_readme() -> None:
    text = f"before\n{renderer.START}\nOLD-TABLE\n{renderer.END}\nafter\n"
    out = renderer.replace_in(text, renderer.render(sample_results()))
    assert out.startswith("before\n") and out.endswith("\nafter\n") and "OLD-TABLE" not in out


def test_a_figure_never_measured_says_so() -> None:
    results = sample_results()
    del results["benches"]["load"]
    for row in results["table"]:
        if row["bench"] == "load":
            row["value"], row["verdict"] = None, "n/a"
    rendered = renderer.render(results)
    rows = [line for line in rendered.splitlines() if line.startswith("| Load")]
    assert rows and all("| not measured |" in r and "| never |" in r and "| n/a |" in r for r in rows)


def test_each_row_names_the_code_it_measured() -> None:
    rendered = renderer.render(sample_results())
    rows = [line for line in rendered.splitlines() if line.startswith("| ") and not line.startswith("| Figure")]
    assert rows and all(r.endswith("| abc1234 |") for r in rows)


def test_a_row_not_measured_this_time_is_carried_over_with_its_own_date_and_code() -> None:
    old = renderer.render(sample_results())
    results = sample_results()
    del results["benches"]["load"]
    for row in results["table"]:
        if row["bench"] == "load":
            row["value"], row["verdict"] = None, "n/a"
    previous = renderer._rows(old)
    rendered = renderer.render(results, previous=previous)
    load_rows = [line for line in rendered.splitlines() if line.startswith("| Load")]
    assert load_rows and all(line in old.splitlines() for line in load_rows)  # the old rows, verbatim
    assert "carried over from the previous table" in rendered
    # A row the previous table never measured is not carried: it stays "not measured".
    never = renderer.render(results, previous={k: v.replace("| 2026-01-01T00:00:00+00:00 |", "| never |")
                                               for k, v in previous.items()})
    assert all("| not measured |" in line for line in never.splitlines() if line.startswith("| Load"))
