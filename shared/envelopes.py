"""The message edge: message bodies to commands and back, and what a refused message becomes.

Every queue and topic body the app reads or writes is defined here, once: ``decode_*`` parses a
body into a command (``Invalid`` when it breaks the contract), ``*_message`` encodes a command as
an ``OutgoingMessage``. ``deliver`` runs one message through a service and maps the outcome:

=====================================  ===========================================================
raised by the parse or the service     outcome
=====================================  ===========================================================
``Invalid``, ``NotFound``               dead-letter: ``MessageRejected`` is raised, so the message is
                                        redelivered until Service Bus dead-letters it; the first
                                        delivery writes one ``message.rejected`` audit entry
other ``DomainError``                   complete: nothing to do (audited as ``message.ignored``)
anything else                           retry: the exception propagates and the platform redelivers
=====================================  ===========================================================
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

from shared.commands import (
    HrTermination,
    ReenrollCheck,
    ReenrollControl,
    ReenrollFanout,
    ReenrollWork,
    Revoke,
    StartReenrollment,
)
from shared.domain.enrollment import iso, parse_iso
from shared.errors import DomainError, Invalid, MessageRejected, NotFound
from shared.ports import OutgoingMessage

# Package data beside the code: the deployment package ships shared/ but not docs/.
HR_SCHEMA = Path(__file__).resolve().parent / "contracts" / "hr-events.schema.json"

T = TypeVar("T")
C = TypeVar("C")


class Outcome(Enum):
    COMPLETE = "complete"
    RETRY = "retry"
    DEAD_LETTER = "deadLetter"


def outcome_for(exc: BaseException) -> Outcome:
    if isinstance(exc, (Invalid, NotFound)):
        return Outcome.DEAD_LETTER
    if isinstance(exc, DomainError):
        return Outcome.COMPLETE
    return Outcome.RETRY


class AuditPort(Protocol):  # the one method deliver needs (shared.services.audit.AuditLog)
    def write(self, action: str, *, actor: str, subject: str | None = None, **details: object) -> str: ...


def deliver(body: bytes, parse: Callable[[bytes], C], run: Callable[[C], T], *, audit: AuditPort, source: str,
            message_id: str, delivery_count: int) -> T | None:
    """Parses ``body`` and runs the command; maps a refusal to its outcome (table above)."""
    try:
        return run(parse(body))
    except DomainError as exc:
        outcome = outcome_for(exc)
        if outcome is Outcome.DEAD_LETTER:
            if delivery_count <= 1:  # redelivered until dead-lettered: one audit entry, not one per delivery
                audit.write("message.rejected", actor="system", source=source, messageId=message_id[:128],
                            reason=exc.reason[:300])
            raise MessageRejected(exc.reason) from exc
        audit.write("message.ignored", actor="system", source=source, messageId=message_id[:128], code=exc.code,
                    reason=exc.reason[:300])
        return None


# --- decoding --------------------------------------------------------------------------------------
def _object(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise Invalid(f"{what} is not JSON") from exc
    if not isinstance(doc, dict):
        raise Invalid(f"{what} is not a JSON object")
    return doc


def _text(doc: Mapping[str, Any], key: str, what: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise Invalid(f"malformed {what}: {key} is missing")
    return value


def decode_revoke(body: bytes) -> Revoke:
    doc = _object(body, "revocation command")
    return Revoke(user_key=_text(doc, "userKey", "revocation command"),
                  request_id=_text(doc, "requestId", "revocation command"),
                  reason=str(doc.get("reason") or "revoked"), requested_by=str(doc.get("requestedBy") or "system"))


@lru_cache(maxsize=1)
def _hr_validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(HR_SCHEMA.read_text()))


def parse_effective(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def decode_hr_event(body: bytes, *, termination_types: tuple[str, ...]) -> HrTermination | None:
    """An HR CloudEvent; None when its type is not a termination (the message completes)."""
    event = _object(body, "HR event")
    errors = sorted(_hr_validator().iter_errors(event), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(root)"
        # The keyword, never the validator's message: that message quotes the value (an employee id).
        raise Invalid(f"HR event does not match shared/contracts/hr-events.schema.json at {where}: "
                      f"the '{errors[0].validator}' rule fails")
    if event["type"] not in termination_types:
        return None
    try:
        effective = parse_effective(str(event["data"]["effectiveDate"]))
    except ValueError as exc:
        raise Invalid("effectiveDate is not a date") from exc
    return HrTermination(event_id=str(event["id"]), source=str(event["source"]),
                         employee_id=str(event["data"]["employeeId"]), effective=effective)


def decode_control(body: bytes) -> ReenrollControl:
    doc = _object(body, "model-updates message")
    action = doc.get("action", "start")
    if action == "start":
        model = doc.get("recognitionModel")
        if not isinstance(model, str) or not model.startswith("recognition_"):
            raise Invalid("recognitionModel must name a recognition model, e.g. recognition_05.")
        return StartReenrollment(recognition_model=model, requested_by="model-updates")
    run_id = _text(doc, "runId", "model-updates message")
    if action == "fanout":
        return ReenrollFanout(run_id=run_id, after=str(doc.get("after") or ""),
                              slot_at=parse_iso(doc.get("slotAt") if isinstance(doc.get("slotAt"), str) else None))
    if action == "check":
        seq = doc.get("seq") or 0
        if not isinstance(seq, int):
            raise Invalid("malformed model-updates message: seq is not a number")
        return ReenrollCheck(run_id=run_id, seq=seq)
    raise Invalid(f"unknown model-updates action {str(action)[:40]!r}")


def decode_work(body: bytes) -> ReenrollWork:
    doc = _object(body, "re-enrollment work item")
    return ReenrollWork(run_id=_text(doc, "runId", "re-enrollment work item"),
                        user_key=_text(doc, "userKey", "re-enrollment work item"))


# --- encoding --------------------------------------------------------------------------------------
def _json(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def revoke_message(command: Revoke, *, not_before: datetime | None = None) -> OutgoingMessage:
    """The request id is the message id: Service Bus duplicate detection drops a repeated request."""
    return OutgoingMessage(body=_json({"userKey": command.user_key, "requestId": command.request_id,
                                       "requestedBy": command.requested_by, "reason": command.reason}),
                           message_id=command.request_id, scheduled_enqueue_time=not_before,
                           application_properties={"kind": "revocation"})


def control_message(command: ReenrollControl, *, message_id: str, at: datetime | None = None) -> OutgoingMessage:
    doc: dict[str, Any]
    if isinstance(command, StartReenrollment):
        doc = {"action": "start", "recognitionModel": command.recognition_model}
    elif isinstance(command, ReenrollFanout):
        doc = {"action": "fanout", "runId": command.run_id, "after": command.after,
               "slotAt": iso(command.slot_at) if command.slot_at else None}
    else:
        doc = {"action": "check", "runId": command.run_id, "seq": command.seq}
    return OutgoingMessage(body=_json(doc), message_id=message_id, scheduled_enqueue_time=at,
                           application_properties={"kind": f"reenroll.{doc['action']}"})


def work_message(command: ReenrollWork, *, message_id: str, at: datetime | None = None) -> OutgoingMessage:
    return OutgoingMessage(body=_json({"runId": command.run_id, "userKey": command.user_key}), message_id=message_id,
                           scheduled_enqueue_time=at, application_properties={"kind": "reenroll.work"})
