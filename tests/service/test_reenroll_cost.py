"""What one re-enrollment work item costs in storage round trips (the critical path between Face calls).
It was 29 for a user with 3 kept photos before issue 14, 17 on the perf branch, and 19 since the person
factory tracks every person in ``personattempts`` (two writes) for the erasure; bench/roundtrips_reenroll.py
shows the breakdown. The checks that were cut to get there are kept honest by the tests below."""

from __future__ import annotations

import dataclasses

from shared.commands import ReenrollWork, StartReenrollment
from tests.fakes import photo
from tests.service.support import CallCounter, Crash, Stack, hooked, make_stack


def _kept_user(stack: Stack, user: str, colour: int = 30) -> None:
    stack.consent(user)
    token = stack.user(user).kept_token
    for j in range(3):
        stack.photos.keep(f"{token}/{j}.jpg", photo(colour))


def _fanned_out(stack: Stack) -> str:
    run = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    stack.pump(limit=1)  # the fan-out
    return run.run_id


def _terms_move_on(stack: Stack) -> None:
    """New terms are published: consents given to the old version are no longer in force."""
    consent = stack.services.consent
    newer = dataclasses.replace(consent.terms(), version="next-version")
    consent._terms = lambda: newer  # type: ignore[method-assign]


def test_a_work_item_with_three_photos_costs_at_most_19_storage_round_trips() -> None:
    stack = make_stack()
    stack.services.groups.active()
    _kept_user(stack, "cost-user")
    run_id = _fanned_out(stack)
    stack.services.reenrollment.progress(run_id)
    counter = CallCounter()
    with hooked(stack, counter):
        assert stack.services.reenrollment.work(ReenrollWork(run_id, "cost-user")) == "done"
    storage = [c for c in counter.calls if c.startswith(("records.", "photos."))]
    face = [c for c in counter.calls if c.startswith("face.")]
    assert len(face) == 4  # create the person, add three faces
    # run 1, item 1 + 1 (claim); person factory: user 1 + 2, attempt row 2, ledger 2 (after the intent
    # and after the create, which also decide whether consent is in force); ledger 1 (revocation wins);
    # kept photos 1 list + 3 reads; item writes 3 (one per photo) + 1 (finish).
    assert len(storage) <= 19, storage


def test_a_user_whose_consent_is_to_older_terms_gets_no_person() -> None:
    """The work item no longer reads the ledger before the person factory: the factory's own read after
    the intent decides, and consent to superseded terms is not consent in force."""
    stack = make_stack()
    stack.services.groups.active()
    _kept_user(stack, "stale-terms")
    run_id = _fanned_out(stack)
    _terms_move_on(stack)
    counter = CallCounter()
    with hooked(stack, counter):
        assert stack.services.reenrollment.work(ReenrollWork(run_id, "stale-terms")) == "skipped"
    assert not [c for c in counter.calls if c.startswith("face.")], counter.calls
    assert stack.services.repos.attempts.partition("stale-terms") == []
    run = stack.services.repos.runs.get(run_id)
    assert run is not None
    assert stack.face.groups[run.new_group_id].persons == {}


def test_a_redelivery_that_finds_its_person_made_adds_no_face_without_consent_in_force() -> None:
    stack = make_stack()
    stack.services.groups.active()
    _kept_user(stack, "redelivered")
    run_id = _fanned_out(stack)
    # The first delivery dies just before its first add_face: the person exists, no face yet.
    with hooked(stack, CallCounter(0, only=lambda name: name == "face.add_face")):
        try:
            stack.services.reenrollment.work(ReenrollWork(run_id, "redelivered"))
        except Crash:
            pass
    assert [a.person_id for a in stack.services.repos.attempts.partition("redelivered")] != [None]
    _terms_move_on(stack)
    stack.clock.advance(seconds=600)  # past the dead delivery's lease
    counter = CallCounter()
    with hooked(stack, counter):
        assert stack.services.reenrollment.work(ReenrollWork(run_id, "redelivered")) == "skipped"
    assert "face.add_face" not in counter.calls, counter.calls
