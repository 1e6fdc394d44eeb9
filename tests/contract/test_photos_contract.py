"""PhotoStorePort: FakePhotos and BlobPhotoStore (Azurite) answer the same way."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.errors import PhotoNotFound
from tests.contract.conftest import PhotoStoreUnderTest


def test_uploads_listed_by_prefix_and_deleted_once(photo_store: PhotoStoreUnderTest) -> None:
    store = photo_store.store
    url = store.upload_url("s1/u1", expires_on=datetime.now(timezone.utc) + timedelta(minutes=5))
    assert "s1/u1" in url
    photo_store.put("s1/u1", b"x" * 10)
    photo_store.put("s1/u2", b"y" * 10)
    photo_store.put("s2/u3", b"z" * 10)
    assert store.list_uploads("s1/") == ["s1/u1", "s1/u2"]
    assert sorted(store.list_uploads()) == ["s1/u1", "s1/u2", "s2/u3"]
    assert store.delete_upload("s1/u1") is True
    assert store.delete_upload("s1/u1") is False
    assert store.delete_upload("never/there") is False
    assert store.list_uploads("s1/") == ["s1/u2"]


def test_kept_photos_round_trip(photo_store: PhotoStoreUnderTest) -> None:
    store = photo_store.store
    store.keep("tok/a.jpg", b"first")
    store.keep("tok/a.jpg", b"second")  # overwrite
    store.keep("tok/b.jpg", b"b")
    store.keep("other/c.jpg", b"c")
    assert store.read_kept("tok/a.jpg") == b"second"
    assert store.list_kept("tok/") == ["tok/a.jpg", "tok/b.jpg"]
    assert store.delete_kept("tok/a.jpg") is True
    assert store.delete_kept("tok/a.jpg") is False
    with pytest.raises(PhotoNotFound):
        store.read_kept("tok/a.jpg")
    assert store.list_kept("tok/") == ["tok/b.jpg"]
