"""The README's configuration table is generated from SETTINGS and cannot drift from it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from shared.settings import SETTINGS, SettingSpec

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "render_settings_table.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_settings_table", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("render_settings_table", module)
    spec.loader.exec_module(module)
    return module


render = _load()


def test_readme_table_is_up_to_date() -> None:
    assert render.main(["--check"]) == 0, "README.md is out of date: run `python scripts/render_settings_table.py`"


def test_every_setting_has_a_row() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index(render.BEGIN):readme.index(render.END)]
    for s in SETTINGS:
        assert f"| `{s.name}` |" in block, s.name


def test_check_fails_on_a_stale_readme(tmp_path: Path) -> None:
    stale = tmp_path / "README.md"
    stale.write_text(f"# x\n\n{render.BEGIN}\n| old |\n{render.END}\n", encoding="utf-8")
    assert render.main(["--check", "--readme", str(stale)]) == 1
    assert render.main(["--readme", str(stale)]) == 0
    assert render.main(["--check", "--readme", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8").startswith("# x\n\n")


def test_check_fails_without_markers(tmp_path: Path) -> None:
    bare = tmp_path / "README.md"
    bare.write_text("# no table here\n", encoding="utf-8")
    assert render.main(["--check", "--readme", str(bare)]) == 1


def test_pipes_in_a_meaning_are_escaped() -> None:
    table = render.render_table([SettingSpec("X", "a|b", "both", "one | two")])
    assert "| `X` | `a\\|b` | both | one \\| two |" in table
