"""docs/openapi.json documents exactly the HTTP routes function_app registers, with the same methods.

(The spec is JSON, which is also valid YAML: PyYAML is not a dependency of this project.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "docs" / "openapi.json"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
ROUTE_PREFIX = "/api"  # host.json sets no routePrefix, so the default applies


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return doc


@pytest.fixture(scope="module")
def registered() -> set[tuple[str, str]]:
    from tests.fixtures.function_json import function_docs

    routes: set[tuple[str, str]] = set()
    for f in function_docs():
        for b in f["bindings"]:
            if b.get("type") != "httpTrigger":
                continue
            route = b.get("route") or f["name"]
            methods = b.get("methods") or []
            assert methods, f"{f['name']} accepts every method; list them so the spec can document them"
            # A catch-all {*name} is documented as the path parameter {name} (OpenAPI has no catch-all).
            route = re.sub(r"\{\*(\w+)\}", r"{\1}", route)
            for m in methods:
                routes.add((f"{ROUTE_PREFIX}/{route.strip('/')}", m.lower()))
    assert routes, "function_app registers no HTTP routes"
    return routes


@pytest.fixture(scope="module")
def documented(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, item in spec["paths"].items() for method in item if method in HTTP_METHODS}


def test_spec_is_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1.")
    scheme = spec["components"]["securitySchemes"]["appServicePrincipal"]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": "X-MS-CLIENT-PRINCIPAL"}


def test_every_registered_route_is_documented(registered: set[tuple[str, str]], documented: set[tuple[str, str]]) -> None:
    missing = sorted(registered - documented)
    assert not missing, f"registered in function_app but not in docs/openapi.json: {missing}"


def test_every_documented_route_is_registered(registered: set[tuple[str, str]], documented: set[tuple[str, str]]) -> None:
    extra = sorted(documented - registered)
    assert not extra, f"in docs/openapi.json but not registered in function_app: {extra}"


def test_path_parameters_are_declared(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            params = [*item.get("parameters", []), *op.get("parameters", [])]
            declared = {p["name"] for p in params if p.get("in") == "path"}
            assert declared == names, f"{method.upper()} {path}: path parameters {sorted(declared)} != {sorted(names)}"


def test_every_operation_answers_and_references_resolve(spec: dict[str, Any]) -> None:
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                assert op.get("responses"), f"{method.upper()} {path} documents no response"
    for ref in refs(spec):
        node: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(node, dict) and part in node, f"unresolved $ref {ref}"
            node = node[part]


def test_error_body_shape(spec: dict[str, Any]) -> None:
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert set(error["properties"]["error"]["required"]) == {"code", "message"}
