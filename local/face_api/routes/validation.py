"""Argument checks shared by the emulator's routes: ids, models, body text fields, query flags and paging.

Each raises the service's 400 ``BadArgument`` (:func:`bad`) with the message Face sends.
"""

from __future__ import annotations

import re
from typing import Any

from local.face_api.model import DETECTION_MODELS
from local.face_api.store import ApiError

ID_RE = re.compile(r"^[a-z0-9-_]{1,64}$")


def bad(message: str) -> ApiError:
    return ApiError(400, "BadArgument", message)


def check_id(value: str, what: str) -> str:
    if not ID_RE.match(value):
        raise bad(f"Invalid {what}.")
    return value


def check_model(value: Any, models: tuple[str, ...]) -> str:
    """A recognition model this emulator serves (the built-in ones and ``--extra-models``)."""
    if not isinstance(value, str) or value not in models:
        raise bad("Invalid recognition model. Supported: " + ", ".join(models) + ".")
    return value


def detection_model(value: str | None) -> str:
    value = value or "detection_01"
    if value not in DETECTION_MODELS:
        raise bad("Invalid detection model.")
    return value


def text(body: dict[str, Any], name: str, max_len: int, *, required: bool = False) -> str | None:
    v = body.get(name)
    if v is None:
        if required:
            raise bad(f"'{name}' is required.")
        return None
    if not isinstance(v, str) or (required and not v) or len(v) > max_len:
        raise bad(f"'{name}' is empty, not a string or too long.")
    return v


def changes(body: dict[str, Any], user_data_max: int) -> dict[str, Any]:
    """The fields a PATCH of a group or a person sets: only those present in the body."""
    out: dict[str, Any] = {}
    if "name" in body:
        out["name"] = text(body, "name", 128, required=True)
    if "userData" in body:
        out["userData"] = text(body, "userData", user_data_max)
    return out


def query_bool(q: dict[str, str], name: str, default: bool) -> bool:
    v = q.get(name)
    if v is None or v == "":
        return default
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    raise bad(f"Invalid '{name}'.")


def paging(q: dict[str, str]) -> tuple[str | None, int]:
    """``start`` (None: from the first) and ``top`` (default 1000) of a list call."""
    top = q.get("top") or "1000"
    try:
        n = int(top)
    except ValueError as exc:
        raise bad("Invalid 'top'.") from exc
    if not 1 <= n <= 1000:
        raise bad("'top' must be in [1, 1000].")
    return (q.get("start") or None), n
