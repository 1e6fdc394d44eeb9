"""The published retention policy (shared/contracts/retention-policy.json), read once.

One file is both what users and auditors read (``GET /api/privacy/policy``) and what the purge enforces:
purge_timer takes each period from here (an app setting may only shorten it, see ``Settings.from_env``), so
what is published is what is enforced. tests/unit/test_retention_policy.py fails if the two differ.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

POLICY_PATH = Path(__file__).resolve().parents[1] / "contracts" / "retention-policy.json"
POLICY_ROUTE = "/api/privacy/policy"


@dataclass(frozen=True)
class RetentionPolicy:
    version: str
    sha256: str
    document: Mapping[str, Any]

    def kind(self, name: str) -> Mapping[str, Any]:
        for entry in self.document["kinds"]:
            if entry["kind"] == name:
                return dict(entry)
        raise KeyError(name)

    @property
    def consent_days(self) -> int:
        """Face templates (and what goes with them): at most this many days after the latest consent."""
        return int(self.kind("faceTemplate")["maxDays"])

    @property
    def upload_minutes(self) -> int:
        return int(self.kind("uploads")["maxMinutes"])

    @property
    def audit_days(self) -> int:
        return int(self.kind("auditLog")["maxDays"])

    @property
    def ledger_anchor_days(self) -> int:
        """The ledger anchors' immutability period (the WORM container's locked retention, set in Bicep)."""
        return int(self.kind("ledgerAnchors")["proofPeriodDays"])

    @property
    def renewal_notice_days(self) -> int:
        return int(self.document["renewal"]["noticeDays"])

    def limits(self) -> dict[str, int]:
        """The app setting that may shorten each enforced period, and the longest value it may take."""
        return {"CONSENT_RETENTION_DAYS": self.consent_days, "UPLOAD_MAX_AGE_MINUTES": self.upload_minutes,
                "AUDIT_RETENTION_DAYS": self.audit_days}

    def public(self) -> dict[str, Any]:
        return {**self.document, "sha256": self.sha256}


@lru_cache(maxsize=2)
def load_policy(path: Path = POLICY_PATH) -> RetentionPolicy:
    raw = path.read_bytes()
    doc = json.loads(raw)
    return RetentionPolicy(str(doc["version"]), hashlib.sha256(raw).hexdigest(), doc)


def retention_policy() -> RetentionPolicy:
    return load_policy()
