"""Robustness of the image checks: mutated JPEGs and arbitrary bytes never crash them, only a refusal
with a known code. Each example runs the real decoding sandbox (a forked process under CPU and memory
limits), which is why these properties sit in the integration tier and not in `make test-fast`."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import images
from shared.images import ImageRejected, validate_image
from tests.unit.test_images import encode, noise

pytestmark = pytest.mark.integration

# --- robustness ----------------------------------------------------------------------------------

SAMPLE_JPEG = encode(noise((64, 48)), "JPEG")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_jpegs_never_crash(data: st.DataObject) -> None:
    blob = bytearray(SAMPLE_JPEG)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(blob) - 1))
        blob[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1024, len(blob)))
    try:
        result = validate_image(bytes(blob[:cut]))
    except ImageRejected as err:
        assert err.code in {"notAnImage", "tooSmall", "tooManyPixels", "tooLarge", "tooCostly"}
    else:
        assert result.format in {"JPEG", "PNG"} and result.width * result.height <= images.MAX_PIXELS


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1024, max_size=4096))
def test_arbitrary_bytes_never_crash(blob: bytes) -> None:
    try:
        validate_image(blob)
    except ImageRejected as err:
        # Bytes that happen to start like a GIF or BMP header may be refused for what that header declares.
        assert err.code in {"notAnImage", "tooManyPixels", "tooSmall"}
