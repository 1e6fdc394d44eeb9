"""The photo check the app runs: shared/images.py with the limits the settings ask for, the decoding
in a sandboxed process (its own CPU, memory and wall-clock budget), so a hostile file costs at most
its budget and cannot crash or stall the worker that received it."""

from __future__ import annotations

from shared.images import ImageLimits, ValidatedImage, limits_from, validate_image
from shared.settings import Settings


class SandboxedImageCheck:
    def __init__(self, limits: ImageLimits) -> None:
        self._limits = limits

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxedImageCheck:
        return cls(limits_from(settings))

    @property
    def max_bytes(self) -> int:
        return self._limits.max_bytes

    def validate(self, data: bytes) -> ValidatedImage:
        return validate_image(data, self._limits)
