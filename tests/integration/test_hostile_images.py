"""Hostile photos: every file of the generated corpus is refused (or, for the ordinary controls,
accepted) by checks that bound its cost, and decoding itself runs under a CPU, memory and time budget.

Costs are measured by bench/bench_hostile.py, not here: these tests assert outcomes only."""

from __future__ import annotations

import functools
import io
import time

import pytest
from PIL import Image

from shared import images
from shared.images import ImageRejected, validate_image
from tests.hostile import corpus

pytestmark = pytest.mark.integration

COSTLY = "tooCostly"


@functools.cache
def hostile(name: str) -> bytes:
    return corpus.BUILDERS[name]()


def refused(data: bytes, **kwargs: object) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        validate_image(data, **kwargs)  # type: ignore[arg-type]
    return info.value


def test_progressive_scan_bomb_is_refused_before_decoding() -> None:
    # 1,000 empty AC scans over a frame well inside the pixel limits: only counting scans stops it.
    bomb = corpus.progressive_scan_bomb(1024, 1024, ac_scans=1000)
    err = refused(bomb)
    assert err.code == COSTLY
    assert "too costly to process" in err.reason


def test_a_progressive_jpeg_with_an_ordinary_scan_count_is_accepted() -> None:
    ok = corpus.progressive_scan_bomb(256, 256, ac_scans=images.MAX_JPEG_SCANS - 1)
    assert validate_image(ok, min_bytes=1).width == 256  # flat grey: its re-encoding is under 1 KB


def test_dimensions_beyond_the_face_limit_are_refused_before_decoding() -> None:
    # 4100 x 64 is only 0.26 MP: the per-side limit (4096, what Face can use) refuses it, not the pixel count.
    err = refused(corpus.striped_png(4100, 64))
    assert err.code == "tooManyPixels"
    assert "4096" in err.reason


def test_a_photo_smaller_than_the_smallest_detectable_face_is_refused() -> None:
    small = io.BytesIO()
    Image.effect_noise((35, 200), 64).convert("RGB").save(small, "PNG")
    assert refused(small.getvalue(), min_bytes=1).code == "tooSmall"


HOSTILE = sorted(corpus.REFUSED)


@pytest.mark.parametrize("name", HOSTILE)
def test_every_hostile_file_of_the_corpus_is_refused(name: str) -> None:
    err = refused(hostile(name))
    assert err.code in {"tooSmall", "tooLarge", "notAnImage", "tooManyPixels", COSTLY}
    assert err.reason.endswith(".")


@pytest.mark.parametrize("name", sorted(corpus.ACCEPTED))
def test_ordinary_controls_of_the_corpus_are_accepted(name: str) -> None:
    result = validate_image(hostile(name))
    assert result.format in {"JPEG", "PNG"} and result.reencoded


def test_decoding_runs_under_a_memory_budget() -> None:
    # An ordinary photo, but a budget far below what decoding it needs: the worker is refused memory,
    # and the upload is refused as too costly rather than taking the process down.
    photo = hostile("ok-jpeg-4032x3024")
    assert refused(photo, memory_mb=8).code == COSTLY


def test_decoding_runs_under_a_time_budget() -> None:
    photo = hostile("ok-jpeg-4032x3024")
    assert refused(photo, wall_seconds=0.001).code == COSTLY


def test_decoding_runs_under_a_cpu_budget() -> None:
    # RLIMIT_CPU has whole-second resolution; 1 s of CPU is far below what 10,000 scans need once the
    # scan cap is lifted, so the kernel stops the worker.
    bomb = hostile("jpeg-scan-bomb-10000")
    err = refused(bomb, max_scans=10**6, max_side=10_000, max_pixels=10**8, cpu_seconds=1.0, wall_seconds=60)
    assert err.code == COSTLY


def test_the_cpu_budget_holds_to_a_fraction_of_a_second() -> None:
    # A decode of about 1.2 s of CPU here (700 empty scans over 4096 x 4096) against a budget of 0.25 s. The
    # budget once rounded up to whole seconds from the worker's own rounded-up start, so this decode ran to
    # its end inside a budget that allowed up to 2 s.
    bomb = corpus.progressive_scan_bomb(4096, 4096, ac_scans=700)
    started = time.monotonic()
    err = refused(bomb, max_scans=10**6, cpu_seconds=0.25, wall_seconds=60)
    assert err.code == COSTLY
    assert time.monotonic() - started < 5.0
