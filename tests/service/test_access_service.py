"""Issue 15 on the fakes: the access bundle, one's own photos and receipts, the admin export, declines,
consent renewal, and the retention policy as the purge's source."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared.adapters.retention_policy import load_policy
from shared.commands import DeclineConsent, ExportUser, GrantConsent, ReadOwn
from shared.errors import Conflict, Forbidden, NotFound
from tests.service.support import Stack, make_stack, new_user, principal


@pytest.fixture
def stack() -> Stack:
    return make_stack()


def _identifiers(stack: Stack, user: str) -> set[str]:
    """What must never leave the app: personIds, persisted face ids, the kept-photo token."""
    out: set[str] = set()
    for group in stack.face.groups.values():
        for person_id, person in group.persons.items():
            out.add(person_id)
            out.update(person.faces)
    record = stack.user(user)
    if record is not None and record.kept_token:
        out.add(record.kept_token)
    return out


def test_the_bundle_holds_everything_and_no_identifier(stack: Stack) -> None:
    user = new_user()
    assert stack.enroll(user, 17) == "accepted"
    secrets = _identifiers(stack, user)
    bundle = stack.services.access.mine(user)
    text = json.dumps(bundle)
    assert secrets and not [s for s in secrets if s in text], "a personId, face id or kept token leaked"
    terms = stack.services.consent.terms()
    (entry,) = bundle["consentLedger"]
    assert entry["kind"] == "consent" and entry["termsVersion"] == terms.version and entry["termsSha256"] == terms.sha256
    assert bundle["enrollment"]["status"] == "enrolled"
    assert [h["event"] for h in bundle["enrollment"]["history"]][:1] == ["consented"]
    (p,) = bundle["photos"]
    assert p["status"] == "accepted" and p["kept"] is True
    assert bundle["keptPhotos"]["count"] == 1 and bundle["keptPhotos"]["photos"][0]["keptAt"] == p["processedAt"]
    actions = [a["action"] for a in bundle["audit"]]
    assert "consent.granted" in actions and "person.created" in actions
    assert bundle["held"]["faceTemplates"]["count"] == 1
    assert bundle["retentionPolicy"]["href"] == "/api/privacy/policy"


def test_another_users_audit_rows_are_not_in_the_bundle(stack: Stack) -> None:
    alice, bob = new_user(), new_user()
    stack.enroll(alice, 17)
    stack.enroll(bob, 18)
    subjects = {a["about"] for a in stack.services.access.mine(alice)["audit"]}
    assert subjects <= {"you", None}
    bob_hash = stack.services.audit.subject_of(bob)
    assert bob_hash not in json.dumps(stack.services.access.mine(alice))


def test_a_photo_link_only_for_ones_own_kept_photo(stack: Stack) -> None:
    alice, bob = new_user(), new_user()
    stack.enroll(alice, 17)
    stack.enroll(bob, 18)
    photo_id = stack.services.access.mine(alice)["keptPhotos"]["photos"][0]["photoId"]
    link = stack.services.access.photo_link(ReadOwn(principal(alice), photo_id))
    assert "sp=r" in link.url and link.photo_id == photo_id
    ttl = stack.services.settings.sas_ttl_minutes
    assert link.expires_on <= (stack.clock.now + timedelta(minutes=ttl, seconds=1)).isoformat().replace("+00:00", "Z")
    with pytest.raises(NotFound):  # bob asks for alice's photo: indistinguishable from none
        stack.services.access.photo_link(ReadOwn(principal(bob), photo_id))
    with pytest.raises(NotFound):
        stack.services.access.photo_link(ReadOwn(principal(alice), "no-such-photo"))


def test_no_link_once_store_photos_is_off(stack: Stack) -> None:
    user = new_user()
    stack.enroll(user, 17)
    photo_id = stack.services.access.mine(user)["keptPhotos"]["photos"][0]["photoId"]
    stack.consent(user, store_photos=False)  # deletes the kept photos
    with pytest.raises(NotFound):
        stack.services.access.photo_link(ReadOwn(principal(user), photo_id))


def test_receipts_outlive_the_erasure_and_are_only_ones_own(stack: Stack) -> None:
    alice, bob = new_user(), new_user()
    stack.enroll(alice, 17)
    stack.enroll(bob, 18)
    stack.revoke(alice)
    stack.pump()
    status = stack.services.enrollment.status(alice)
    assert status.status == "revoked" and status.receipt_id
    receipt = stack.services.access.receipt(ReadOwn(principal(alice), status.receipt_id))
    assert receipt.verified and receipt.subject == alice
    with pytest.raises(NotFound):
        stack.services.access.receipt(ReadOwn(principal(bob), status.receipt_id))
    bundle = stack.services.access.mine(alice)
    assert [r["receiptId"] for r in bundle["receipts"]] == [status.receipt_id]
    assert [e["kind"] for e in bundle["consentLedger"]] == ["consent", "revocation"]
    assert bundle["consentLedger"][1]["requestedBy"] == "you"
    assert bundle["photos"] == [] and bundle["keptPhotos"]["count"] == 0
    assert bundle["held"]["faceTemplates"]["count"] == 0 and not any(bundle["held"]["erasable"].values())


def test_admin_export_is_audited_and_admin_only(stack: Stack) -> None:
    user = new_user()
    stack.enroll(user, 17)
    with pytest.raises(Forbidden):
        stack.services.access.export(ExportUser(principal("not-admin"), user))
    body = stack.services.access.export(ExportUser(principal("admin-1", admin=True), user))
    assert body["userKey"] == user and body["enrollment"]["status"] == "enrolled"
    exported = [a for a in body["audit"] if a["action"] == "access.exported"]
    assert exported and exported[0]["actor"] == "administrator"  # the admin's key is not disclosed


def test_a_decline_is_recorded_and_status_says_declined(stack: Stack) -> None:
    user = new_user()
    terms = stack.services.consent.terms()
    declined = stack.services.consent.decline(DeclineConsent(principal(user), terms.version, "test"))
    again = stack.services.consent.decline(DeclineConsent(principal(user), terms.version, "test"))
    assert declined == again  # a retry records one decline
    (entry,) = stack.services.consent.ledger(user)
    assert entry.kind == "decline" and entry.terms_sha256 == terms.sha256 and not entry.accepted
    assert stack.status(user) == "declined"
    assert stack.user(user) is None  # nothing else is kept about a decline
    stack.consent(user)  # changing one's mind is as easy
    assert stack.services.consent.current(user) is not None


def test_declining_never_withdraws_a_consent_in_force(stack: Stack) -> None:
    user = new_user()
    stack.enroll(user, 17)
    terms = stack.services.consent.terms()
    with pytest.raises(Conflict) as refused:
        stack.services.consent.decline(DeclineConsent(principal(user), terms.version, "test"))
    assert refused.value.code == "ConsentInForce"
    assert stack.status(user) == "enrolled"


def test_renewal_is_due_before_the_purge_erases(stack: Stack) -> None:
    user = new_user()
    stack.enroll(user, 17)
    policy = load_policy()
    status = stack.services.enrollment.status(user)
    assert status.consent and status.consent.expires_at and status.renewal_due is None
    stack.clock.advance(days=policy.consent_days - policy.renewal_notice_days - 1)
    assert stack.services.enrollment.status(user).renewal_due is None
    stack.clock.advance(days=2)
    due = stack.services.enrollment.status(user)
    assert due.renewal_due == status.consent.expires_at
    assert stack.purge()["expiredConsents"] == 0  # asked before, not erased yet
    # Renewing moves the date and clears renewalDue.
    stack.services.consent.grant(GrantConsent(principal(user), stack.services.consent.terms().version, True, "t"))
    renewed = stack.services.enrollment.status(user)
    assert renewed.renewal_due is None and renewed.status == "enrolled"


def test_the_purge_erases_at_the_published_period(stack: Stack) -> None:
    user = new_user()
    stack.enroll(user, 17)
    days = load_policy().consent_days
    stack.clock.advance(days=days - 1)
    assert stack.purge()["expiredConsents"] == 0
    stack.clock.advance(days=1, minutes=1)
    assert stack.purge()["expiredConsents"] == 1
    stack.pump()
    assert stack.status(user) == "revoked"


def test_a_decline_after_a_withdrawal_still_stops_a_person_in_flight(stack: Stack) -> None:
    """The person factory checks the ledger after recording its intent: a decline written after the
    revocation is a refusal too, or an enroll in flight would create a person after the erasure."""
    user = new_user()
    stack.enroll(user, 17)
    stack.revoke(user)
    stack.pump()
    stack.services.consent.decline(DeclineConsent(principal(user), stack.services.consent.terms().version, "test"))
    assert stack.status(user) == "declined"
    factory = stack.services.enrollment._persons  # the guard itself is what is tested
    assert factory._revoked(user)


def test_the_bundle_shows_the_ledger_chain_and_what_the_door_systems_were_told(stack: Stack) -> None:
    """After the merge of the ledger: each ledger entry carries its chain link, and the door-system events
    about the user (kept in the outbox with the user key, after the erasure too) are part of what is held."""
    from shared.commands import Revoke
    from shared.domain import ledger_chain as lc
    from shared.services import events as ev

    alice, bob = new_user(), new_user()
    stack.enroll(alice, 17)
    stack.enroll(bob, 18)
    stack.services.events.send()
    receipt = stack.services.revocation.erase(Revoke(alice, "req-a", reason="test"))
    bundle = stack.services.access.mine(alice)
    ledger = bundle["consentLedger"]
    assert [(e["kind"], e["seq"]) for e in ledger] == [("consent", 1), ("revocation", 2)]
    assert ledger[0]["prevSha256"] == lc.GENESIS and len(ledger[1]["prevSha256"]) == 64
    events = bundle["doorEvents"]
    assert [(e["type"], e["status"]) for e in events] == [(ev.USER_ENROLLED, "sent"), (ev.USER_ERASED, "pending")]
    assert events[1]["data"] == {"receiptId": receipt.receipt_id, "reason": "test"}
    assert bob not in json.dumps(bundle)  # another user's events are not in it
    assert not [s for s in _identifiers(stack, bob) if s in json.dumps(bundle)]
