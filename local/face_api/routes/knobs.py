"""The ``/_emulator/*`` knobs (no auth, not counted): health, stats, reset and config, with the config's
defaults (:data:`DEFAULT_CONFIG`) and the validation of a config change (:meth:`KnobRoutes.configure`)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

from local.face_api.routes.base import EmulatorState, Response
from local.face_api.routes.validation import bad
from local.face_api.store import ApiError

DEFAULT_CONFIG: dict[str, Any] = {
    "rateLimitPerSecond": None, "latencyMs": 0, "faultRate": 0.0, "faultStatuses": [500, 503],
    "slowRate": 0.0, "slowMs": 0, "failNext": [], "synthetic": False,
    "trainBaseMs": 50, "trainPerFaceUs": 5.0, "seed": None,
    "limitedAccessApproved": True, "unsupportedFeatureShape": "documented",
}

#: The two shapes of the Limited Access 403 that server.unsupported_feature renders.
UNSUPPORTED_FEATURE_SHAPES = ("documented", "observed")

#: A knob's handler takes the request body.
Knob = Callable[[bytes], Response]


class KnobRoutes(EmulatorState):
    synthetic_default: bool  # --synthetic and the Limited Access env var: what a reset goes back to
    limited_access_default: bool
    _rng: random.Random  # the pipeline's fault and slow-call draws; "seed" makes them repeatable
    _tokens: float  # the pipeline's token bucket, refilled when "rateLimitPerSecond" is set
    _token_time: float

    def knob_routes(self) -> dict[tuple[str, str], Knob]:
        """Apart from the Face route table: ``Emulator.handle`` answers these before the pipeline, so no
        version prefix, no key, no injected fault and no counting."""
        return {
            ("GET", "/_emulator/health"): lambda body: Response(200, {"status": "ok"}),
            ("GET", "/_emulator/stats"): lambda body: Response(200, self.stats()),
            ("POST", "/_emulator/reset"): self._reset_knob,
            ("GET", "/_emulator/config"): lambda body: Response(200, self.configure({})),
            ("POST", "/_emulator/config"): self._config_knob,
        }

    def _knob(self, method: str, path: str, body: bytes) -> Response:
        knob = self.knob_routes().get((method, path))
        if knob is None:
            return Response(404, {"error": {"code": "NotFound", "message": "Unknown emulator knob."}})
        try:
            return knob(body)
        except ApiError as e:
            return Response(e.status, {"error": {"code": e.code, "message": e.message}})

    def _reset_knob(self, body: bytes) -> Response:
        self.reset()
        return Response(200, {"status": "reset"})

    def _config_knob(self, body: bytes) -> Response:
        try:
            cfg = json.loads(body or b"{}")
        except ValueError as exc:
            raise bad("Invalid JSON.") from exc
        if not isinstance(cfg, dict):
            raise bad("Config must be a JSON object.")
        return Response(200, self.configure(cfg))

    def _reset_config(self) -> None:
        with self._cfg_lock:
            self.config = dict(json.loads(json.dumps(DEFAULT_CONFIG)))
            self.config["synthetic"] = self.synthetic_default
            self.config["limitedAccessApproved"] = self.limited_access_default
            self._rng = random.Random()
            self._apply_training_knobs()

    def _apply_training_knobs(self) -> None:
        self.store.train_base_s = float(self.config["trainBaseMs"]) / 1000.0
        self.store.train_per_face_s = float(self.config["trainPerFaceUs"]) / 1e6

    def _reset_stats(self) -> None:
        with self._stats_lock:
            self.calls = 0
            self.throttled = 0
            self.faults = 0
            self.by_status: dict[str, int] = {}
            # Time with at least one Face call in flight (the union of the calls' intervals): a client's
            # wall time against it shows how much of the wall time is the client's own.
            self._in_flight = 0
            self._busy_since = 0.0
            self._busy_s = 0.0
            # Per route ("POST /train", ...), every request counted, throttled and faulted ones too: the
            # load bench reports Face calls by kind and trainings per burst from these.
            self.by_operation: dict[str, int] = {}
            self.train_accepted = 0  # train requests answered 202 (a request may join a running training)
            self.training_ops = set()  # distinct training operations those requests started

    def configure(self, cfg: dict[str, Any]) -> dict[str, Any]:
        def num(name: str, lo: float, hi: float, *, allow_none: bool = False, integer: bool = False) -> None:
            if name not in cfg:
                return
            v = cfg[name]
            if v is None and allow_none:
                return
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise bad(f"'{name}' must be a number in [{lo}, {hi}].")
            if integer and int(v) != v:
                raise bad(f"'{name}' must be an integer.")

        unknown = set(cfg) - set(DEFAULT_CONFIG)
        if unknown:
            raise bad(f"Unknown config keys: {sorted(unknown)}.")
        num("rateLimitPerSecond", 1e-6, 1e9, allow_none=True)
        num("latencyMs", 0, 600_000, integer=True)
        num("faultRate", 0, 1)
        num("slowRate", 0, 1)
        num("slowMs", 0, 600_000, integer=True)
        num("trainBaseMs", 0, 3_600_000)
        num("trainPerFaceUs", 0, 1e6)
        if "faultStatuses" in cfg:
            fs = cfg["faultStatuses"]
            if not isinstance(fs, list) or not fs or not all(isinstance(s, int) and 400 <= s <= 599 for s in fs):
                raise bad("'faultStatuses' must be a non-empty list of HTTP error statuses.")
        if "failNext" in cfg:
            fn = cfg["failNext"]
            if not isinstance(fn, list):
                raise bad("'failNext' must be a list.")
            for item in fn:
                if (not isinstance(item, dict) or not isinstance(item.get("status"), int)
                        or not 400 <= item["status"] <= 599
                        or not (item.get("retryAfter") is None or isinstance(item.get("retryAfter"), int))):
                    raise bad("'failNext' items are {\"status\": 429|500|503, \"retryAfter\": int|null}.")
        if "synthetic" in cfg and not isinstance(cfg["synthetic"], bool):
            raise bad("'synthetic' must be a boolean.")
        if "limitedAccessApproved" in cfg and not isinstance(cfg["limitedAccessApproved"], bool):
            raise bad("'limitedAccessApproved' must be a boolean.")
        if "unsupportedFeatureShape" in cfg and cfg["unsupportedFeatureShape"] not in UNSUPPORTED_FEATURE_SHAPES:
            raise bad("'unsupportedFeatureShape' must be one of " + ", ".join(UNSUPPORTED_FEATURE_SHAPES) + ".")
        with self._cfg_lock:
            for k, v in cfg.items():
                if k == "failNext":
                    self.config[k] = [{"status": i["status"], "retryAfter": i.get("retryAfter")} for i in v]
                else:
                    self.config[k] = v
            if "seed" in cfg:
                self._rng = random.Random(cfg["seed"])
            if "rateLimitPerSecond" in cfg and cfg["rateLimitPerSecond"] is not None:
                self._tokens = max(1.0, float(cfg["rateLimitPerSecond"]))
                self._token_time = time.monotonic()
            self._apply_training_knobs()
            snapshot: dict[str, Any] = json.loads(json.dumps(self.config))
            return snapshot

    def stats(self) -> dict[str, Any]:
        with self._stats_lock:
            busy = self._busy_s + (time.monotonic() - self._busy_since if self._in_flight else 0.0)
            return {"calls": self.calls, "throttled": self.throttled, "faults": self.faults, "busySeconds": busy,
                    "byStatus": dict(self.by_status), "byOperation": dict(self.by_operation),
                    "trainRequests": self.train_accepted, "trainings": len(self.training_ops),
                    "personIds": list(self.store.person_ids_issued)}

    def reset(self) -> None:
        self.store.reset()
        self.face_ids.clear()
        self._reset_config()
        self._reset_stats()
