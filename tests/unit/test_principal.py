"""shared.domain.principal: parsing App Service Authentication's X-MS-CLIENT-PRINCIPAL header."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.principal import (
    AMR_URI,
    HEADER,
    OID_URI,
    ROLE_URI,
    Principal,
    PrincipalError,
    encode_principal,
    parse_principal,
    require_mfa,
    usable_key,
)

pytestmark = pytest.mark.unit

OID = "0f6a2a7c-1111-4c3e-9a5d-2f7d3f0d9c11"
SECRET = "do-not-leak-9f8e7d"


def raw(document: Any) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def fails(header: str | None, status: int = 401, **kwargs: str) -> PrincipalError:
    with pytest.raises(PrincipalError) as info:
        parse_principal(header, **kwargs)
    assert info.value.status == status
    assert info.value.reason.endswith(".") and str(info.value) == info.value.reason
    return info.value


# --- the happy path ------------------------------------------------------------------------------

def test_header_name() -> None:
    assert HEADER == "X-MS-CLIENT-PRINCIPAL"


def test_minimal_principal() -> None:
    p = parse_principal(encode_principal([("oid", OID)]))
    assert p == Principal(user_key=OID, hr_key=None, is_admin=False, mfa=False, roles=frozenset())


def test_full_principal() -> None:
    header = encode_principal([("oid", OID), ("employeeid", "E1234"), ("roles", "FaceEnrollment.Admin"),
                               ("roles", "Reader"), ("amr", "pwd"), ("amr", "mfa"), ("name", "Ada")])
    p = parse_principal(header)
    assert p == Principal(user_key=OID, hr_key="E1234", is_admin=True, mfa=True,
                          roles=frozenset({"FaceEnrollment.Admin", "Reader"}))


def test_long_claim_type_uris_are_accepted() -> None:
    header = encode_principal([(OID_URI, OID), (ROLE_URI, "FaceEnrollment.Admin"), (AMR_URI, "mfa")])
    p = parse_principal(header)
    assert (p.user_key, p.is_admin, p.mfa) == (OID, True, True)


def test_claim_types_match_case_insensitively() -> None:
    p = parse_principal(encode_principal([("OID", OID), ("AMR", "MFA"), ("Roles", "FaceEnrollment.Admin")]))
    assert (p.user_key, p.mfa, p.is_admin) == (OID, True, True)


def test_role_names_are_case_sensitive() -> None:
    assert not parse_principal(encode_principal([("oid", OID), ("roles", "faceenrollment.admin")])).is_admin


def test_document_role_typ_is_honoured() -> None:
    document = {"auth_typ": "aad", "claims": [{"typ": "oid", "val": OID}, {"typ": "app_role", "val": "X.Admin"}],
                "name_typ": "name", "role_typ": "app_role"}
    p = parse_principal(raw(document), admin_role="X.Admin")
    assert p.is_admin and p.roles == frozenset({"X.Admin"})


def test_custom_claim_names() -> None:
    header = encode_principal([("sub", "subject-1"), ("oid", OID), ("hr", "H-7")])
    p = parse_principal(header, user_key_claim="sub", hr_key_claim="hr")
    assert (p.user_key, p.hr_key) == ("subject-1", "H-7")


def test_user_key_claim_given_as_long_uri_also_matches_the_short_name() -> None:
    assert parse_principal(encode_principal([("oid", OID)]), user_key_claim=OID_URI).user_key == OID


def test_same_value_repeated_is_fine() -> None:
    assert parse_principal(encode_principal([("oid", OID), (OID_URI, OID)])).user_key == OID


def test_values_are_trimmed_and_blank_values_ignored() -> None:
    p = parse_principal(encode_principal([("oid", f"  {OID} "), ("employeeid", "  "), ("roles", "")]))
    assert (p.user_key, p.hr_key, p.roles) == (OID, None, frozenset())


def test_amr_packed_as_json_array() -> None:
    assert parse_principal(encode_principal([("oid", OID), ("amr", '["pwd","mfa"]')])).mfa
    assert not parse_principal(encode_principal([("oid", OID), ("amr", '["pwd"]')])).mfa


def test_amr_without_mfa() -> None:
    assert not parse_principal(encode_principal([("oid", OID), ("amr", "pwd"), ("amr", "rsa")])).mfa


def test_mfa_in_another_claim_does_not_count() -> None:
    assert not parse_principal(encode_principal([("oid", OID), ("roles", "mfa"), ("acr", "mfa")])).mfa


def test_unpadded_and_url_safe_base64_are_tolerated() -> None:
    header = encode_principal([("oid", OID), ("name", "??>>")])
    assert parse_principal(header.rstrip("=")).user_key == OID
    url_safe = header.replace("+", "-").replace("/", "_")
    assert parse_principal(url_safe).user_key == OID
    assert parse_principal(f"  {header}\n").user_key == OID


def test_malformed_claim_entries_are_skipped() -> None:
    document = {"auth_typ": "aad", "claims": [{"typ": "oid"}, {"val": "x"}, "junk", {"typ": 1, "val": "y"}, {"typ": "oid", "val": OID}]}
    assert parse_principal(raw(document)).user_key == OID


def test_encode_principal_shape() -> None:
    document = json.loads(base64.b64decode(encode_principal([("oid", OID)], auth_typ="aad")))
    assert document["auth_typ"] == "aad"
    assert document["claims"] == [{"typ": "oid", "val": OID}]
    assert {"name_typ", "role_typ"} <= set(document)


# --- refusals ------------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header_means_sign_in_first(header: str | None) -> None:
    assert fails(header).reason == "Sign in first."


@pytest.mark.parametrize("header", [
    "not base64 at all!",
    "@@@@",
    base64.b64encode(b"\xff\xfe\xfd").decode(),  # not UTF-8
    base64.b64encode(b"{not json").decode(),
])
def test_undecodable_header(header: str) -> None:
    assert "could not be read" in fails(header).reason


@pytest.mark.parametrize("document", [
    [], "text", 42, None, {}, {"claims": "oid"}, {"claims": []}, {"claims": [{"typ": "oid"}]},
])
def test_no_usable_claims(document: Any) -> None:
    assert "no claims" in fails(raw(document)).reason


def test_no_user_key_claim() -> None:
    assert "does not identify you" in fails(encode_principal([("name", "Ada"), ("sub", "s1")])).reason


def test_conflicting_user_keys_are_refused() -> None:
    err = fails(encode_principal([("oid", OID), (OID_URI, SECRET)]))
    assert "conflicting" in err.reason


def test_conflicting_hr_keys_are_refused() -> None:
    assert "conflicting" in fails(encode_principal([("oid", OID), ("employeeid", "A"), ("employeeid", "B")])).reason


def test_oversized_header_is_refused() -> None:
    header = encode_principal([("oid", OID), ("groups", "g" * 70_000)])
    assert "too large" in fails(header).reason


def test_errors_never_contain_claim_values() -> None:
    headers = [
        encode_principal([("oid", SECRET), (OID_URI, OID)]),
        encode_principal([("oid", OID), ("employeeid", SECRET), ("employeeid", "other")]),
        encode_principal([("name", SECRET)]),
        raw({"claims": [{"typ": SECRET, "val": SECRET}]}) + "!!",
    ]
    for header in headers:
        with pytest.raises(PrincipalError) as info:
            parse_principal(header)
        assert SECRET not in str(info.value) and SECRET not in info.value.reason
        assert SECRET not in repr(info.value.args)
        assert info.value.__cause__ is None  # no chained decode error that could carry the payload
        assert info.value.__context__ is None or info.value.__suppress_context__


# --- MFA -----------------------------------------------------------------------------------------

def test_require_mfa_passes_with_mfa() -> None:
    require_mfa(parse_principal(encode_principal([("oid", OID), ("amr", "mfa")])))


def test_require_mfa_refuses_without() -> None:
    with pytest.raises(PrincipalError) as info:
        require_mfa(parse_principal(encode_principal([("oid", OID), ("amr", "pwd")])))
    assert info.value.status == 403
    assert info.value.reason == ("This action needs a multi-factor sign-in. "
                                 "Sign out and sign in again with multi-factor authentication.")


# --- properties ----------------------------------------------------------------------------------

claim_text = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30).filter(str.strip)


@settings(max_examples=150, deadline=None)
@given(user=claim_text, roles=st.lists(claim_text, max_size=5), amr=st.lists(st.sampled_from(["pwd", "mfa", "otp"]),
                                                                               max_size=3))
def test_round_trip(user: str, roles: list[str], amr: list[str]) -> None:
    claims = [("oid", user), *[("roles", r) for r in roles], *[("amr", a) for a in amr]]
    if not usable_key(user.strip()):  # a user id no table key could hold is refused, never stored
        with pytest.raises(PrincipalError) as refused:
            parse_principal(encode_principal(claims))
        assert refused.value.status == 401
        return
    p = parse_principal(encode_principal(claims))
    assert p.user_key == user.strip()
    assert p.roles == frozenset(r.strip() for r in roles)
    assert p.mfa == ("mfa" in amr)
    assert p.is_admin == ("FaceEnrollment.Admin" in p.roles)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_headers_only_raise_principal_errors(header: str) -> None:
    try:
        parse_principal(header)
    except PrincipalError as err:
        assert err.status == 401
