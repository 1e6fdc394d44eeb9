"""The published retention policy and the purge come from one file (issue 15): every period the purge
enforces is the policy's (or shorter), a setting above it is refused, and the defaults everywhere a
setting is written down (SETTINGS, the README table, Bicep) equal the policy."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from shared.adapters.retention_policy import POLICY_PATH, load_policy
from shared.settings import SETTINGS, Settings

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {"faceTemplate", "keptPhotos", "uploads", "consentLedger", "receipts", "auditLog", "ledgerAnchors",
            "doorEvents"}


def test_the_policy_states_what_why_how_long_and_what_ends_it_for_every_kind() -> None:
    doc = json.loads(POLICY_PATH.read_text(encoding="utf-8"))
    kinds = {k["kind"]: k for k in doc["kinds"]}
    assert set(kinds) >= REQUIRED
    for kind in kinds.values():
        assert kind["what"] and kind["why"] and kind["keptWhile"] and kind["endsWhen"], kind["kind"]
        assert any(f in kind for f in ("maxDays", "maxMinutes", "proofPeriodDays")), kind["kind"]
    assert kinds["keptPhotos"]["keptWhile"].startswith("storePhotos is on")
    assert doc["renewal"]["noticeDays"] > 0


def test_settings_defaults_are_the_policy() -> None:
    policy, defaults = load_policy(), Settings()
    assert defaults.consent_retention_days == policy.consent_days
    assert defaults.upload_max_age_minutes == policy.upload_minutes
    assert defaults.audit_retention_days == policy.audit_days
    spec = {s.name: s.default for s in SETTINGS}
    for name, limit in policy.limits().items():
        assert spec[name] == str(limit), name


@pytest.mark.parametrize("name", ["CONSENT_RETENTION_DAYS", "UPLOAD_MAX_AGE_MINUTES", "AUDIT_RETENTION_DAYS"])
def test_a_setting_longer_than_published_is_refused(name: str) -> None:
    limit = load_policy().limits()[name]
    assert Settings.from_env({name: str(limit)}).consent_retention_days > 0  # equal is fine
    Settings.from_env({name: str(max(1, limit // 2))})  # shorter is stricter than published: fine
    with pytest.raises(ValueError, match="retention policy"):
        Settings.from_env({name: str(limit + 1)})


def test_the_purge_enforces_the_policy_even_with_a_longer_setting_built_in_code() -> None:
    from shared.bootstrap import build
    from tests.fakes import FakeFace, FakePhotos, FakePublisher, FakeRecords

    policy = load_policy()
    longer = Settings(consent_retention_days=policy.consent_days * 2, upload_max_age_minutes=policy.upload_minutes * 2,
                      audit_retention_days=policy.audit_days * 2)
    services = build(longer, clock=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc), face=FakeFace(),
                     records=FakeRecords(), photos=FakePhotos(), publisher=FakePublisher())
    assert services.purge.periods() == {"consentDays": policy.consent_days, "uploadMinutes": policy.upload_minutes,
                                        "auditDays": policy.audit_days}


def test_bicep_defaults_are_the_policy() -> None:
    policy = load_policy()
    for path in (ROOT / "infra" / "main.bicep", ROOT / "infra" / "app" / "api.bicep"):
        text = path.read_text(encoding="utf-8")
        for param, limit in (("consentRetentionDays", policy.consent_days), ("uploadMaxAgeMinutes", policy.upload_minutes),
                             ("auditRetentionDays", policy.audit_days)):
            found = re.search(rf"param {param} string = '(\d+)'", text)
            if found:
                assert int(found.group(1)) <= limit, f"{path.name}: {param} is longer than the published policy"


def test_a_changed_policy_changes_what_the_purge_enforces(tmp_path: Path) -> None:
    """The purge reads the file: a policy with other numbers gives other periods (no copy of them elsewhere)."""
    from shared.bootstrap import build
    from shared.services.purge import PurgeService
    from tests.fakes import FakeFace, FakePhotos, FakePublisher, FakeRecords

    doc = json.loads(POLICY_PATH.read_text(encoding="utf-8"))
    for kind in doc["kinds"]:
        if kind["kind"] == "faceTemplate":
            kind["maxDays"] = 90
    changed = tmp_path / "policy.json"
    changed.write_text(json.dumps(doc), encoding="utf-8")
    s = build(Settings(), face=FakeFace(), records=FakeRecords(), photos=FakePhotos(), publisher=FakePublisher())
    purge = PurgeService(repos=s.repos, photos=s.photos, face=s.face, revocation=s.revocation, audit=s.audit,
                         groups=s.groups, training=s.training, ledger=s.ledger, settings=s.settings,
                         clock=lambda: datetime.now(timezone.utc),
                         policy=load_policy(changed))
    assert purge.periods()["consentDays"] == 90


def test_the_ledger_anchors_immutability_in_bicep_is_the_published_period() -> None:
    """The anchors' WORM retention is set in Bicep (a locked container policy, not an app setting): its default
    is the policy's, and it outlasts the consent ledger's proof period (every entry can be checked)."""
    policy = load_policy()
    assert policy.ledger_anchor_days >= int(policy.kind("consentLedger")["proofPeriodDays"])
    for path in (ROOT / "infra" / "main.bicep", ROOT / "infra" / "app" / "storage.bicep"):
        found = re.search(r"param ledgerAnchorRetentionDays int = (\d+)", path.read_text(encoding="utf-8"))
        assert found, f"{path.name}: no ledgerAnchorRetentionDays default"
        assert int(found.group(1)) == policy.ledger_anchor_days, path.name
