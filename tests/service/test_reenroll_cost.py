"""What one re-enrollment work item costs in storage round trips (the critical path between Face calls).
It was 29 for a user with 3 kept photos; bench/roundtrips_reenroll.py shows the breakdown."""

from __future__ import annotations

from shared.commands import ReenrollWork, StartReenrollment
from tests.fakes import photo
from tests.service.support import CallCounter, hooked, make_stack


def test_a_work_item_with_three_photos_costs_at_most_16_storage_round_trips() -> None:
    stack = make_stack()
    stack.services.groups.active()
    stack.consent("cost-user")
    token = stack.user("cost-user").kept_token
    for j in range(3):
        stack.photos.keep(f"{token}/{j}.jpg", photo(30))
    run = stack.services.reenrollment.start(StartReenrollment("recognition_05", "admin"))
    stack.pump(limit=1)  # the fan-out
    stack.services.reenrollment.progress(run.run_id)
    counter = CallCounter()
    with hooked(stack, counter):
        assert stack.services.reenrollment.work(ReenrollWork(run.run_id, "cost-user")) == "done"
    storage = [c for c in counter.calls if c.startswith(("records.", "photos."))]
    face = [c for c in counter.calls if c.startswith("face.")]
    assert len(face) == 4  # create the person, add three faces
    # run 1, item 1 + 1 (claim), ledger 2, user 1 + 2 (person factory)
    # + 1 (revocation check), kept photos 1 list + 3 reads, item writes 3 (one per photo) + 1 (finish).
    assert len(storage) <= 17, storage
