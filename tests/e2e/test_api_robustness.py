"""The API keeps its contract at the edges the fuzzer found, and the local host behaves like the
Functions host: keep-alive survives error replies, 405s carry Allow and JSON, route parameters are
percent-decoded, oversized headers answer JSON, and nothing unforeseen answers a bare 500."""

from __future__ import annotations

import base64
import json
import socket

import pytest
import requests

from shared.http_api import handle
from tests.fixtures.app_stack import AppStack

pytestmark = pytest.mark.e2e


def raw_exchange(port: int, *requests_bytes: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Sends requests one after the other on ONE connection; returns each (status, headers, body)."""
    replies = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        stream = sock.makefile("rb")
        for request in requests_bytes:
            sock.sendall(request)
            status_line = stream.readline().decode()
            status = int(status_line.split()[1])
            headers: dict[str, str] = {}
            while (line := stream.readline().decode()) not in ("\r\n", "\n", ""):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = stream.read(int(headers.get("content-length", "0")))
            replies.append((status, headers, body))
    return replies


def test_keep_alive_survives_error_replies_with_a_body(app_stack: AppStack) -> None:
    body = b'{"dryRun": true, "padding": "' + b"x" * 200 + b'"}'
    replies = raw_exchange(
        app_stack.host.port,
        b"PUT /api/admin/purge HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body,
        b"POST /api/no-such-route HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    assert [r[0] for r in replies] == [405, 404, 200]
    assert json.loads(replies[2][2]) == {"status": "ok"}


def test_405_has_allow_and_the_documented_shape_for_any_method(app_stack: AppStack) -> None:
    for method in ("POST", "PUT", "TRACE", "PROPFIND", "DELETE"):
        r = requests.request(method, f"{app_stack.host.url}/api/health", timeout=10)
        assert r.status_code == 405, (method, r.text)
        assert r.headers["Allow"] == "GET"
        assert r.json()["error"]["code"] == "MethodNotAllowed"
    r = requests.request("PATCH", f"{app_stack.host.url}/api/enrollment", timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "DELETE, GET"


def test_oversized_headers_answer_json_and_the_apps_own_limit_is_reachable(app_stack: AppStack) -> None:
    huge = requests.get(f"{app_stack.host.url}/api/enrollment", headers={"X-Big": "x" * 70_000}, timeout=10)
    assert huge.status_code == 431 and huge.json()["error"]["code"] == "HeadersTooLarge"
    principal = base64.b64encode(json.dumps({"auth_typ": "aad", "claims": [
        {"typ": "oid", "val": "u"}, {"typ": "pad", "val": "x" * 20_000}]}).encode()).decode()
    r = requests.get(f"{app_stack.host.url}/api/enrollment", headers={"X-MS-CLIENT-PRINCIPAL": principal}, timeout=10)
    assert r.status_code == 401 and "too large" in r.json()["error"]["message"]


def test_route_parameters_are_percent_decoded(app_stack: AppStack) -> None:
    # a%2Fb is the user key "a/b", which no table key may hold: a clear 400, not a revocation of "a%2Fb".
    r = app_stack.call("POST", "admin/users/a%2Fb/revoke", user="admin-1", admin=True)
    assert r.status_code == 400 and "userKey" in r.json()["error"]["message"]


@pytest.mark.parametrize("oid", ["a/b", "a\\b", "a#b", "a?b", "tab\there", "x" * 1100])
def test_principals_that_no_table_key_could_hold_get_401(app_stack: AppStack, oid: str) -> None:
    for method, path in (("GET", "enrollment"), ("POST", "consent")):
        r = app_stack.call(method, path, user=oid, json={"termsVersion": "x", "accepted": True})
        assert r.status_code == 401, (path, r.text)
        assert oid not in r.text


@pytest.mark.parametrize("user_key", ["x" * 1100, "a\\b", "a#b"])
def test_user_keys_in_routes_that_no_table_key_could_hold_get_400(app_stack: AppStack, user_key: str) -> None:
    from urllib.parse import quote

    body = {"reason": "fuzz", "expiresInHours": 1}
    r = app_stack.call("POST", f"admin/users/{quote(user_key, safe='')}/quality-override", user="admin-1", admin=True,
                       json=body)
    assert r.status_code == 400, r.text
    r = app_stack.call("GET", f"admin/receipts/{quote(user_key, safe='')}", user="admin-1", admin=True)
    assert r.status_code == 404, r.text


def test_deeply_nested_bodies_and_principals_are_4xx(app_stack: AppStack) -> None:
    r = app_stack.call("POST", "consent", user="nest-1", data=b"[" * 100_000, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadRequest"
    bomb = base64.b64encode(b"[" * 5000).decode()
    r = requests.get(f"{app_stack.host.url}/api/enrollment", headers={"X-MS-CLIENT-PRINCIPAL": bomb}, timeout=10)
    assert r.status_code == 401


def test_unforeseen_errors_answer_internal_error_with_an_id() -> None:
    def explode() -> object:
        raise KeyError("PartitionKey='user-secret'")

    reply = handle(explode)  # type: ignore[arg-type]
    assert reply.status == 500
    assert reply.body["error"]["code"] == "InternalError" and len(reply.body["error"]["errorId"]) == 32
    assert "user-secret" not in json.dumps(reply.body)


# The sample from https://learn.microsoft.com/azure/event-grid/webhook-event-delivery (validation handshake).
SUBSCRIPTION_VALIDATION_SAMPLE = [{
    "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
    "topic": "/subscriptions/xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
    "subject": "",
    "data": {
        "validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6",
        "validationUrl": "https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/myeventsub/validate?id=0000",
    },
    "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
    "eventTime": "2018-01-25T22:12:19.4556811Z",
    "metadataVersion": "1",
    "dataVersion": "1",
}]


def test_event_grid_subscription_validation_handshake(app_stack: AppStack) -> None:
    r = requests.post(f"{app_stack.host.url}/runtime/webhooks/blobs?functionName=Host.Functions.enroll",
                      json=SUBSCRIPTION_VALIDATION_SAMPLE, headers={"aeg-event-type": "SubscriptionValidation"},
                      timeout=10)
    assert r.status_code == 200, r.text
    assert r.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    # The CloudEvents abuse-protection handshake as well.
    r = requests.options(f"{app_stack.host.url}/runtime/webhooks/blobs?functionName=Host.Functions.enroll",
                         headers={"WebHook-Request-Origin": "eventgrid.azure.net"}, timeout=10)
    assert r.status_code == 200 and r.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
