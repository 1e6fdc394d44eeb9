"""Builds the deployment package the way ``azd deploy`` does for a function app: the project folder,
zipped, minus what ``.funcignore`` excludes (gitignore rules). Flex Consumption then runs a remote
build that installs ``requirements.txt``, so the zip holds source, data files and that list, no wheels.

    python scripts/package.py [--out .local/package/face-enrollment.zip] [--list]

The archive is reproducible (sorted entries, fixed timestamps), so two builds of one tree are equal.
tests/e2e/test_package.py unpacks it and runs the app from it.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pathspec

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / ".local" / "package" / "face-enrollment.zip"
#: What the Functions runtime itself needs at the package root; a package without them is broken.
REQUIRED = ("function_app.py", "host.json", "requirements.txt")
_EPOCH = (1980, 1, 1, 0, 0, 0)


def ignore_spec(root: Path) -> pathspec.GitIgnoreSpec:
    funcignore = root / ".funcignore"
    lines = funcignore.read_text().splitlines() if funcignore.exists() else ["__pycache__", ".venv"]
    return pathspec.GitIgnoreSpec.from_lines(lines)


def package_files(root: Path = ROOT) -> Iterator[Path]:
    """Relative paths of every file that goes into the package, sorted."""
    spec = ignore_spec(root)
    found: list[Path] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        for entry in folder.iterdir():
            rel = entry.relative_to(root).as_posix()
            if entry.is_dir() and not entry.is_symlink():
                if not spec.match_file(rel + "/"):
                    stack.append(entry)
            elif entry.is_file() and not spec.match_file(rel):
                found.append(Path(rel))
    yield from sorted(found)


def build(out: Path = DEFAULT_OUT, *, root: Path = ROOT) -> list[Path]:
    files = list(package_files(root))
    missing = [name for name in REQUIRED if Path(name) not in files]
    if missing:
        raise SystemExit(f"the package would lack {', '.join(missing)}: check .funcignore")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for rel in files:
            info = zipfile.ZipInfo(rel.as_posix(), date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (root / rel).read_bytes())
    tmp.replace(out)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--list", action="store_true", help="print the packaged files")
    args = parser.parse_args(argv)
    files = build(args.out)
    if args.list:
        for rel in files:
            print(rel.as_posix())
    print(f"{args.out}: {len(files)} files, {args.out.stat().st_size:,} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
