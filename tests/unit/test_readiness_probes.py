"""The probe adapters' error translation: SDK errors become ProbeNotFound / ProbeDenied / ProbeUnreachable whose
messages name the entity and the error class only, never the SDK's message (it may quote a URL or a SAS)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)

from shared import errors
from shared.adapters import readiness_probes
from shared.adapters.readiness_probes import ServiceBusProbe, _translate, fast_client_options

LEAK = "https://acct.blob.core.windows.net/x?sig=SECRETSIG&AccountKey=SECRETKEY"


def _raise(exc: Exception) -> Any:
    def action() -> Any:
        raise exc
    return action


def _http(status: int) -> HttpResponseError:
    err = HttpResponseError(message=LEAK)
    err.status_code = status
    return err


@pytest.mark.parametrize(("exc", "cls"), [
    (ResourceNotFoundError(message=LEAK), errors.ProbeNotFound),
    (ClientAuthenticationError(message=LEAK), errors.ProbeDenied),
    (_http(403), errors.ProbeDenied),
    (_http(401), errors.ProbeDenied),
    (_http(404), errors.ProbeNotFound),
    (_http(500), errors.ProbeUnreachable),
    (ServiceRequestError(LEAK), errors.ProbeUnreachable),
    (ConnectionRefusedError(LEAK), errors.ProbeUnreachable),
])
def test_translate_maps_and_never_quotes_the_sdk(exc: Exception, cls: type[errors.ProbeFailed]) -> None:
    with pytest.raises(cls) as info:
        _translate("table t", _raise(exc))
    assert "SECRET" not in str(info.value) and "table t" in str(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_translate_passes_results_and_other_errors_through() -> None:
    assert _translate("x", lambda: 7) == 7
    with pytest.raises(ZeroDivisionError):
        _translate("x", _raise(ZeroDivisionError()))


def test_fast_client_options_turn_retries_off() -> None:
    from shared.adapters.http_env import sdk_client_options

    assert fast_client_options(3.0) == {**sdk_client_options(), "connection_timeout": 3.0, "read_timeout": 3.0,
                                        "retry_total": 0}


class _FakeReceiver:
    def __init__(self, error: Exception | None, peeks: list[dict[str, Any]]) -> None:
        self.error, self.peeks = error, peeks

    def __enter__(self) -> _FakeReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def peek_messages(self, **kw: Any) -> list[Any]:
        self.peeks.append(kw)
        if self.error is not None:
            raise self.error
        return []


class _FakeClient:
    error: ClassVar[Exception | None] = None
    peeks: ClassVar[list[dict[str, Any]]] = []
    options: ClassVar[dict[str, Any]] = {}

    def __init__(self, namespace: str, *, credential: Any, **kw: Any) -> None:
        type(self).options = kw

    def __enter__(self) -> _FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def get_queue_receiver(self, queue: str, **kw: Any) -> _FakeReceiver:
        return _FakeReceiver(self.error, self.peeks)

    def get_subscription_receiver(self, topic: str, sub: str, **kw: Any) -> _FakeReceiver:
        return _FakeReceiver(self.error, self.peeks)


@pytest.fixture
def fake_sb(monkeypatch: pytest.MonkeyPatch) -> type[_FakeClient]:
    import azure.servicebus

    _FakeClient.error, _FakeClient.peeks = None, []
    monkeypatch.setattr(azure.servicebus, "ServiceBusClient", _FakeClient)
    return _FakeClient


def test_service_bus_probe_peeks_one_message_without_retries(fake_sb: type[_FakeClient]) -> None:
    probe = ServiceBusProbe(fully_qualified_namespace="sb-x.servicebus.windows.net", credential=object(), timeout=3)
    probe.check_queue("revocations")
    probe.check_subscription("hr-events", "face-enrollment")
    assert fake_sb.peeks == [{"max_message_count": 1, "timeout": 3}] * 2
    assert fake_sb.options["retry_total"] == 0


@pytest.mark.parametrize(("name", "cls"), [
    ("MessagingEntityNotFoundError", errors.ProbeNotFound),
    ("ServiceBusAuthorizationError", errors.ProbeDenied),
    ("ServiceBusAuthenticationError", errors.ProbeDenied),
    ("ServiceBusConnectionError", errors.ProbeUnreachable),
    ("OperationTimeoutError", errors.ProbeUnreachable),
])
def test_service_bus_probe_maps_errors(fake_sb: type[_FakeClient], name: str, cls: type[errors.ProbeFailed]) -> None:
    import azure.servicebus.exceptions as sbe

    fake_sb.error = getattr(sbe, name)(message=LEAK)
    probe = ServiceBusProbe(fully_qualified_namespace="sb-x.servicebus.windows.net", credential=object(), timeout=3)
    with pytest.raises(cls) as info:
        probe.check_queue("revocations")
    assert "SECRET" not in str(info.value) and "revocations" in str(info.value)


def test_service_bus_probe_without_a_token_is_denied(fake_sb: type[_FakeClient]) -> None:
    fake_sb.error = ClientAuthenticationError(message=LEAK)
    probe = ServiceBusProbe(fully_qualified_namespace="sb-x.servicebus.windows.net", credential=object(), timeout=3)
    with pytest.raises(errors.ProbeDenied):
        probe.check_subscription("hr-events", "face-enrollment")
    assert readiness_probes.ServiceBusProbe is ServiceBusProbe
