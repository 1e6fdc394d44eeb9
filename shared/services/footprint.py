"""The footprint: what the app holds about one user, and where. One function, three readers:

- the erasure's plan (what to delete) and its verification (recomputed after erasing: empty, or retried);
- purge_timer's repair of erasures that did not complete (a revoked user whose footprint is not empty);
- admins (``GET /api/admin/users/{userKey}/footprint``: counts per store, never an identifier) and, later,
  the data-subject export.

Stores covered (docs/erasure.md lists how each is erased and verified):

- Face persons in every group that ever existed, found from the user's ``personattempts`` rows (every
  person is tracked from before its creation until a confirmed delete) and from the user record's
  group/person pairs; each is confirmed against Face (``get_person``, or for an attempt whose personId was
  never recorded, a listing of its group by userData);
- kept photos (``<keptToken>/``) and uploaded blobs of the user's upload records;
- table rows keyed by or naming the user: users, uploads, uploadindex, uploadsbyminute, consentbyday,
  hrindex, overrides, personattempts, reenrollitems, erasurespending;
- retained by design (not erased, counted apart): the consent ledger, the receipts, and audit rows, which
  name users by a keyed hash (shared/services/audit.py), so they are found by that hash.

Scheduled messages: a message that names the user and waits on the bus (an HR termination scheduled for
its effective date) is recorded in ``scheduledmessages`` (partitioned by user key) before it is scheduled,
and that row is deleted when the message is handled or the user is erased. The footprint counts those
rows (``scheduledMessages``); the bus itself cannot be read through the ports. The erasure withdraws each
message (``cancel`` with the token the bus returned) and deletes the rows. A message it could not withdraw
(its token was never recorded, or the stand-in bus re-queued it) is delivered on its date and is a no-op:
it erases an empty footprint (tests/service/test_erasure_gaps.py). Re-enrollment work messages also name a user; each
has a ``reenrollitems`` row (counted as ``reenrollItems``) and does nothing once that row is gone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.adapters.repositories import Repositories
from shared.commands import ReadFootprint
from shared.domain.enrollment import latest_entry, parse_iso
from shared.domain.erasure import day_key, minute_key
from shared.domain.records import PersonAttempt, ScheduledMessage, Upload, User
from shared.errors import Forbidden, LargePersonGroupNotFound, PersonNotFound
from shared.ports import FacePort, PhotoStorePort
from shared.results import FootprintView, Replacement
from shared.services.audit import AuditLog
from shared.services.quotas import subject_of as quota_subject

PERSON_PAGE = 1000

#: The stores an erasure must leave empty (the keys of ``Footprint.counts``), in the receipt's order.
ERASABLE = ("facePersons", "keptPhotos", "uploads", "users", "uploadRecords", "uploadIndex", "uploadsByMinute",
            "consentByDay", "hrIndex", "overrides", "personAttempts", "reenrollItems", "scheduledMessages")
#: Kept on purpose, counted apart. Quota windows are keyed by a pseudonym, expire within a day and are
#: written by any request the user makes (a revoked user polling status too): the erasure deletes those
#: it finds, but they are not part of what it verifies.
RETAINED = ("ledgerEntries", "receipts", "auditRows", "pendingErasures", "quotaWindows")


@dataclass(frozen=True)
class HeldPerson:
    """A Face person that exists (or may: an attempt whose personId is unknown and whose group is gone is not held)."""

    group_id: str
    person_id: str
    attempt_id: str | None = None


@dataclass
class Footprint:
    user_key: str
    user: User | None = None
    persons: list[HeldPerson] = field(default_factory=list)
    attempts: list[PersonAttempt] = field(default_factory=list)
    kept_photos: list[str] = field(default_factory=list)
    upload_blobs: list[str] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    upload_index: list[str] = field(default_factory=list)
    uploads_by_minute: list[tuple[str, str]] = field(default_factory=list)
    consent_by_day: list[str] = field(default_factory=list)
    hr_index: list[str] = field(default_factory=list)
    override: bool = False
    reenroll_items: list[str] = field(default_factory=list)  # run ids
    scheduled: list[str] = field(default_factory=list)  # message ids of scheduled messages naming the user
    scheduled_rows: list[ScheduledMessage] = field(default_factory=list)  # the same, as recorded
    quota_windows: list[tuple[str, str]] = field(default_factory=list)  # (pseudonym, window)
    ledger_entries: int = 0
    receipts: int = 0
    audit_rows: int | None = None  # counted only when asked (it reads the audit table)
    pending_erasure: bool = False

    def counts(self) -> dict[str, int]:
        return {"facePersons": len(self.persons), "keptPhotos": len(self.kept_photos),
                "uploads": len(self.upload_blobs), "users": 1 if self.user else 0,
                "uploadRecords": len(self.uploads), "uploadIndex": len(self.upload_index),
                "uploadsByMinute": len(self.uploads_by_minute), "consentByDay": len(self.consent_by_day),
                "hrIndex": len(self.hr_index), "overrides": int(self.override),
                "personAttempts": len(self.attempts), "reenrollItems": len(self.reenroll_items),
                "scheduledMessages": len(self.scheduled)}

    def retained(self) -> dict[str, int]:
        out = {"ledgerEntries": self.ledger_entries, "receipts": self.receipts,
               "pendingErasures": int(self.pending_erasure), "quotaWindows": len(self.quota_windows)}
        if self.audit_rows is not None:
            out["auditRows"] = self.audit_rows
        return out

    def is_empty(self) -> bool:
        """Nothing erasable is left (the ledger, receipts and hashed audit rows are retained by design)."""
        return not any(self.counts().values())

    def left(self) -> list[str]:
        return [k for k, v in self.counts().items() if v]


class FootprintService:
    def __init__(self, *, repos: Repositories, photos: PhotoStorePort, face: FacePort, audit: AuditLog,
                 clock: Callable[[], datetime], audit_retention_days: int) -> None:
        self._repos = repos
        self._photos = photos
        self._face = face
        self._audit = audit
        self._clock = clock
        self._audit_days = audit_retention_days

    def of(self, user_key: str, *, hr_keys: tuple[str, ...] = (), with_audit: bool = False) -> Footprint:
        """Everything held about ``user_key``. ``hr_keys``: employee ids to look up besides the record's."""
        r = self._repos
        fp = Footprint(user_key=user_key)
        fp.user = user = r.users.get(user_key)
        # Face persons: tracked attempts, plus what the record names (rows written before attempts existed).
        fp.attempts = r.attempts.partition(user_key)
        candidates: dict[tuple[str, str], str | None] = {}
        for attempt in fp.attempts:
            if attempt.person_id:
                candidates[(attempt.group_id, attempt.person_id)] = attempt.attempt_id
            else:
                found = self._find_by_attempt(attempt)
                if found is not None:
                    candidates[(attempt.group_id, found)] = attempt.attempt_id
        for pair in user.persons() if user else ():
            candidates.setdefault(pair, None)
        for (group_id, person_id), attempt_id in candidates.items():
            try:
                self._face.get_person(group_id, person_id)
            except (PersonNotFound, LargePersonGroupNotFound):
                continue
            fp.persons.append(HeldPerson(group_id, person_id, attempt_id))
        # Photos.
        if user and user.kept_token:
            fp.kept_photos = sorted(self._photos.list_kept(f"{user.kept_token}/"))
        fp.uploads = r.uploads.partition(user_key)
        names = {u.blob_name for u in fp.uploads if u.blob_name}
        for session in sorted({n.split("/", 1)[0] for n in names}):
            fp.upload_blobs.extend(n for n in self._photos.list_uploads(f"{session}/") if n in names)
        # Rows keyed by or naming the user.
        for upload in fp.uploads:
            index = r.upload_index.get(upload.upload_id)
            if index is not None and index.user_key == user_key:
                fp.upload_index.append(upload.upload_id)
            created = parse_iso(upload.created_at)
            if created is not None and r.uploads_due.get(minute_key(created), upload.upload_id) is not None:
                fp.uploads_by_minute.append((minute_key(created), upload.upload_id))
        ledger = r.ledger.partition(user_key)
        fp.ledger_entries = len(ledger)
        for entry in ledger:
            at = parse_iso(entry.at)
            if entry.kind == "consent" and at is not None:
                day = day_key(at)
                if day not in fp.consent_by_day and r.consent_due.get(day, user_key) is not None:
                    fp.consent_by_day.append(day)
        employee_ids = {*hr_keys, *([user.hr_key] if user and user.hr_key else [])}
        for employee_id in sorted(employee_ids):
            if any(row.user_key == user_key for row in hr_rows(r, employee_id)):
                fp.hr_index.append(employee_id)
        fp.override = r.overrides.get(user_key) is not None
        pseudonym = quota_subject(user_key)  # quota rows are keyed by a pseudonym of the user
        fp.quota_windows = [(pseudonym, q.window) for q in r.quotas.partition(pseudonym)]
        for run in r.runs.range(only=[]):
            if r.items.get(run.run_id, user_key) is not None:
                fp.reenroll_items.append(run.run_id)
        fp.scheduled_rows = r.scheduled.partition(user_key)
        fp.scheduled = [m.message_id for m in fp.scheduled_rows]
        fp.receipts = sum(1 for e in ledger if e.receipt_id and r.receipts.get(e.receipt_id) is not None)
        fp.pending_erasure = r.pending_erasures.get(rk=user_key) is not None
        if with_audit:
            fp.audit_rows = self._audit_rows(user_key)
        return fp

    def view(self, command: ReadFootprint) -> FootprintView:
        """The admin's view: counts per store (never a personId, blob name or other identifier)."""
        if not command.actor.is_admin:
            raise Forbidden("Only administrators can read a user's footprint.")
        fp = self.of(command.user_key, with_audit=True)
        latest = latest_entry(self._repos.ledger.partition(command.user_key))
        consent = "none" if latest is None else {"revocation": "revoked", "decline": "declined"}.get(latest.kind, "granted")
        self._audit.write("footprint.read", actor=command.actor.user_key, subject=command.user_key)
        replacement = (Replacement(fp.user.replace_session, fp.user.replace_started_at)
                       if fp.user and fp.user.replace_session else None)
        return FootprintView(command.user_key, consent, fp.counts(), fp.retained(), replacement)

    def person_of(self, attempt: PersonAttempt) -> str | None:
        """The person ``attempt`` created, if it exists (its recorded id, else a listing of its group)."""
        if attempt.person_id:
            try:
                self._face.get_person(attempt.group_id, attempt.person_id)
                return attempt.person_id
            except (PersonNotFound, LargePersonGroupNotFound):
                return None
        return self._find_by_attempt(attempt)

    def _find_by_attempt(self, attempt: PersonAttempt) -> str | None:
        """A person created for ``attempt`` whose personId was never recorded (a crash right after the create)."""
        start: str | None = None
        try:
            while True:
                page = self._face.list_persons(attempt.group_id, start=start, top=PERSON_PAGE)
                for person in page:
                    if person.user_data == attempt.attempt_id:
                        return person.person_id
                if len(page) < PERSON_PAGE:
                    return None
                start = page[-1].person_id
        except LargePersonGroupNotFound:
            return None

    def _audit_rows(self, user_key: str) -> int:
        """Audit rows that name the user (by the keyed hash) within the audit retention."""
        subject = self._audit.subject_of(user_key)
        since = day_key(self._clock() - timedelta(days=self._audit_days))
        return sum(1 for e in self._repos.audit.range(pk_from=since, only=["actor", "subject"])
                   if subject in (e.subject, e.actor))


def footprint_stores(prefix: str) -> list[str]:
    """What the verification reads (the receipt's ``checked``): every erasable store, by name."""
    tables = ("users", "uploads", "uploadindex", "uploadsbyminute", "consentbyday", "hrindex", "overrides",
              "personattempts", "reenrollitems", "quotas", "scheduledmessages")
    return ["Azure Face: every tracked person, every group", "blob kept photos", "blob uploads",
            *(f"table {prefix}{t}" for t in tables)]


def hr_rows(repos: Repositories, employee_id: str) -> list[HrRow]:
    """The accounts an employee id names (rows of the older layout, keyed ``u``, carry the user in a column)."""
    out = []
    for row in repos.hr_index.partition(employee_id):
        user_key = row.user_key
        if user_key == "u":
            found = repos.store.get(repos.hr_index.table, employee_id, "u")
            user_key = str(found[0].get("userKey") or "") if found else ""
        out.append(HrRow(employee_id, user_key, row.user_key))
    return out


@dataclass(frozen=True)
class HrRow:
    employee_id: str
    user_key: str
    row_key: str
