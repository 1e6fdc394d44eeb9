"""Consent: the append-only ledger, and the choices that follow from it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from shared.adapters.repositories import Repositories
from shared.adapters.retention_policy import POLICY_ROUTE, RetentionPolicy, load_policy
from shared.adapters.terms_files import Terms, current_terms
from shared.commands import DeclineConsent, GrantConsent
from shared.domain.enrollment import (
    ConsentState,
    current_consent,
    iso,
    latest_entry,
    latest_grant,
    ledger_entry_id,
    parse_iso,
)
from shared.domain.erasure import day_key
from shared.domain.principal import Principal
from shared.domain.records import ConsentDue, HrIndexEntry, LedgerEntry, User
from shared.errors import Conflict, Invalid, RecordConflict, RecordExists
from shared.ports import PhotoStorePort
from shared.results import ConsentDeclined, ConsentGranted
from shared.services.audit import AuditLog
from shared.services.footprint import hr_rows
from shared.services.ledger import ConsentLedger

log = logging.getLogger("shared.consent")


class ConsentService:
    def __init__(self, repos: Repositories, photos: PhotoStorePort, audit: AuditLog, *, chain: ConsentLedger,
                 clock: Callable[[], datetime], terms: Callable[[], Terms] = current_terms,
                 require_employee_id: bool = False, policy: Callable[[], RetentionPolicy] = load_policy) -> None:
        self._policy = policy
        self._require_employee_id = require_employee_id
        self._repos = repos
        self.chain = chain
        self._photos = photos
        self._audit = audit
        self._clock = clock
        self._terms = terms

    def terms(self) -> Terms:
        return self._terms()

    def terms_view(self) -> dict[str, object]:
        """The current terms, with a link to the retention policy they rely on (BIPA 15(a))."""
        policy = self._policy()
        return {**self._terms().public(),
                "retentionPolicy": {"href": POLICY_ROUTE, "version": policy.version, "sha256": policy.sha256}}

    def policy(self) -> RetentionPolicy:
        return self._policy()

    def ledger(self, user_key: str) -> list[LedgerEntry]:
        return self._repos.ledger.partition(user_key)

    def current(self, user_key: str) -> ConsentState | None:
        return current_consent(self.ledger(user_key), current_terms_version=self._terms().version)

    def in_force(self, ledger: list[LedgerEntry]) -> bool:
        """Whether a ledger the caller has read holds a consent in force (to the current terms)."""
        return current_consent(ledger, current_terms_version=self._terms().version) is not None

    def grant(self, command: GrantConsent) -> ConsentGranted:
        terms = self._terms()
        principal, store = command.principal, command.store_photos
        if command.terms_version != terms.version:
            raise Conflict(f"These terms are out of date; the current version is {terms.version}. "
                           "Read the current terms and consent again.", code="StaleTerms")
        if not principal.hr_key and self._require_employee_id:
            raise Invalid("Your sign-in carries no employee id (the employeeid claim), which this organisation "
                          "requires so that your enrollment is erased when you leave. Ask your administrator to "
                          "add the employee id to your account, sign in again and consent again.",
                          code="EmployeeIdRequired")
        now = self._clock()
        entry = LedgerEntry(user_key=principal.user_key, entry_id=ledger_entry_id(now, uuid.uuid4().hex), kind="consent",
                            accepted=True, terms_version=terms.version, terms_sha256=terms.sha256, store_photos=store,
                            at=iso(now), client=command.client[:200])
        # The user record first, then the ledger: a crash in between leaves a harmless record that
        # the next consent completes; the ledger entry is what grants consent.
        before = self._repos.users.get(principal.user_key)
        if principal.hr_key:
            # HR termination events name the employee id; this index finds the user without a scan. One
            # row per (employee id, user), written before the record names it: two accounts may share an id.
            self._repos.hr_index.upsert(HrIndexEntry(employee_id=principal.hr_key, user_key=principal.user_key))
        else:
            self._audit.write("consent.employeeIdMissing", actor=principal.user_key, subject=principal.user_key)
        self._open_user(principal, store_photos=store, now=now)
        if principal.hr_key and before is not None and before.hr_key and before.hr_key != principal.hr_key:
            # The claim changed: the old id no longer names this user.
            for row in hr_rows(self._repos, before.hr_key):
                if row.user_key == principal.user_key:
                    self._repos.hr_index.delete(before.hr_key, row.row_key)
        # The retention index (purge_timer reads only the days that are due): written before the
        # grant, so every grant is found; the previous grant's row goes after, as it no longer counts.
        # purge_timer acts on a settled row without reading the ledger, so a row is settled only while
        # it names the latest grant: the superseded row is unsettled before anything else is written,
        # and the new one is settled after its grant is in the ledger. A crash anywhere in between
        # leaves rows purge confirms against the ledger (shared/domain/erasure.trusts_consent_row).
        previous = latest_grant(self.ledger(principal.user_key))
        # Linked into the user's hash chain now: it may move the entry id, which the index row names.
        self.chain.prepare(entry)
        previous_at = parse_iso(previous.at) if previous else None
        # The previous grant's row, when it is on another day (on the same day the new row replaces it).
        superseded = (ConsentDue(day=day_key(previous_at), user_key=principal.user_key,
                                 grant_entry_id=previous.entry_id, at=previous.at, settled=False)
                      if previous is not None and previous_at is not None and day_key(previous_at) != day_key(now)
                      else None)
        if superseded is not None:
            self._repos.consent_due.replace_if_present(superseded)
        due = self._repos.consent_due.upsert(ConsentDue(day=day_key(now), user_key=principal.user_key,
                                                        grant_entry_id=entry.entry_id, at=entry.at, settled=False))
        self.chain.append(entry, prepared=True)
        if superseded is not None:
            self._repos.consent_due.delete(superseded.day, principal.user_key)
        due.settled = True
        self._repos.consent_due.replace_if_present(due)  # a revocation may have deleted it meanwhile
        self._audit.write("consent.granted", actor=principal.user_key, subject=principal.user_key,
                          termsVersion=terms.version, storePhotos=store)
        if not store:
            self.delete_kept_photos(principal.user_key)
        return ConsentGranted(terms.version, entry.at, store)

    def decline(self, command: DeclineConsent) -> ConsentDeclined:
        """Records a refusal, so a front end can offer the badge alternative and stop asking (as easy as
        accepting). It never withdraws a consent in force: that is an erasure, ``DELETE /api/enrollment``."""
        terms = self._terms()
        user_key = command.principal.user_key
        if command.terms_version != terms.version:
            raise Conflict(f"These terms are out of date; the current version is {terms.version}.", code="StaleTerms")
        ledger = self.ledger(user_key)
        if current_consent(ledger, current_terms_version=terms.version) is not None or (
                self._repos.users.get(user_key) is not None):
            raise Conflict("You have consented. To withdraw your consent and erase your enrollment, use "
                           "DELETE /api/enrollment.", code="ConsentInForce")
        latest = latest_entry(ledger)
        if latest is not None and latest.kind == "decline" and latest.terms_version == terms.version:
            return ConsentDeclined(terms.version, latest.at)  # a retry: one decline per terms version in a row
        now = self._clock()
        entry = LedgerEntry(user_key=user_key, entry_id=ledger_entry_id(now, uuid.uuid4().hex), kind="decline",
                            accepted=False, terms_version=terms.version, terms_sha256=terms.sha256, at=iso(now),
                            client=command.client[:200])
        # Through the hash chain like every ledger write: a decline is proof too (of a refusal).
        self.chain.append(entry)
        self._audit.write("consent.declined", actor=user_key, subject=user_key, termsVersion=terms.version)
        return ConsentDeclined(terms.version, entry.at)

    def _open_user(self, principal: Principal, *, store_photos: bool, now: datetime) -> None:
        """Creates the enrollment record, or updates the choices on it.

        A revocation deletes the record (the ledger keeps the tombstone), so a consent after a
        revocation starts a fresh enrollment with a new record and a new kept-photos token.
        """
        def change(user: User) -> None:
            user.store_photos = store_photos
            if principal.hr_key:
                user.hr_key = principal.hr_key

        for _ in range(5):
            if self._repos.users.mutate(change, principal.user_key) is not None:
                return
            try:
                self._repos.users.insert(User(user_key=principal.user_key, store_photos=store_photos,
                                              hr_key=principal.hr_key, created_at=iso(now), kept_token=uuid.uuid4().hex))
                return
            except RecordExists:
                continue
        raise RecordConflict("user record kept changing")

    def delete_kept_photos(self, user_key: str) -> int:
        user = self._repos.users.get(user_key)
        if user is None or not user.kept_token:
            return 0
        deleted = 0
        for name in self._photos.list_kept(f"{user.kept_token}/"):
            deleted += int(self._photos.delete_kept(name))
        if deleted:
            self._audit.write("photos.deleted", actor="system", subject=user_key, count=deleted,
                              reason="storePhotos turned off")
        return deleted
