"""One immutable settings object, read from the app settings (environment variables).

Every setting the code reads is declared once in ``SETTINGS`` with its default and meaning.
The README's configuration table, the Bicep app settings and ``local.settings.example.json``
are checked against this list by tests, so a setting cannot exist in one place only.

``where`` says who sets it:
- ``azure``: set by infra/ in Azure (and may have a local default);
- ``local``: only meaningful on the local stack (Azurite, emulator keys); never set in Azure;
- ``both``: tunables with a sensible default that infra/ sets explicitly too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from shared.adapters.retention_policy import load_policy
from shared.domain.quality import Thresholds

Where = Literal["azure", "local", "both"]

# The storage emulator's well-known development account. Its key is published in Microsoft's
# documentation and only opens Azurite on loopback; it is not a secret.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def azurite_connection_string(*, host: str = "127.0.0.1", blob: int = 10000, queue: int = 10001, table: int = 10002) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://{host}:{blob}/{AZURITE_ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue}/{AZURITE_ACCOUNT};"
        f"TableEndpoint=http://{host}:{table}/{AZURITE_ACCOUNT};"
    )


@dataclass(frozen=True)
class SettingSpec:
    name: str
    default: str | None
    where: Where
    meaning: str


#: The published retention policy: the defaults of the purge's periods come from it, and a value above it is refused.
_POLICY = load_policy()

SETTINGS: tuple[SettingSpec, ...] = (
    # --- connections (identity-based in Azure, Azurite / emulator locally) ---
    SettingSpec("PhotoStorage", None, "local",
                "Connection string of the photo storage account (Azurite locally). In Azure the identity-based "
                "`PhotoStorage__*` settings are used instead."),
    SettingSpec("PhotoStorage__blobServiceUri", None, "azure", "Blob endpoint of the photo storage account (managed identity)."),
    SettingSpec("PhotoStorage__queueServiceUri", None, "azure", "Queue endpoint of the photo storage account (managed identity)."),
    SettingSpec("PhotoStorage__tableServiceUri", None, "azure", "Table endpoint of the photo storage account (managed identity)."),
    SettingSpec("PhotoStorage__credential", None, "azure", "`managedidentity` in Azure."),
    SettingSpec("PhotoStorage__clientId", None, "azure", "Client id of the user-assigned identity used for storage."),
    SettingSpec("ServiceBusConnection__fullyQualifiedNamespace", None, "azure",
                "Service Bus namespace host name, e.g. `sb-xyz.servicebus.windows.net` (managed identity)."),
    SettingSpec("ServiceBusConnection__credential", None, "azure", "`managedidentity` in Azure."),
    SettingSpec("ServiceBusConnection__clientId", None, "azure", "Client id of the user-assigned identity used for Service Bus."),
    SettingSpec("MESSAGING_TRANSPORT", "servicebus", "local",
                "`servicebus` (Azure) or `storage-queues` (the local Service Bus stand-in on Azurite queues)."),
    SettingSpec("AZURE_CLIENT_ID", None, "azure", "Client id of the app's user-assigned managed identity (DefaultAzureCredential)."),
    SettingSpec("FACE_ENDPOINT", "http://127.0.0.1:7072", "azure", "Face endpoint (custom subdomain in Azure, the emulator locally)."),
    SettingSpec("FACE_API_VERSION", "v1.2", "both", "Face REST API version segment in the path."),
    SettingSpec("FACE_KEY", None, "local",
                "Local emulator only: sent as Ocp-Apim-Subscription-Key. Unset in Azure, where an Entra token is used "
                "(the Face account has local auth disabled)."),
    SettingSpec("FACE_RECOGNITION_MODEL", "recognition_04", "both", "Recognition model for new groups and detection."),
    SettingSpec("FACE_RECOGNITION_MODELS", "recognition_01,recognition_02,recognition_03,recognition_04", "both",
                "Recognition models a re-enrollment may move to: those the Face service supports "
                "(https://learn.microsoft.com/azure/ai-services/computer-vision/how-to/specify-recognition-model). "
                "The local stack adds the emulator's `recognition_05`."),
    SettingSpec("FACE_DETECTION_MODEL", "detection_03", "both", "Detection model for detect and add-face."),
    SettingSpec("FACE_CALLS_PER_SECOND", "10", "both", "Face call budget that re-enrollment shapes its fan-out to."),
    SettingSpec("FACE_TIMEOUT_SECONDS", "10", "both", "Timeout of one Face HTTP call."),
    SettingSpec("FACE_MAX_RETRIES", "5", "both", "Retries of one Face call on 429, 503 and transient errors."),
    # --- names used by bindings (%NAME%) and by the code ---
    SettingSpec("UPLOADS_CONTAINER", "uploads", "both", "Container the front ends upload photos to (SAS, create-only)."),
    SettingSpec("KEPT_PHOTOS_CONTAINER", "kept-photos", "both", "Container of photos kept with `storePhotos` consent."),
    SettingSpec("LEDGER_ANCHORS_CONTAINER", "ledger-anchors", "both",
                "WORM container (locked time-based retention) of the consent ledger's daily anchors."),
    SettingSpec("TABLE_PREFIX", "faceenroll", "both", "Prefix of every table name this app uses."),
    SettingSpec("REVOCATIONS_QUEUE", "revocations", "both", "Service Bus queue of revocation commands."),
    SettingSpec("MODEL_UPDATES_QUEUE", "model-updates", "both", "Service Bus queue that starts a re-enrollment."),
    SettingSpec("REENROLL_WORK_QUEUE", "reenroll-work", "both", "Service Bus queue of re-enrollment work items."),
    SettingSpec("HR_EVENTS_TOPIC", "hr-events", "both", "Service Bus topic the HR system publishes CloudEvents to."),
    SettingSpec("HR_EVENTS_SUBSCRIPTION", "face-enrollment", "both", "Subscription of this app on the HR topic."),
    SettingSpec("EVENTGRID_TOPIC_ENDPOINT", None, "azure",
                "Endpoint of the Event Grid topic that door systems subscribe to (CloudEvents; managed identity)."),
    SettingSpec("EVENTS_TRANSPORT", "eventgrid", "local",
                "`eventgrid`, or `http` on the local stack: events are POSTed to `EVENTS_SINK_URL`."),
    SettingSpec("EVENTS_SINK_URL", None, "local", "The local stack's event subscriber (`http` transport)."),
    SettingSpec("EVENTS_SOURCE", "/faceenrollment", "both", "CloudEvents `source` of the door-system events."),
    SettingSpec("EVENTS_SCHEDULE", "*/30 * * * * *", "both",
                "NCRONTAB schedule of events_sender, which publishes the outbox (UTC)."),
    SettingSpec("PURGE_SCHEDULE", "0 0 3 * * *", "both", "NCRONTAB schedule of purge_timer (UTC)."),
    # --- identity and policy ---
    SettingSpec("PRINCIPAL_SOURCE", "appservice", "both",
                "`appservice`: trust `X-MS-CLIENT-PRINCIPAL` only when App Service Authentication is on "
                "(`WEBSITE_AUTH_ENABLED=True`), else answer 503. `local`: trust the header (local stack only; "
                "infra/ must never set it)."),
    SettingSpec("WEBSITE_AUTH_ENABLED", None, "local",
                "Set by App Service itself to `True` when App Service Authentication is on. Never set it by hand "
                "in Azure; locally it simulates Easy Auth being on."),
    SettingSpec("WEBSITE_SITE_NAME", None, "local",
                "Set by App Service itself to the app's name; never set it by hand. Readiness "
                "(`GET /api/admin/readiness`) uses it to tell Azure from the local stack, where "
                "`PRINCIPAL_SOURCE=local` is expected."),
    SettingSpec("AUTH_TENANT_ID", None, "azure",
                "Entra tenant id. When set, a principal whose `tid` claim differs is refused with 401."),
    SettingSpec("MFA_AMR_VALUES", "mfa,ngcmfa,fido", "both",
                "Comma-separated `amr` values that count as a multi-factor sign-in (consent, uploads, admin routes)."),
    SettingSpec("USER_KEY_CLAIM", "oid", "both", "Claim of the signed-in principal that identifies the user."),
    SettingSpec("HR_KEY_CLAIM", "employeeid", "both", "Claim that carries the HR employee id."),
    SettingSpec("ADMIN_ROLE", "FaceEnrollment.Admin", "both", "App role that grants admin rights."),
    SettingSpec("TERMINATION_EVENT_TYPES", "hr.employee.terminated", "both", "Comma-separated CloudEvent types meaning 'terminated'."),
    SettingSpec("QUOTA_REQUESTS_PER_MINUTE", "300", "both",
                "API requests one user may make per minute (429 with Retry-After beyond it; 0 turns it off)."),
    SettingSpec("QUOTA_UPLOAD_SESSIONS_PER_DAY", "10", "both",
                "Upload sessions (POST /api/enrollment/uploads) one user may open per UTC day."),
    SettingSpec("QUOTA_OPEN_UPLOAD_SLOTS", "10", "both",
                "Upload slots one user may hold open (handed out, not yet processed) at a time."),
    SettingSpec("SAS_TTL_MINUTES", "10", "both", "Life of an upload SAS URL (at most 15)."),
    SettingSpec("CONSENT_RETENTION_DAYS", str(_POLICY.consent_days), "both",
                "Consent not renewed for this long is erased by purge_timer. Default and maximum: the published "
                "retention policy (shared/contracts/retention-policy.json); a setting may only shorten it."),
    SettingSpec("UPLOAD_MAX_AGE_MINUTES", str(_POLICY.upload_minutes), "both",
                "Uploads and sessions older than this are deleted by purge_timer (at most the retention policy's)."),
    SettingSpec("GROUP_GRACE_DAYS", "7", "both", "Days a superseded group is kept after a re-enrollment switch."),
    SettingSpec("ORPHAN_SCAN_DAYS", "7", "both",
                "purge_timer's orphan scan covers the key space over this many nights, one range a night (1 to 16; "
                "1: all of it every night)."),
    SettingSpec("TRAINING_COALESCE_SECONDS", "5", "both", "Enrollments arriving within this window share one training."),
    # --- cost of one upload (docs/security.md) ---
    SettingSpec("IMAGE_MAX_SIDE", "4096", "both",
                "Longest side, in pixels, of a photo we decode (36 to 4096: Face detects no larger face); read from the header."),
    SettingSpec("IMAGE_MAX_JPEG_SCANS", "64", "both", "Most scans (SOS markers) in a JPEG; a progressive scan bomb has thousands."),
    SettingSpec("IMAGE_DECODE_CPU_SECONDS", "2", "both", "CPU budget of decoding and re-encoding one photo, in seconds (fractions allowed; the sandbox's CPU-time timer, RLIMIT_CPU behind it)."),
    SettingSpec("IMAGE_DECODE_MEMORY_MB", "200", "both", "Memory budget of decoding and re-encoding one photo (sandbox RLIMIT_AS above its baseline)."),
    SettingSpec("IMAGE_DECODE_WALL_SECONDS", "30", "both", "Wall-clock budget of decoding and re-encoding one photo; the sandbox is killed after it."),
    SettingSpec("UPLOAD_PROCESSING_LEASE_SECONDS", "630", "both",
                "How long a delivery's claim on an upload excludes other deliveries; longer than host.json's "
                "functionTimeout (600 s), so a redelivery never runs while the first delivery can still run."),
    SettingSpec("HR_REQUIRE_EMPLOYEE_ID", "false", "both",
                "`true`: consent is refused without the employee-id claim (HR terminations could not find the user); "
                "`false`: consent is granted and the gap is audited (`consent.employeeIdMissing`)."),
    SettingSpec("AUDIT_RETENTION_DAYS", str(_POLICY.audit_days), "both",
                "Audit rows older than this are deleted by purge_timer (at most the retention policy's)."),
    SettingSpec("AUDIT_HASH_KEY", None, "azure",
                "Secret key of the keyed hash (HMAC-SHA256) that names users in audit rows (a Key Vault reference in "
                "Azure). Unset: a fixed development key is used, which is not a secret."),
    # --- quality gate ---
    SettingSpec("QUALITY_MIN_FACE_AREA", "10000", "both", "Minimum face rectangle area in px²."),
    SettingSpec("QUALITY_MAX_YAW", "35", "both", "Maximum absolute head yaw in degrees."),
    SettingSpec("QUALITY_MAX_PITCH", "35", "both", "Maximum absolute head pitch in degrees."),
    SettingSpec("QUALITY_MAX_ROLL", "20", "both", "Maximum absolute head roll in degrees."),
    SettingSpec("QUALITY_MAX_BLUR", "0.4", "both", "Maximum blur value (0..1)."),
    SettingSpec("QUALITY_MIN_EXPOSURE", "0.25", "both", "Minimum exposure value (0..1)."),
    SettingSpec("QUALITY_MAX_EXPOSURE", "0.75", "both", "Maximum exposure value (0..1)."),
    SettingSpec("QUALITY_MIN_RECOGNITION", "high", "both", "Minimum qualityForRecognition (low, medium, high)."),
)

SETTING_NAMES = frozenset(s.name for s in SETTINGS)
_DEFAULTS = {s.name: s.default for s in SETTINGS}


def _int(env: Mapping[str, str], name: str) -> int:
    return int(env.get(name) or _DEFAULTS[name] or 0)


def _float(env: Mapping[str, str], name: str) -> float:
    return float(env.get(name) or _DEFAULTS[name] or 0)


def _str(env: Mapping[str, str], name: str) -> str:
    return env.get(name) or _DEFAULTS[name] or ""


def _opt(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name) or _DEFAULTS[name]


_NO_ENV: Mapping[str, str] = {}


def _amr_values(env: Mapping[str, str]) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in _str(env, "MFA_AMR_VALUES").split(",") if v.strip())


def _models(env: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(m.strip() for m in _str(env, "FACE_RECOGNITION_MODELS").split(",") if m.strip())


def _event_types(env: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(t.strip() for t in _str(env, "TERMINATION_EVENT_TYPES").split(",") if t.strip())


def _thresholds(env: Mapping[str, str]) -> Thresholds:
    return Thresholds(
        min_face_area=_int(env, "QUALITY_MIN_FACE_AREA"),
        max_yaw=_float(env, "QUALITY_MAX_YAW"),
        max_pitch=_float(env, "QUALITY_MAX_PITCH"),
        max_roll=_float(env, "QUALITY_MAX_ROLL"),
        max_blur=_float(env, "QUALITY_MAX_BLUR"),
        min_exposure=_float(env, "QUALITY_MIN_EXPOSURE"),
        max_exposure=_float(env, "QUALITY_MAX_EXPOSURE"),
        min_recognition_quality=_str(env, "QUALITY_MIN_RECOGNITION"),
    )


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every default comes from ``SETTINGS`` (read with an empty environment): one source of each."""

    photo_storage_connection: str | None = None
    blob_service_uri: str | None = None
    queue_service_uri: str | None = None
    table_service_uri: str | None = None
    managed_identity_client_id: str | None = None
    servicebus_namespace: str | None = None
    messaging_transport: str = _str(_NO_ENV, "MESSAGING_TRANSPORT")
    face_endpoint: str = _str(_NO_ENV, "FACE_ENDPOINT")
    face_api_version: str = _str(_NO_ENV, "FACE_API_VERSION")
    face_key: str | None = None
    recognition_model: str = _str(_NO_ENV, "FACE_RECOGNITION_MODEL")
    recognition_models: tuple[str, ...] = _models(_NO_ENV)
    detection_model: str = _str(_NO_ENV, "FACE_DETECTION_MODEL")
    face_calls_per_second: float = _float(_NO_ENV, "FACE_CALLS_PER_SECOND")
    face_timeout_seconds: float = _float(_NO_ENV, "FACE_TIMEOUT_SECONDS")
    face_max_retries: int = _int(_NO_ENV, "FACE_MAX_RETRIES")
    uploads_container: str = _str(_NO_ENV, "UPLOADS_CONTAINER")
    kept_photos_container: str = _str(_NO_ENV, "KEPT_PHOTOS_CONTAINER")
    ledger_anchors_container: str = _str(_NO_ENV, "LEDGER_ANCHORS_CONTAINER")
    table_prefix: str = _str(_NO_ENV, "TABLE_PREFIX")
    revocations_queue: str = _str(_NO_ENV, "REVOCATIONS_QUEUE")
    model_updates_queue: str = _str(_NO_ENV, "MODEL_UPDATES_QUEUE")
    reenroll_work_queue: str = _str(_NO_ENV, "REENROLL_WORK_QUEUE")
    hr_events_topic: str = _str(_NO_ENV, "HR_EVENTS_TOPIC")
    eventgrid_topic_endpoint: str | None = None
    events_transport: str = _str(_NO_ENV, "EVENTS_TRANSPORT")
    events_sink_url: str | None = None
    events_source: str = _str(_NO_ENV, "EVENTS_SOURCE")
    hr_events_subscription: str = _str(_NO_ENV, "HR_EVENTS_SUBSCRIPTION")
    user_key_claim: str = _str(_NO_ENV, "USER_KEY_CLAIM")
    hr_key_claim: str = _str(_NO_ENV, "HR_KEY_CLAIM")
    admin_role: str = _str(_NO_ENV, "ADMIN_ROLE")
    principal_source: str = _str(_NO_ENV, "PRINCIPAL_SOURCE")
    website_auth_enabled: bool = False
    website_site_name: str | None = None
    auth_tenant_id: str | None = None
    mfa_amr_values: frozenset[str] = _amr_values(_NO_ENV)
    termination_event_types: tuple[str, ...] = _event_types(_NO_ENV)
    sas_ttl_minutes: int = _int(_NO_ENV, "SAS_TTL_MINUTES")
    quota_requests_per_minute: int = _int(_NO_ENV, "QUOTA_REQUESTS_PER_MINUTE")
    quota_upload_sessions_per_day: int = _int(_NO_ENV, "QUOTA_UPLOAD_SESSIONS_PER_DAY")
    quota_open_upload_slots: int = _int(_NO_ENV, "QUOTA_OPEN_UPLOAD_SLOTS")
    consent_retention_days: int = _int(_NO_ENV, "CONSENT_RETENTION_DAYS")
    upload_max_age_minutes: int = _int(_NO_ENV, "UPLOAD_MAX_AGE_MINUTES")
    group_grace_days: int = _int(_NO_ENV, "GROUP_GRACE_DAYS")
    orphan_scan_days: int = _int(_NO_ENV, "ORPHAN_SCAN_DAYS")
    training_coalesce_seconds: float = _float(_NO_ENV, "TRAINING_COALESCE_SECONDS")
    image_max_side: int = _int(_NO_ENV, "IMAGE_MAX_SIDE")
    image_max_jpeg_scans: int = _int(_NO_ENV, "IMAGE_MAX_JPEG_SCANS")
    image_decode_cpu_seconds: float = _float(_NO_ENV, "IMAGE_DECODE_CPU_SECONDS")
    image_decode_memory_mb: int = _int(_NO_ENV, "IMAGE_DECODE_MEMORY_MB")
    image_decode_wall_seconds: float = _float(_NO_ENV, "IMAGE_DECODE_WALL_SECONDS")
    upload_processing_lease_seconds: int = _int(_NO_ENV, "UPLOAD_PROCESSING_LEASE_SECONDS")
    hr_require_employee_id: bool = _str(_NO_ENV, "HR_REQUIRE_EMPLOYEE_ID").strip().lower() == "true"
    audit_retention_days: int = _int(_NO_ENV, "AUDIT_RETENTION_DAYS")
    audit_hash_key: str = "local-development-audit-key"
    quality: Thresholds = field(default_factory=lambda: _thresholds(_NO_ENV))

    @property
    def hosted_in_azure(self) -> bool:
        """App Service (Functions included) sets WEBSITE_SITE_NAME on every app; the local stack never does."""
        return bool(self.website_site_name)

    @property
    def uses_storage_queue_bus(self) -> bool:
        return self.messaging_transport == "storage-queues"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e: Mapping[str, str] = os.environ if env is None else env
        sas_ttl = _int(e, "SAS_TTL_MINUTES")
        if not 1 <= sas_ttl <= 15:
            raise ValueError("SAS_TTL_MINUTES must be between 1 and 15")
        image_max_side = _int(e, "IMAGE_MAX_SIDE")
        if not 36 <= image_max_side <= 4096:
            raise ValueError("IMAGE_MAX_SIDE must be between 36 and 4096 (what Face can detect)")
        if not 1 <= _int(e, "ORPHAN_SCAN_DAYS") <= 16:
            raise ValueError("ORPHAN_SCAN_DAYS must be between 1 and 16 (the key space is split at hex digits)")
        for name, limit in _POLICY.limits().items():
            # What is published is what is enforced: a period longer than the policy's would keep data
            # longer than users were told. Shorter is allowed (stricter than published).
            if not 0 <= _int(e, name) <= limit:  # 0: at once (the e2e purge stack uses it)
                raise ValueError(f"{name} must be between 0 and {limit}, the published retention policy's maximum")
        principal_source = _str(e, "PRINCIPAL_SOURCE").strip().lower()
        if principal_source not in ("appservice", "local"):
            raise ValueError("PRINCIPAL_SOURCE must be 'appservice' or 'local'")
        return cls(
            photo_storage_connection=_opt(e, "PhotoStorage"),
            blob_service_uri=_opt(e, "PhotoStorage__blobServiceUri"),
            queue_service_uri=_opt(e, "PhotoStorage__queueServiceUri"),
            table_service_uri=_opt(e, "PhotoStorage__tableServiceUri"),
            managed_identity_client_id=_opt(e, "PhotoStorage__clientId") or _opt(e, "AZURE_CLIENT_ID"),
            servicebus_namespace=_opt(e, "ServiceBusConnection__fullyQualifiedNamespace"),
            messaging_transport=_str(e, "MESSAGING_TRANSPORT"),
            face_endpoint=_str(e, "FACE_ENDPOINT").rstrip("/"),
            face_api_version=_str(e, "FACE_API_VERSION"),
            face_key=_opt(e, "FACE_KEY"),
            recognition_model=_str(e, "FACE_RECOGNITION_MODEL"),
            recognition_models=_models(e),
            detection_model=_str(e, "FACE_DETECTION_MODEL"),
            face_calls_per_second=_float(e, "FACE_CALLS_PER_SECOND"),
            face_timeout_seconds=_float(e, "FACE_TIMEOUT_SECONDS"),
            face_max_retries=_int(e, "FACE_MAX_RETRIES"),
            uploads_container=_str(e, "UPLOADS_CONTAINER"),
            kept_photos_container=_str(e, "KEPT_PHOTOS_CONTAINER"),
            ledger_anchors_container=_str(e, "LEDGER_ANCHORS_CONTAINER"),
            table_prefix=_str(e, "TABLE_PREFIX"),
            revocations_queue=_str(e, "REVOCATIONS_QUEUE"),
            model_updates_queue=_str(e, "MODEL_UPDATES_QUEUE"),
            reenroll_work_queue=_str(e, "REENROLL_WORK_QUEUE"),
            hr_events_topic=_str(e, "HR_EVENTS_TOPIC"),
            eventgrid_topic_endpoint=_opt(e, "EVENTGRID_TOPIC_ENDPOINT"),
            events_transport=_str(e, "EVENTS_TRANSPORT").strip().lower(),
            events_sink_url=_opt(e, "EVENTS_SINK_URL"),
            events_source=_str(e, "EVENTS_SOURCE"),
            hr_events_subscription=_str(e, "HR_EVENTS_SUBSCRIPTION"),
            user_key_claim=_str(e, "USER_KEY_CLAIM"),
            hr_key_claim=_str(e, "HR_KEY_CLAIM"),
            admin_role=_str(e, "ADMIN_ROLE"),
            principal_source=principal_source,
            website_auth_enabled=_str(e, "WEBSITE_AUTH_ENABLED").strip().lower() == "true",
            website_site_name=_opt(e, "WEBSITE_SITE_NAME"),
            auth_tenant_id=(_opt(e, "AUTH_TENANT_ID") or "").strip().lower() or None,
            mfa_amr_values=_amr_values(e),
            termination_event_types=_event_types(e),
            sas_ttl_minutes=sas_ttl,
            quota_requests_per_minute=_int(e, "QUOTA_REQUESTS_PER_MINUTE"),
            quota_upload_sessions_per_day=_int(e, "QUOTA_UPLOAD_SESSIONS_PER_DAY"),
            quota_open_upload_slots=_int(e, "QUOTA_OPEN_UPLOAD_SLOTS"),
            consent_retention_days=_int(e, "CONSENT_RETENTION_DAYS"),
            upload_max_age_minutes=_int(e, "UPLOAD_MAX_AGE_MINUTES"),
            group_grace_days=_int(e, "GROUP_GRACE_DAYS"),
            orphan_scan_days=_int(e, "ORPHAN_SCAN_DAYS"),
            training_coalesce_seconds=_float(e, "TRAINING_COALESCE_SECONDS"),
            image_max_side=image_max_side,
            image_max_jpeg_scans=_int(e, "IMAGE_MAX_JPEG_SCANS"),
            image_decode_cpu_seconds=_float(e, "IMAGE_DECODE_CPU_SECONDS"),
            image_decode_memory_mb=_int(e, "IMAGE_DECODE_MEMORY_MB"),
            image_decode_wall_seconds=_float(e, "IMAGE_DECODE_WALL_SECONDS"),
            upload_processing_lease_seconds=_int(e, "UPLOAD_PROCESSING_LEASE_SECONDS"),
            hr_require_employee_id=_str(e, "HR_REQUIRE_EMPLOYEE_ID").strip().lower() == "true",
            audit_retention_days=_int(e, "AUDIT_RETENTION_DAYS"),
            audit_hash_key=_opt(e, "AUDIT_HASH_KEY") or "local-development-audit-key",
            quality=_thresholds(e),
        )


def local_environment(*, blob: int = 10000, queue: int = 10001, table: int = 10002,
                      face_port: int = 7072, face_key: str = "local-emulator-key") -> dict[str, str]:
    """The app settings of the local stack (what local.settings.json holds for Core Tools users)."""
    conn = azurite_connection_string(blob=blob, queue=queue, table=table)
    return {
        "AzureWebJobsStorage": conn,
        "PhotoStorage": conn,
        "MESSAGING_TRANSPORT": "storage-queues",
        # The local stack has no App Service in front of it: the test principal header is trusted.
        "PRINCIPAL_SOURCE": "local",
        "FACE_ENDPOINT": f"http://127.0.0.1:{face_port}",
        "FACE_KEY": face_key,
        # The emulator's stand-in for "the next model" (local/face_api --extra-models recognition_05).
        "FACE_RECOGNITION_MODELS": "recognition_01,recognition_02,recognition_03,recognition_04,recognition_05",
    }
