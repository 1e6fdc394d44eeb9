"""Discovers functions from the real decorators and invokes them with real ``azure.functions`` objects.

The objects are built by the library's own converters (``get_binding_registry()``), which is the
path the Python worker takes when the Functions host sends it an invocation.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
from azure.functions import meta

log = logging.getLogger("local.host")

_SETTING_REF = re.compile(r"%([A-Za-z0-9_.:-]+)%")


class HostError(Exception):
    """A problem the caller caused (unknown function, bad input): reported as a 4xx."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class UndefinedSetting(HostError):
    pass


def resolve_setting_refs(value: Any, env: Mapping[str, str], defaults: Mapping[str, str | None]) -> Any:
    """Replaces ``%NAME%`` with the app setting, as the Functions host does for binding values."""
    if not isinstance(value, str):
        return value

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        found = env.get(name) or defaults.get(name)
        if found is None:
            raise UndefinedSetting(f"binding refers to app setting %{name}% which is not defined")
        return found

    return _SETTING_REF.sub(sub, value)


class Out(func.Out):  # type: ignore[type-arg]
    """The concrete ``func.Out`` the worker hands to a function for an output binding."""

    def __init__(self) -> None:
        self._value: Any = None
        self.was_set = False

    def set(self, val: Any) -> None:
        self._value = val
        self.was_set = True

    def get(self) -> Any:
        return self._value


@dataclass
class FunctionInfo:
    name: str
    trigger: dict[str, Any]
    bindings: list[dict[str, Any]]
    user_function: Callable[..., Any]

    @property
    def trigger_type(self) -> str:
        return str(self.trigger["type"])

    @property
    def trigger_arg(self) -> str:
        return str(self.trigger["name"])

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return [b for b in self.bindings if str(b.get("direction", "")).upper() == "OUT" and b["name"] != "$return"]


@dataclass
class InvocationResult:
    function: str
    invocation_id: str
    ok: bool
    value: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    duration_ms: float = 0.0


@dataclass
class _Context:
    invocation_id: str
    function_name: str
    function_directory: str = ""
    trace_context: Any = None
    retry_context: Any = None


def load_app(spec: str) -> func.FunctionApp:
    """``module`` or ``module:attribute``; without an attribute the module's FunctionApp is found."""
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    if attr:
        app = getattr(module, attr)
    else:
        found = [v for v in vars(module).values() if isinstance(v, func.FunctionApp)]
        if len(found) != 1:
            raise HostError(f"{module_name} must define exactly one FunctionApp, found {len(found)}")
        app = found[0]
    if not isinstance(app, func.FunctionApp):
        raise HostError(f"{spec} is not a FunctionApp")
    return app


def discover(app: func.FunctionApp) -> dict[str, FunctionInfo]:
    # get_functions() may be called once per app instance (a second call raises), so the
    # table built here is the only view the host keeps.
    table: dict[str, FunctionInfo] = {}
    for f in app.get_functions():
        doc = json.loads(f.get_function_json())
        bindings = list(doc["bindings"])
        trigger = next(b for b in bindings if str(b.get("type", "")).endswith("Trigger"))
        name = str(f.get_function_name())
        table[name] = FunctionInfo(name, trigger, bindings, f.get_user_function())
    return table


def datum(value: Any) -> meta.Datum:
    """Wraps a Python value the way the worker receives typed data from the host."""
    if isinstance(value, meta.Datum):
        return value
    if isinstance(value, bool):
        return meta.Datum(json.dumps(value), "json")
    if isinstance(value, int):
        return meta.Datum(value, "int")
    if isinstance(value, float):
        return meta.Datum(value, "double")
    if isinstance(value, bytes):
        return meta.Datum(value, "bytes")
    if isinstance(value, str):
        return meta.Datum(value, "string")
    return meta.Datum(json.dumps(value), "json")


class Invoker:
    def __init__(self, functions: dict[str, FunctionInfo]) -> None:
        self.functions = functions

    def get(self, name: str) -> FunctionInfo:
        info = self.functions.get(name)
        if info is None:
            known = ", ".join(sorted(self.functions)) or "none"
            raise HostError(f"unknown function {name!r} (known: {known})", status=404)
        return info

    def decode(self, info: FunctionInfo, data: meta.Datum, metadata: Mapping[str, Any]) -> Any:
        converter = func.get_binding_registry().get(info.trigger_type)  # type: ignore[no-untyped-call]
        if converter is None:
            raise HostError(f"no converter for trigger type {info.trigger_type}")
        return converter.decode(data, trigger_metadata={k: datum(v) for k, v in metadata.items()})

    def invoke(self, info: FunctionInfo, trigger_value: Any) -> InvocationResult:
        invocation_id = str(uuid.uuid4())
        kwargs: dict[str, Any] = {}
        outs: dict[str, Out] = {}
        params = inspect.signature(info.user_function).parameters
        for b in info.outputs:
            outs[b["name"]] = Out()
            kwargs[b["name"]] = outs[b["name"]]
        kwargs[info.trigger_arg] = trigger_value
        if "context" in params:
            kwargs["context"] = _Context(invocation_id, info.name)
        kwargs = {k: v for k, v in kwargs.items() if k in params}
        started = time.perf_counter()
        try:
            value = info.user_function(**kwargs)
            if inspect.isawaitable(value):
                value = asyncio.run(_await(value))
        except Exception as exc:  # the function failed: the trigger decides (retry, abandon, 500)
            log.warning("function %s invocation %s failed: %s", info.name, invocation_id, exc.__class__.__name__)
            log.debug("failure detail", exc_info=True)
            return InvocationResult(info.name, invocation_id, False, error=f"{exc.__class__.__name__}: {exc}",
                                    duration_ms=(time.perf_counter() - started) * 1000)
        return InvocationResult(info.name, invocation_id, True, value=value,
                                outputs={k: o.get() for k, o in outs.items() if o.was_set},
                                duration_ms=(time.perf_counter() - started) * 1000)


async def _await(value: Any) -> Any:
    return await value
