"""What the services return: typed results, each with the JSON shape docs/openapi.json documents.

``as_json`` is the only place a result becomes a response body, so the HTTP contract of a result is
read and changed here (tests/unit/test_openapi.py checks the two agree)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ConsentGranted:
    terms_version: str
    granted_at: str
    store_photos: bool

    def as_json(self) -> dict[str, object]:
        return {"termsVersion": self.terms_version, "grantedAt": self.granted_at, "storePhotos": self.store_photos}


@dataclass(frozen=True)
class ConsentDeclined:
    terms_version: str
    declined_at: str

    def as_json(self) -> dict[str, object]:
        return {"accepted": False, "termsVersion": self.terms_version, "declinedAt": self.declined_at}


@dataclass(frozen=True)
class PhotoLink:
    photo_id: str
    url: str
    expires_on: str

    def as_json(self) -> dict[str, object]:
        return {"photoId": self.photo_id, "url": self.url, "expiresOn": self.expires_on}


@dataclass(frozen=True)
class UploadSlot:
    upload_id: str
    url: str
    expires_on: str


@dataclass(frozen=True)
class UploadsCreated:
    session_id: str
    uploads: tuple[UploadSlot, ...]

    def as_json(self) -> dict[str, object]:
        return {"sessionId": self.session_id,
                "uploads": [{"uploadId": u.upload_id, "url": u.url, "expiresOn": u.expires_on} for u in self.uploads]}


@dataclass(frozen=True)
class PhotoOutcome:
    upload_id: str
    status: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ConsentInForce:
    terms_version: str
    granted_at: str
    expires_at: str | None = None


@dataclass(frozen=True)
class Replacement:
    """A self-service re-enrollment in progress: the new photos' session, until its faces are trained and
    the old faces and kept photos are deleted."""

    session_id: str
    started_at: str | None

    def as_json(self) -> dict[str, object]:
        return {"pending": True, "sessionId": self.session_id, "startedAt": self.started_at}


@dataclass(frozen=True)
class EnrollmentStatus:
    status: str
    photos: tuple[PhotoOutcome, ...]
    store_photos: bool
    consent: ConsentInForce | None
    receipt_id: str | None = None
    message: str | None = None
    renewal_due: str | None = None
    replacement: Replacement | None = None

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "status": self.status,
            "photos": [{"uploadId": p.upload_id, "status": p.status, "reasons": list(p.reasons)} for p in self.photos],
            "storePhotos": self.store_photos,
            "consent": ({"termsVersion": self.consent.terms_version, "grantedAt": self.consent.granted_at,
                         "expiresAt": self.consent.expires_at} if self.consent else None),
        }
        if self.renewal_due is not None:
            body["renewalDue"] = self.renewal_due
        if self.replacement is not None:
            body["replacement"] = self.replacement.as_json()
        if self.receipt_id is not None:
            body["receiptId"] = self.receipt_id
        if self.message is not None:
            body["message"] = self.message
        return body


@dataclass(frozen=True)
class OverrideGranted:
    override_id: str
    user_key: str
    expires_at: str

    def as_json(self) -> dict[str, object]:
        return {"overrideId": self.override_id, "userKey": self.user_key, "expiresAt": self.expires_at}


@dataclass(frozen=True)
class RevocationRequested:
    request_id: str

    def as_json(self) -> dict[str, object]:
        return {"requestId": self.request_id}


@dataclass(frozen=True)
class ErasedItems:
    kind: str
    store: str
    count: int

    def as_json(self) -> dict[str, object]:
        return {"kind": self.kind, "store": self.store, "count": self.count}


@dataclass(frozen=True)
class ReceiptView:
    receipt_id: str
    request_id: str
    subject: str | None
    requested_by: str | None
    reason: str | None
    completed_at: str | None
    erased: tuple[ErasedItems, ...]
    retained: tuple[str, ...]
    verified: bool = False
    checked: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {"receiptId": self.receipt_id, "requestId": self.request_id, "subject": self.subject,
                "requestedBy": self.requested_by, "reason": self.reason, "completedAt": self.completed_at,
                "erased": [e.as_json() for e in self.erased], "retained": list(self.retained),
                "verified": self.verified, "checked": list(self.checked)}


@dataclass(frozen=True)
class FootprintView:
    """Counts per store, never an identifier (what an admin sees)."""

    user_key: str
    consent: str
    erasable: dict[str, int]
    retained: dict[str, int]
    replacement: Replacement | None = None

    def as_json(self) -> dict[str, object]:
        return {"userKey": self.user_key, "consent": self.consent, "empty": not any(self.erasable.values()),
                "erasable": dict(self.erasable), "retained": dict(self.retained),
                "replacement": self.replacement.as_json() if self.replacement else {"pending": False}}


@dataclass(frozen=True)
class ReenrollProgress:
    run_id: str
    status: str | None
    recognition_model: str | None
    total: int
    done: int
    failed: int
    skipped: int
    started_at: str | None
    switched_at: str | None
    message: str | None

    def as_json(self) -> dict[str, object]:
        return {"runId": self.run_id, "status": self.status, "recognitionModel": self.recognition_model,
                "total": self.total, "done": self.done, "failed": self.failed, "skipped": self.skipped,
                "startedAt": self.started_at, "switchedAt": self.switched_at, "message": self.message}


@dataclass
class PurgeReport:
    """Counts per kind; ``rowsRead`` per step shows that steps 1, 2 and 4 read only what is due."""

    dry_run: bool
    trigger: str
    started_at: str
    expired_consents: int = 0
    stale_uploads: int = 0
    stale_sessions: int = 0
    orphan_persons: int = 0
    missing_persons: int = 0
    orphan_kept_photos: int = 0
    superseded_groups: int = 0
    stale_index_rows: int = 0
    repaired_erasures: int = 0
    expired_audit_rows: int = 0
    pending_replacements: int = 0
    finished_replacements: int = 0
    rows_read: dict[str, int] = field(default_factory=lambda: {"repairedErasures": 0, "expiredConsents": 0,
                                                               "staleUploads": 0, "supersededGroups": 0})
    read_plans: dict[str, str] = field(default_factory=dict)  # step -> batched | scan | none
    orphan_scan: dict[str, int] = field(default_factory=lambda: {
        "groups": 0, "facePages": 0, "facePersonsListed": 0, "personChecks": 0, "keptBlobsListed": 0,
        "userRowsRead": 0, "attemptRowsRead": 0})
    orphan_scan_range: dict[str, object] = field(default_factory=dict)  # tonight's key range of the orphan scan
    step_ms: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    duration_ms: int = 0
    ledger_anchor: dict[str, object] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "dryRun": self.dry_run, "trigger": self.trigger, "startedAt": self.started_at,
            "expiredConsents": self.expired_consents, "staleUploads": self.stale_uploads,
            "staleSessions": self.stale_sessions, "orphanPersons": self.orphan_persons,
            "missingPersons": self.missing_persons, "orphanKeptPhotos": self.orphan_kept_photos,
            "supersededGroups": self.superseded_groups, "staleIndexRows": self.stale_index_rows,
            "repairedErasures": self.repaired_erasures, "expiredAuditRows": self.expired_audit_rows,
            "pendingReplacements": self.pending_replacements, "finishedReplacements": self.finished_replacements,
            "rowsRead": dict(self.rows_read), "readPlans": dict(self.read_plans), "orphanScan": dict(self.orphan_scan),
            "orphanScanRange": dict(self.orphan_scan_range), "stepMs": dict(self.step_ms),
            "errors": list(self.errors), "durationMs": self.duration_ms, "ledgerAnchor": dict(self.ledger_anchor),
        }


@dataclass(frozen=True)
class ReadinessCheck:
    """One dependency exercised by GET /api/admin/readiness: ``status`` is ``ok``, ``warning`` or ``failed``;
    ``next_step`` says what to do about anything but ``ok`` (None when there is nothing to do)."""

    name: str
    status: str
    detail: str
    next_step: str | None = None

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "nextStep": self.next_step}


@dataclass(frozen=True)
class ReadinessReport:
    """``ready`` when no check failed (warnings do not make a deployment unready)."""

    checked_at: str
    timeout_seconds: float
    checks: tuple[ReadinessCheck, ...]

    @property
    def ready(self) -> bool:
        return all(c.status != "failed" for c in self.checks)

    def as_json(self) -> dict[str, object]:
        return {"ready": self.ready, "checkedAt": self.checked_at, "timeoutSeconds": self.timeout_seconds,
                "checks": [c.as_json() for c in self.checks]}
