"""Settings parsing and the pure enrollment rules."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from shared.domain import enrollment as dom
from shared.domain.records import LedgerEntry, Upload, User
from shared.settings import SETTINGS, Settings

pytestmark = pytest.mark.unit


def test_defaults_and_overrides() -> None:
    s = Settings.from_env({})
    assert s.recognition_model == "recognition_04" and s.detection_model == "detection_03"
    assert s.termination_event_types == ("hr.employee.terminated",)
    t = Settings.from_env({"TERMINATION_EVENT_TYPES": "a, b", "QUALITY_MAX_YAW": "20", "FACE_ENDPOINT": "https://x/"})
    assert t.termination_event_types == ("a", "b") and t.quality.max_yaw == 20.0 and t.face_endpoint == "https://x"
    with pytest.raises(ValueError, match="SAS_TTL_MINUTES"):
        Settings.from_env({"SAS_TTL_MINUTES": "60"})


def test_every_setting_is_documented_once() -> None:
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    assert all(s.meaning.strip() for s in SETTINGS)


def ledger(*entries: tuple[str, str, bool, str]) -> list[LedgerEntry]:
    return [LedgerEntry(user_key="u", entry_id=rk, kind=kind, accepted=accepted, terms_version=version, at=rk,
                        store_photos=True) for rk, kind, accepted, version in entries]


def test_current_consent_is_the_latest_grant_to_current_terms() -> None:
    assert dom.current_consent([], current_terms_version="v2") is None
    granted = ledger(("2026-01-01", "consent", True, "v2"))
    assert dom.current_consent(granted, current_terms_version="v2") is not None
    assert dom.current_consent(granted, current_terms_version="v3") is None  # new terms need a new consent
    revoked = ledger(("2026-01-01", "consent", True, "v2"), ("2026-02-01", "revocation", False, "v2"))
    assert dom.current_consent(revoked, current_terms_version="v2") is None
    again = [*revoked, *ledger(("2026-03-01", "consent", True, "v2"))]
    assert dom.current_consent(again, current_terms_version="v2") is not None


def test_overall_status() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    user = User(user_key="u", person_id="p", face_added_at="2026-01-01T00:00:10Z")
    assert dom.overall_status(None, [], has_consent=False, last_trained_through=None) == dom.NONE
    assert dom.overall_status(user, [], has_consent=True, last_trained_through=t0) == dom.PENDING
    later = datetime(2026, 1, 1, 0, 1, tzinfo=timezone.utc)
    assert dom.overall_status(user, [], has_consent=True, last_trained_through=later) == dom.ENROLLED
    rejected = [Upload(user_key="u", upload_id="x", status=dom.REJECTED)]
    assert dom.overall_status(User(user_key="u"), rejected, has_consent=True, last_trained_through=None) == dom.FAILED
    assert dom.overall_status(User(user_key="u", reenroll_required=True), [], has_consent=True,
                              last_trained_through=None) == dom.REENROLL_REQUIRED


def test_person_label_carries_no_personal_data() -> None:
    label = dom.person_label("attempt-1")
    assert label.startswith("p-") and "attempt" not in label and len(label) == 18
