"""json_body bounds what a request body may cost: its size (413) and its nesting depth (400)."""

from __future__ import annotations

import json

import pytest

from shared.errors import RequestRejected
from shared.http_api import MAX_BODY_BYTES, MAX_JSON_DEPTH, handle, json_body

pytestmark = pytest.mark.unit


def nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def test_a_body_over_the_size_limit_is_413() -> None:
    body = json.dumps({"pad": "x" * MAX_BODY_BYTES}).encode()
    with pytest.raises(RequestRejected) as info:
        json_body(body)
    assert info.value.status == 413 and info.value.code == "PayloadTooLarge"
    assert str(MAX_BODY_BYTES) in info.value.reason


def test_a_body_at_the_size_limit_is_read() -> None:
    body = json.dumps({"pad": ""}).encode()
    body = body[:-1] + b" " * (MAX_BODY_BYTES - len(body)) + body[-1:]
    assert len(body) == MAX_BODY_BYTES
    assert json_body(body) == {"pad": ""}


def test_nesting_deeper_than_the_limit_is_400() -> None:
    assert json_body(nested(MAX_JSON_DEPTH)) is not None
    with pytest.raises(RequestRejected) as info:
        json_body(nested(MAX_JSON_DEPTH + 1))
    assert info.value.status == 400 and "deeply" in info.value.reason


def test_a_body_nested_beyond_pythons_recursion_limit_is_400_not_500() -> None:
    deep = b"[" * 30_000 + b"]" * 30_000  # 60 KB: under the size limit, far beyond the recursion limit
    reply = handle(lambda: json_body(deep) and None)  # type: ignore[func-returns-value]
    assert reply.status == 400


def test_brackets_inside_strings_do_not_count() -> None:
    body = json.dumps({"text": "[[[[{{{{" * 100, "escaped": '\\"[[[['}).encode()
    assert json_body(body)["text"].startswith("[[[[")
