"""Every port the services depend on, in one place. Adapters (shared/adapters) implement them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # shared.images imports Pillow: not at start-up
    from shared.images import ValidatedImage


# --- Face -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FaceRectangle:
    top: int
    left: int
    width: int
    height: int

    @property
    def area(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class DetectedFace:
    """One face from detect. ``attributes`` is the service's ``faceAttributes`` object as sent."""

    face_id: str | None
    rectangle: FaceRectangle
    attributes: Mapping[str, Any] = field(default_factory=dict)
    recognition_model: str | None = None


@dataclass(frozen=True)
class Candidate:
    person_id: str
    confidence: float


@dataclass(frozen=True)
class Identification:
    face_id: str
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True)
class TrainingStatus:
    status: str  # notStarted | running | succeeded | failed
    created: str | None = None
    last_action: str | None = None
    last_successful: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class PersonRecord:
    person_id: str
    name: str
    user_data: str | None
    persisted_face_ids: tuple[str, ...]


class FacePort(Protocol):
    """The LargePersonGroup subset of the Face REST API the app uses. IDs are opaque strings."""

    def create_group(self, group_id: str, *, name: str, recognition_model: str, user_data: str | None = None) -> None: ...
    def get_group(self, group_id: str) -> Mapping[str, Any]: ...
    def list_groups(self, *, start: str | None = None, top: int = 1000) -> list[Mapping[str, Any]]: ...
    def delete_group(self, group_id: str) -> None: ...
    def create_person(self, group_id: str, *, name: str, user_data: str | None = None) -> str: ...
    def get_person(self, group_id: str, person_id: str) -> PersonRecord: ...
    def list_persons(self, group_id: str, *, start: str | None = None, top: int = 1000) -> list[PersonRecord]: ...
    def iter_persons(self, group_id: str) -> Iterator[PersonRecord]: ...
    def update_person(self, group_id: str, person_id: str, *, name: str | None = None, user_data: str | None = None) -> None: ...
    def delete_person(self, group_id: str, person_id: str) -> None: ...
    def add_face(self, group_id: str, person_id: str, image: bytes, *, user_data: str | None = None,
                 target_face: FaceRectangle | None = None) -> str: ...
    def get_face(self, group_id: str, person_id: str, persisted_face_id: str) -> Mapping[str, Any]: ...
    def delete_face(self, group_id: str, person_id: str, persisted_face_id: str) -> None: ...
    def train(self, group_id: str) -> None: ...
    def training_status(self, group_id: str) -> TrainingStatus: ...
    def detect(self, image: bytes, *, return_face_id: bool = True, attributes: Sequence[str] = (),
               recognition_model: str | None = None) -> list[DetectedFace]: ...
    def identify(self, group_id: str, face_ids: Sequence[str], *, max_candidates: int = 1,
                 confidence_threshold: float | None = None) -> list[Identification]: ...
    def verify(self, group_id: str, face_id: str, person_id: str) -> tuple[bool, float]: ...


# --- Messaging --------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutgoingMessage:
    body: bytes
    message_id: str
    content_type: str = "application/json"
    application_properties: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    scheduled_enqueue_time: datetime | None = None
    subject: str | None = None


class MessagePublisherPort(Protocol):
    """Sends to a Service Bus queue or topic (or the local stand-in with the same semantics)."""

    def send(self, destination: str, messages: Sequence[OutgoingMessage]) -> None: ...
    def schedule(self, destination: str, message: OutgoingMessage) -> str:
        """Sends one message that has a ``scheduled_enqueue_time``; returns the token ``cancel`` takes ("" when
        the bus dropped it as a duplicate of a message it holds)."""
        ...
    def cancel(self, destination: str, token: str) -> bool:
        """Withdraws a scheduled message before it is delivered. False, and nothing else, when it is gone
        (delivered or being delivered, withdrawn already) or the token names nothing."""
        ...


@dataclass(frozen=True)
class OutgoingEvent:
    """A CloudEvent 1.0 for the door systems (docs/door-events.schema.json)."""

    id: str
    type: str
    subject: str
    time: datetime
    data: Mapping[str, object]


class EventPublisherPort(Protocol):
    """Publishes CloudEvents: Event Grid in Azure, an HTTP subscriber on the local stack."""

    def publish(self, events: Sequence[OutgoingEvent]) -> None: ...


# --- Records (Table storage) ------------------------------------------------------------------
#: The ETag an update gives to mean "whatever the record's ETag, as long as it exists" (If-Match: *).
ANY_ETAG = "*"
#: The comparisons a record query may make (Table storage's OData operators).
QUERY_OPS = ("eq", "ne", "ge", "gt", "lt")


@dataclass(frozen=True)
class Cond:
    """One comparison of a record query, ``column op value``. As in Table storage, a row that lacks the
    column never matches a comparison on it (``gt ""`` so asks for a non-empty value)."""

    column: str
    op: str
    value: str


class RecordStorePort(Protocol):
    """Entities are dicts with PartitionKey/RowKey; updates are optimistic on the ETag."""

    def get(self, table: str, pk: str, rk: str) -> tuple[dict[str, Any], str] | None: ...
    def insert(self, table: str, entity: Mapping[str, Any]) -> str: ...
    def insert_batch(self, table: str, entities: Sequence[Mapping[str, Any]]) -> list[str]:
        """Creates entities of one partition in transactions of up to 100 (all or none of each);
        ``RecordExists`` if one of a transaction exists already."""
        ...
    def update(self, table: str, entity: Mapping[str, Any], *, etag: str) -> str:
        """Replaces the entity if it still has ``etag`` (``"*"``: if it exists at all, Table storage's
        ``If-Match: *``); ``RecordConflict`` if it changed or is gone."""
        ...
    def upsert(self, table: str, entity: Mapping[str, Any]) -> str: ...
    def delete(self, table: str, pk: str, rk: str, *, etag: str | None = None) -> None: ...
    def partition(self, table: str, pk: str) -> list[dict[str, Any]]: ...
    def partitions(self, table: str, pks: Sequence[str], *, select: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """The rows of several partitions, with one request per 15 keys (not one each)."""
        ...
    def range(self, table: str, *, pk_from: str | None = None, pk_to: str | None = None,
              rk_from: str | None = None, rk_to: str | None = None, pk: str | None = None,
              select: list[str] | None = None) -> Iterator[dict[str, Any]]: ...
    def query(self, table: str, any_of: Sequence[Sequence[Cond]], *,
              select: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """The rows that match all comparisons of any one group, filtered by the store (a request returns
        up to 1,000 matching rows, however many it passed over); at most 15 comparisons in all."""
        ...
    def changed(self, table: str, *, since: str | None,
                select: list[str] | None = None) -> tuple[list[dict[str, Any]], str]:
        """The rows inserted or replaced since the watermark ``since`` (None: every row), and the watermark
        for the next call. Rows written shortly before ``since`` may come again; none written after it is
        missed. Deletions are not reported."""
        ...


# --- Photos (Blob storage) --------------------------------------------------------------------
class PhotoStorePort(Protocol):
    def upload_url(self, blob_name: str, *, expires_on: datetime) -> str: ...
    def kept_read_url(self, kept_name: str, *, expires_on: datetime) -> str: ...
    def delete_upload(self, blob_name: str) -> bool: ...
    def list_uploads(self, prefix: str = "") -> list[str]: ...
    def keep(self, kept_name: str, data: bytes) -> None: ...
    def read_kept(self, kept_name: str) -> bytes: ...
    def list_kept(self, prefix: str = "") -> list[str]: ...
    def delete_kept(self, kept_name: str) -> bool: ...


# --- Photo validation (decoding a stranger's file) -----------------------------------------------
class ImageCheckPort(Protocol):
    """Validates one upload and re-encodes it from pixels (shared/images.py): the photo Face sees, or
    ``shared.images.ImageRejected`` with a reason a person can act on."""

    @property
    def max_bytes(self) -> int: ...
    def validate(self, data: bytes) -> ValidatedImage: ...


# --- Readiness probes ---------------------------------------------------------------------------
# Each probe returns on success and raises shared.errors.ProbeNotFound / ProbeDenied / ProbeUnreachable
# (never an SDK error, never a message holding a key, a connection string or a token).
class StorageProbePort(Protocol):
    def ensure_tables(self, tables: Sequence[str]) -> list[str]:
        """Each table (names without the app's prefix) exists afterwards; returns those created now, as the
        app would on first use (proving its identity may)."""
        ...

    def ensure_container(self, container: str) -> bool:
        """The container exists afterwards; True if it was created now."""
        ...


class BusProbePort(Protocol):
    def check_queue(self, queue: str) -> None:
        """The queue exists and the app may receive from it (a peek: nothing is locked or consumed)."""
        ...

    def check_subscription(self, topic: str, subscription: str) -> None:
        """The topic subscription exists and the app may receive from it (a peek)."""
        ...


# --- Ledger anchors (a WORM blob container) -----------------------------------------------------
class AnchorStorePort(Protocol):
    """Write-once documents: in Azure a container with a locked time-based retention policy."""

    def write_anchor(self, name: str, data: bytes) -> bool: ...  # False when it exists already (never overwritten)
    def list_anchors(self) -> list[str]: ...
    def read_anchor(self, name: str) -> bytes: ...
