"""The records the app keeps, as typed dataclasses (pure: no storage keys, no table names, no JSON).

Each record carries the ETag it was read with (``etag``), so an update is conditional on it: the
repositories (shared/adapters/repositories.py) own where and how each record is stored, and raise
``RecordConflict`` when someone else changed it first. Times are ISO-8601 UTC strings, as stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(kw_only=True)
class Record:
    etag: str = field(default="", compare=False, repr=False)


@dataclass(kw_only=True)
class User(Record):
    """One enrollment per user: the choices of the consent in force and where the user's person is.

    A person is created only after its attempt id is recorded (``person_attempt``, re-enrollment's
    ``new_person_attempt``): purge recognises a person in flight by that id as its ``userData``.
    """

    user_key: str
    store_photos: bool = False
    hr_key: str | None = None
    kept_token: str | None = None
    created_at: str | None = None
    group_id: str | None = None
    person_id: str | None = None
    person_attempt: str | None = None
    abandoned_attempts: list[str] = field(default_factory=list)
    face_added_at: str | None = None
    last_error: str | None = None
    reenroll_required: bool = False
    # during and after a re-enrollment
    new_group_id: str | None = None
    new_person_id: str | None = None
    new_person_attempt: str | None = None
    previous_group_id: str | None = None
    previous_person_id: str | None = None
    # a self-service replacement of the photos (POST /api/enrollment/uploads {"replace": true})
    replace_session: str | None = None
    replace_started_at: str | None = None

    def persons(self) -> list[tuple[str, str]]:
        """Every (group, person) the record names: the erasure deletes each."""
        pairs = [(self.group_id, self.person_id), (self.new_group_id, self.new_person_id),
                 (self.previous_group_id, self.previous_person_id)]
        return [(g, p) for g, p in pairs if g and p]


@dataclass(kw_only=True)
class Upload(Record):
    user_key: str
    upload_id: str
    session_id: str = ""
    blob_name: str = ""
    status: str = ""
    created_at: str | None = None
    expires_on: str | None = None
    claimed_at: str | None = None
    claim_id: str | None = None
    persisted_face_id: str | None = None
    codes: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    kept: bool = False
    processed_at: str | None = None


@dataclass(kw_only=True)
class UploadIndex(Record):
    """Finds the user of a blob (``<sessionId>/<uploadId>``) without a scan."""

    upload_id: str
    user_key: str = ""
    session_id: str = ""
    created_at: str | None = None


@dataclass(kw_only=True)
class LedgerEntry(Record):
    """One entry of the append-only consent ledger: a grant (``kind == "consent"``), a decline (``"decline"``,
    a refusal the user chose, recorded so the front end stops asking) or a revocation.

    ``entry_id`` sorts by time (``<ISO time>_<unique>``), so the latest entry decides.
    """

    user_key: str
    entry_id: str
    kind: str = ""
    accepted: bool = False
    at: str = ""
    # grants
    terms_version: str | None = None
    terms_sha256: str | None = None
    store_photos: bool = False
    client: str | None = None
    # revocations (the tombstone)
    request_id: str | None = None
    receipt_id: str | None = None
    reason: str | None = None
    requested_by: str | None = None
    plan: dict[str, int] = field(default_factory=dict)
    # the hash chain (shared/domain/ledger_chain.py): 1-based place in the user's chain, and the
    # SHA-256 of the entry before it (the genesis value for the first)
    seq: int = 0
    prev_sha256: str | None = None


@dataclass(kw_only=True)
class HrIndexEntry(Record):
    """One row per (employee id, user): two accounts may share an employee id, and a termination erases both."""

    employee_id: str
    user_key: str = ""


@dataclass(kw_only=True)
class PersonAttempt(Record):
    """A Face person that may exist: written before ``create_person`` (its id is the person's userData),
    completed with the personId after it, and deleted only after a confirmed delete of the person.

    Enrollment, re-enrollment and retries alike: so every person in every group (active, a re-enrollment
    in progress, a failed run's, a superseded one) is found from its user, and erasure misses none.
    """

    user_key: str
    attempt_id: str
    group_id: str = ""
    person_id: str | None = None
    slot: str = ""
    created_at: str | None = None


@dataclass(kw_only=True)
class PendingErasure(Record):
    """An erasure requested and not yet verified complete: written before the tombstone, deleted after
    the verification. purge_timer re-runs every one it finds (a dead-lettered erasure is repaired)."""

    user_key: str
    request_id: str = ""
    reason: str = ""
    requested_by: str = ""
    requested_at: str | None = None
    plan: dict[str, int] = field(default_factory=dict)


@dataclass(kw_only=True)
class ScheduledMessage(Record):
    """A message scheduled for later that names the user (an HR termination waiting for its effective
    date): written before the message is scheduled, deleted when it is handled or the user is erased,
    so the footprint counts what waits on the bus about the user."""

    user_key: str
    message_id: str
    destination: str = ""
    kind: str = ""
    due_at: str | None = None
    #: What the bus returned when the message was scheduled (MessagePublisherPort.cancel takes it); None
    #: if the process stopped between scheduling and recording it: the message then is not withdrawn.
    cancel_token: str | None = None


@dataclass(kw_only=True)
class Heartbeat(Record):
    """When something last happened that readiness reports on (``name``: e.g. ``blobCreated``). A name and
    a time only: no user, no blob name."""

    name: str
    at: str | None = None


@dataclass(kw_only=True)
class GroupState(Record):
    """The active LargePersonGroup, pinned with its model, and its training state."""

    group_id: str = ""
    recognition_model: str = ""
    created_at: str | None = None
    created: bool = False
    training_status: str | None = None
    training_started_at: str | None = None
    last_succeeded_started_at: str | None = None
    dirty: bool = False


@dataclass(kw_only=True)
class Counter(Record):
    """A count operators read without scanning the audit log (e.g. ``hrTerminationsUnknown``)."""

    name: str
    count: int = 0


@dataclass(kw_only=True)
class PurgeStats(Record):
    """What the last purge saw of the tables it may scan: how purge_timer picks its cheaper read plan."""

    user_rows: int = 0
    ledger_rows: int = 0
    upload_rows: int = 0
    #: The ledger's watermark at the last anchor written: the next anchor covers the chains written since.
    anchored_through: str = ""


@dataclass(kw_only=True)
class ReenrollLock(Record):
    """The one re-enrollment run allowed at a time."""

    run_id: str = ""
    active: bool = False
    new_group_id: str | None = None


@dataclass(kw_only=True)
class SupersededGroup(Record):
    group_id: str
    superseded_at: str | None = None
    recognition_model: str | None = None
    superseded_by: str | None = None


@dataclass(kw_only=True)
class Override(Record):
    user_key: str
    override_id: str = ""
    admin: str = ""
    reason: str = ""
    granted_at: str | None = None
    expires_at: str | None = None


@dataclass(kw_only=True)
class Receipt(Record):
    receipt_id: str
    request_id: str = ""
    subject: str | None = None
    requested_by: str | None = None
    reason: str | None = None
    completed_at: str | None = None
    erased: list[dict[str, object]] = field(default_factory=list)  # {kind, store, count}
    retained: list[str] = field(default_factory=list)
    verified: bool = False
    checked: list[str] = field(default_factory=list)  # the stores the verification looked at, found empty


@dataclass(kw_only=True)
class ReenrollRun(Record):
    run_id: str
    status: str = ""
    target_model: str = ""
    new_group_id: str = ""
    old_group_id: str | None = None
    started_at: str | None = None
    requested_by: str | None = None
    total: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    fanout_done: bool = False
    group_created: bool = False
    work_ends_at: str | None = None
    training_started_at: str | None = None
    switched_at: str | None = None
    message: str | None = None


@dataclass(kw_only=True)
class WorkItem(Record):
    """One user's share of a re-enrollment run, with the lease of the delivery working on it."""

    run_id: str
    user_key: str
    status: str = "queued"
    photos: int = 0
    scheduled_at: str | None = None
    claimed_by: str | None = None
    claimed_at: str | None = None
    added: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    adding: str | None = None
    finished_at: str | None = None
    reason: str | None = None
    faces: int | None = None


@dataclass(kw_only=True)
class ConsentDue(Record):
    """``consentbyday``: the grant of ``user_key`` made on ``day`` (purge reads the days that are due)."""

    day: str
    user_key: str
    grant_entry_id: str = ""
    at: str | None = None
    #: True once the grant it names is in the ledger and no later grant has begun: purge_timer then acts
    #: on the row alone, with no read of the ledger. False while a grant is being written or a renewal is
    #: superseding it, None on rows from before this field: purge confirms those against the ledger.
    settled: bool | None = None


@dataclass(kw_only=True)
class UploadDue(Record):
    """``uploadsbyminute``: the upload slot created in ``minute`` (purge reads the minutes that are due)."""

    minute: str
    upload_id: str
    user_key: str = ""
    created_at: str | None = None
    session_id: str | None = None
    #: True from the slot's creation until its processing finishes: while it is, the row alone says the
    #: upload is unused or unfinished, and purge_timer acts on it with no read of the upload record. False
    #: once a final status is being written (the row goes right after), None on rows from before this
    #: field: purge confirms those against the record.
    settled: bool | None = None


@dataclass(kw_only=True)
class AuditEntry(Record):
    day: str
    entry_id: str
    action: str = ""
    actor: str = ""
    subject: str | None = None
    at: str = ""
    details: dict[str, object] = field(default_factory=dict)


@dataclass(kw_only=True)
class OutboxEvent(Record):
    """An event for the door systems, written in the step that makes the change (the outbox).

    ``event_id`` is deterministic (the same change always gives the same id), and the row is
    insert-only: a retried step finds it and writes nothing new, so a change is announced once.
    """

    event_id: str
    type: str = ""
    subject: str = ""
    time: str = ""
    data: dict[str, object] = field(default_factory=dict)
    status: str = "pending"  # pending | sent
    sent_at: str | None = None
    attempts: int = 0


@dataclass(kw_only=True)
class OutboxPending(Record):
    """The sender's work list: one row per event not yet sent (deleted once it is)."""

    event_id: str
    time: str = ""


@dataclass(kw_only=True)
class QuotaWindow(Record):
    """How much one user used in one window (a minute of requests, a day of upload sessions).

    ``subject`` is a hash of the user key, not the key itself: these rows exist for every active
    user, and a pseudonym keeps them out of what an erasure must find (each is also gone within a
    day of its window)."""

    subject: str
    window: str
    count: int = 0
