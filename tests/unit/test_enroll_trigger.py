"""The enroll trigger checks the blob's declared length before reading it, and never reads past the limit."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from functions.enroll import MAX_UPLOAD_BYTES, enroll
from shared import bootstrap

pytestmark = pytest.mark.unit


class Stream:
    def __init__(self, length: int | None, data: bytes = b"") -> None:
        self.name = "uploads/session/upload"
        self.length = length
        self.data = data
        self.reads: list[int] = []

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        return self.data if size < 0 else self.data[:size]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    def process_upload(command: Any) -> str:
        seen.append({"blob_name": command.blob_name, "content": command.content,
                     "declared_size": command.declared_size})
        return "ok"

    fake = SimpleNamespace(enrollment=SimpleNamespace(process_upload=process_upload))
    monkeypatch.setattr(bootstrap, "services", lambda: fake)
    return seen


def trigger(stream: Stream) -> None:
    enroll.build().get_user_function()(stream)


def test_an_oversized_blob_is_not_read(calls: list[dict[str, Any]]) -> None:
    stream = Stream(length=5 * 1024**3)  # 5 GiB declared: what a create-only SAS cannot prevent
    trigger(stream)
    assert stream.reads == []
    assert calls == [{"blob_name": "session/upload", "content": b"", "declared_size": 5 * 1024**3}]


def test_reads_stop_one_byte_past_the_limit(calls: list[dict[str, Any]]) -> None:
    stream = Stream(length=None, data=b"x" * (MAX_UPLOAD_BYTES + 100))
    trigger(stream)
    assert stream.reads == [MAX_UPLOAD_BYTES + 1]
    assert len(calls[0]["content"]) == MAX_UPLOAD_BYTES + 1  # validate_image then refuses it as tooLarge


def test_the_trigger_limit_is_the_image_limit() -> None:
    from shared import images

    assert images.MAX_BYTES == MAX_UPLOAD_BYTES
