"""Consent: the append-only ledger, and the choices that follow from it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.commands import GrantConsent
from shared.domain.enrollment import (
    TABLE_CONSENT,
    TABLE_HR_INDEX,
    TABLE_USERS,
    USER_ROW,
    ConsentState,
    current_consent,
    iso,
    ledger_row_key,
    parse_iso,
)
from shared.domain.erasure import TABLE_CONSENT_BY_DAY, day_key, latest_grant
from shared.domain.principal import Principal
from shared.errors import Conflict, RecordConflict, RecordExists
from shared.ports import PhotoStorePort, RecordStorePort
from shared.results import ConsentGranted
from shared.services.audit import AuditLog
from shared.services.records import update_record
from shared.services.terms import Terms, current_terms

log = logging.getLogger("shared.consent")


class ConsentService:
    def __init__(self, records: RecordStorePort, photos: PhotoStorePort, audit: AuditLog, *,
                 clock: Callable[[], datetime], terms: Callable[[], Terms] = current_terms) -> None:
        self._records = records
        self._photos = photos
        self._audit = audit
        self._clock = clock
        self._terms = terms

    def terms(self) -> Terms:
        return self._terms()

    def ledger(self, user_key: str) -> list[dict[str, Any]]:
        return self._records.partition(TABLE_CONSENT, user_key)

    def current(self, user_key: str) -> ConsentState | None:
        return current_consent(self.ledger(user_key), current_terms_version=self._terms().version)

    def grant(self, command: GrantConsent) -> ConsentGranted:
        terms = self._terms()
        principal, store = command.principal, command.store_photos
        if command.terms_version != terms.version:
            raise Conflict(f"These terms are out of date; the current version is {terms.version}. "
                           "Read the current terms and consent again.", code="StaleTerms")
        now = self._clock()
        entry = {
            "PartitionKey": principal.user_key, "RowKey": ledger_row_key(now, uuid.uuid4().hex),
            "kind": "consent", "accepted": True, "termsVersion": terms.version, "termsSha256": terms.sha256,
            "storePhotos": store, "at": iso(now), "client": command.client[:200],
        }
        # The user record first, then the ledger: a crash in between leaves a harmless record that
        # the next consent completes; the ledger entry is what grants consent.
        self._open_user(principal, store_photos=store, now=now)
        if principal.hr_key:
            # HR termination events name the employee id; this index finds the user without a scan.
            self._records.upsert(TABLE_HR_INDEX, {"PartitionKey": principal.hr_key, "RowKey": "u", "userKey": principal.user_key})
        # The retention index (purge_timer reads only the days that are due): written before the
        # grant, so every grant is found; the previous grant's row goes after, as it no longer counts.
        previous = latest_grant(self.ledger(principal.user_key))
        self._records.upsert(TABLE_CONSENT_BY_DAY, {"PartitionKey": day_key(now), "RowKey": principal.user_key,
                                                    "grantRowKey": entry["RowKey"], "at": entry["at"]})
        self._records.insert(TABLE_CONSENT, entry)
        previous_at = parse_iso(str(previous.get("at"))) if previous else None
        if previous_at is not None and day_key(previous_at) != day_key(now):
            self._records.delete(TABLE_CONSENT_BY_DAY, day_key(previous_at), principal.user_key)
        self._audit.write("consent.granted", actor=principal.user_key, subject=principal.user_key,
                          termsVersion=terms.version, storePhotos=store)
        if not store:
            self.delete_kept_photos(principal.user_key)
        return ConsentGranted(terms.version, str(entry["at"]), store)

    def _open_user(self, principal: Principal, *, store_photos: bool, now: datetime) -> None:
        """Creates the enrollment record, or updates the choices on it.

        A revocation deletes the record (the ledger keeps the tombstone), so a consent after a
        revocation starts a fresh enrollment with a new record and a new kept-photos token.
        """
        def change(user: dict[str, Any]) -> None:
            user["storePhotos"] = store_photos
            if principal.hr_key:
                user["hrKey"] = principal.hr_key

        for _ in range(5):
            if update_record(self._records, TABLE_USERS, principal.user_key, USER_ROW, change) is not None:
                return
            try:
                self._records.insert(TABLE_USERS, {
                    "PartitionKey": principal.user_key, "RowKey": USER_ROW, "storePhotos": store_photos,
                    "hrKey": principal.hr_key, "createdAt": iso(now), "keptToken": uuid.uuid4().hex})
                return
            except RecordExists:
                continue
        raise RecordConflict("user record kept changing")

    def delete_kept_photos(self, user_key: str) -> int:
        found = self._records.get(TABLE_USERS, user_key, USER_ROW)
        if found is None or not found[0].get("keptToken"):
            return 0
        deleted = 0
        for name in self._photos.list_kept(f"{found[0]['keptToken']}/"):
            deleted += int(self._photos.delete_kept(name))
        if deleted:
            self._audit.write("photos.deleted", actor="system", subject=user_key, count=deleted,
                              reason="storePhotos turned off")
        return deleted
