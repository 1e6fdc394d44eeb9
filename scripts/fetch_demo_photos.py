"""Fetches the demo's sample photos from face_recognition 1.3.0's source distribution on PyPI.

The demo must not depend on ../shared, and photos are never committed: `pip download` brings the
sdist, and its tests/test_images/ holds several photos of one person and one of another.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

WANTED = ("obama.jpg", "obama2.jpg", "obama3.jpg", "obama_partial_face.jpg", "obama_partial_face2.jpg",
          "biden.jpg", "32bit.png")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dest", type=Path, required=True)
    args = parser.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                        "--no-binary", ":all:", "face_recognition==1.3.0", "-d", tmp], check=True)
        sdist = next(Path(tmp).glob("face_recognition-1.3.0*.tar.gz"))
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                if "/tests/test_images/" in member.name and member.isfile():
                    name = Path(member.name).name
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        (args.dest / name).write_bytes(extracted.read())
    found = sorted(p.name for p in args.dest.iterdir() if p.suffix in (".jpg", ".png"))
    print(f"demo photos in {args.dest}: {', '.join(found)}")
    return 0 if any(n.startswith("obama") for n in found) else 1


if __name__ == "__main__":
    raise SystemExit(main())
