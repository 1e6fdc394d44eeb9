"""The consent terms: versioned JSON files in terms/ (the newest version is the current one), read once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TERMS_DIR = Path(__file__).resolve().parents[2] / "terms"


@dataclass(frozen=True)
class Terms:
    version: str
    sha256: str
    document: Mapping[str, object]

    def public(self) -> dict[str, object]:
        return {
            "termsVersion": self.version,
            "sha256": self.sha256,
            "title": self.document.get("title"),
            "purposes": list(_list(self.document.get("purposes"))),
            "text": self.document.get("text"),
            "storePhotosText": self.document.get("storePhotosText"),
        }


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


@lru_cache(maxsize=4)
def load_terms(directory: Path = TERMS_DIR) -> dict[str, Terms]:
    out: dict[str, Terms] = {}
    for path in sorted(directory.glob("*.json")):
        raw = path.read_bytes()
        doc = json.loads(raw)
        out[str(doc["version"])] = Terms(str(doc["version"]), hashlib.sha256(raw).hexdigest(), doc)
    if not out:
        raise RuntimeError(f"no terms found in {directory}")
    return out


def current_terms(directory: Path = TERMS_DIR) -> Terms:
    terms = load_terms(directory)
    return terms[max(terms)]
