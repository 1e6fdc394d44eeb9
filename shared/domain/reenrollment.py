"""The re-enrollment run's state machine and the work item's lease (pure: time is an argument).

A run moves forward only::

    fanningOut -> working -> training -> verifying -> switched
         \\            \\          \\            \\-> failed
          \\-----------\\----------\\-> failed

``ReenrollmentService`` asks ``transition`` before it saves a new status, so a redelivered or
reordered control message can never move a run backwards or out of a final state.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from shared.domain.enrollment import parse_iso
from shared.domain.records import WorkItem

FANNING_OUT, WORKING, TRAINING, VERIFYING, SWITCHED, FAILED = (
    "fanningOut", "working", "training", "verifying", "switched", "failed")
ACTIVE_STATES = frozenset({FANNING_OUT, WORKING, TRAINING, VERIFYING})
FINAL_STATES = frozenset({SWITCHED, FAILED})

_NEXT: dict[str, frozenset[str]] = {
    FANNING_OUT: frozenset({WORKING, FAILED}),
    WORKING: frozenset({TRAINING, FAILED}),
    TRAINING: frozenset({VERIFYING, FAILED}),
    VERIFYING: frozenset({SWITCHED, FAILED}),
    SWITCHED: frozenset(),
    FAILED: frozenset(),
}

# Work items.
QUEUED, DONE, ITEM_FAILED, SKIPPED = "queued", "done", "failed", "skipped"
FINAL_ITEM_STATES = frozenset({DONE, ITEM_FAILED, SKIPPED})

#: A work item is worked on by one delivery at a time: the holder refreshes this lease at every step.
#: Another delivery meanwhile (a redelivery after a lost lock, a resume) defers itself to the lease's
#: end instead of racing the holder (two racing deliveries could add the same face twice).
ITEM_LEASE = timedelta(seconds=20)


class InvalidTransition(ValueError):
    pass


def can_move(current: str, target: str) -> bool:
    return current == target or target in _NEXT.get(current, frozenset())


def transition(current: str, target: str) -> str:
    """``target`` if a run in ``current`` may move there (staying put is allowed), else InvalidTransition."""
    if not can_move(current, target):
        raise InvalidTransition(f"a run cannot go from {current} to {target}")
    return target


def lease_holder_until(item: WorkItem, now: datetime) -> datetime | None:
    """When another delivery's lease on ``item`` ends, or None when the item is free to claim."""
    held = parse_iso(item.claimed_at)
    if item.claimed_by and held is not None and now - held < ITEM_LEASE:
        return held + ITEM_LEASE + timedelta(seconds=1)
    return None


def photo_tag(kept_name: str) -> str:
    """The userData a re-enrolled face carries: which kept photo it came from (no personal data)."""
    return hashlib.sha256(kept_name.encode()).hexdigest()[:32]
