"""Who is calling: the principal App Service Authentication puts in ``X-MS-CLIENT-PRINCIPAL``.

The header is base64 of JSON ``{"auth_typ", "claims": [{"typ", "val"}, ...], "name_typ", "role_typ"}``.
App Service strips any client-supplied copy of the header, so it can be trusted when (and only when)
the app runs behind App Service Authentication with unauthenticated requests blocked.

Claim types may arrive as short JWT names (``oid``, ``roles``, ``amr``) or as the long WS-Fed URIs;
both are accepted. Multi-valued claims arrive as one claim per value. Errors never repeat claim values.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "HEADER",
    "Principal",
    "PrincipalError",
    "encode_principal",
    "parse_principal",
    "require_mfa",
    "usable_key",
]

HEADER = "X-MS-CLIENT-PRINCIPAL"
# Below the host's own limit on a header line (64 KiB), so this check, with its clear reason, is what answers.
MAX_HEADER_CHARS = 16 * 1024

OID_URI = "http://schemas.microsoft.com/identity/claims/objectidentifier"
TID_URI = "http://schemas.microsoft.com/identity/claims/tenantid"
AMR_URI = "http://schemas.microsoft.com/claims/authnmethodsreferences"
ROLE_URI = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"

#: Short claim name -> the long URI forms it may arrive as (and vice versa, see _aliases).
_LONG_NAMES: Mapping[str, frozenset[str]] = {
    "oid": frozenset({OID_URI}),
    "tid": frozenset({TID_URI}),
    "amr": frozenset({AMR_URI}),
    "roles": frozenset({ROLE_URI, "role"}),
}

SIGN_IN = "Sign in first."
#: The only identity provider this app accepts: Microsoft Entra ID (App Service calls it ``aad``).
AUTH_TYPE = "aad"
#: What Entra ID puts in ``amr`` for a multi-factor sign-in when nothing else is configured.
DEFAULT_MFA_AMR = frozenset({"mfa"})
MFA_REQUIRED = "This action needs a multi-factor sign-in. Sign out and sign in again with multi-factor authentication."


class PrincipalError(Exception):
    """The caller is not signed in properly (401) or not allowed (403). ``reason`` is safe to show."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    user_key: str
    hr_key: str | None
    is_admin: bool
    mfa: bool
    roles: frozenset[str]


def _aliases(claim_type: str) -> frozenset[str]:
    """All spellings of a claim type, compared case-insensitively."""
    names = {claim_type}
    for short, longs in _LONG_NAMES.items():
        if claim_type == short or claim_type in longs:
            names |= {short, *longs}
    return frozenset(n.lower() for n in names)


def _decode(header_value: str) -> Any:
    text = "".join(header_value.split())
    if len(text) > MAX_HEADER_CHARS:
        raise PrincipalError(401, "The sign-in information is too large. Sign out and sign in again.")
    padded = text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4)  # tolerate URL-safe, unpadded
    try:
        raw = base64.b64decode(padded, validate=True)
        return json.loads(raw.decode("utf-8"))
    # JSONDecodeError and UnicodeDecodeError are ValueErrors; a deeply nested document (``[[[[...``)
    # exhausts the parser's recursion: all are a header we cannot read, never a 500.
    except (binascii.Error, ValueError, RecursionError):
        raise PrincipalError(401, "The sign-in information could not be read. Sign out and sign in again.") from None


def _claims(document: Any) -> list[tuple[str, str]]:
    if not isinstance(document, dict) or not isinstance(document.get("claims"), list):
        raise PrincipalError(401, "The sign-in information has no claims. Sign out and sign in again.")
    claims = [(c["typ"].lower(), c["val"]) for c in document["claims"]
              if isinstance(c, dict) and isinstance(c.get("typ"), str) and isinstance(c.get("val"), str)]
    if not claims:
        raise PrincipalError(401, "The sign-in information has no claims. Sign out and sign in again.")
    return claims


def _values(claims: Iterable[tuple[str, str]], types: frozenset[str]) -> list[str]:
    return [val.strip() for typ, val in claims if typ in types and val.strip()]


def _single(claims: Sequence[tuple[str, str]], claim_type: str, *, what: str) -> str | None:
    distinct = set(_values(claims, _aliases(claim_type)))
    if len(distinct) > 1:
        raise PrincipalError(401, f"The sign-in information has conflicting {what} claims. Sign out and sign in again.")
    return distinct.pop() if distinct else None


def _amr_values(values: Iterable[str]) -> set[str]:
    """One value per claim; tolerates a JSON array packed into one claim."""
    found: set[str] = set()
    for val in values:
        if val.startswith("["):
            try:
                items = json.loads(val)
            except ValueError:
                items = None
            if isinstance(items, list):
                found |= {i.strip().lower() for i in items if isinstance(i, str)}
                continue
        found.add(val.lower())
    return found


#: Longest user key or employee id accepted. Table keys may be up to 1 KiB; ours also carry prefixes.
MAX_KEY_CHARS = 256
_UNUSABLE_KEY_CHARS = frozenset("/\\#?") | frozenset(chr(c) for c in (*range(0x20), *range(0x7F, 0xA0)))


def usable_key(value: str) -> bool:
    """Whether ``value`` can be a Table storage key (and a blob-name-free identifier): no ``/ \\ # ?``,
    no control characters, at most MAX_KEY_CHARS. External input that fails this is refused with a
    4xx, never passed on to storage to fail there with a 500."""
    return 0 < len(value) <= MAX_KEY_CHARS and not (set(value) & _UNUSABLE_KEY_CHARS)


def parse_principal(header_value: str | None, *, user_key_claim: str = "oid", hr_key_claim: str = "employeeid",
                    admin_role: str = "FaceEnrollment.Admin", tenant_id: str | None = None,
                    mfa_amr_values: frozenset[str] = DEFAULT_MFA_AMR) -> Principal:
    """Parses the ``X-MS-CLIENT-PRINCIPAL`` header; raises :class:`PrincipalError` (401) when it is unusable.

    * ``user_key`` — the ``user_key_claim`` (default ``oid``, short or long form); required, must be unique.
    * ``hr_key`` — the ``hr_key_claim`` (default ``employeeid``) or ``None``; conflicting values are refused.
    * ``roles`` — every ``roles``/``role``/role-URI claim plus the document's ``role_typ``; role names are
      case-sensitive, as Entra app-role values are; ``is_admin`` when ``admin_role`` is among them.
    * ``mfa`` — an ``amr`` claim (short or long form) with one of ``mfa_amr_values`` (case-insensitive).

    The document's ``auth_typ`` must be ``aad``: another provider configured on the app by mistake
    (or a hand-made header) is not a sign-in this app understands. With ``tenant_id``, the ``tid``
    claim (short or long form) must name that tenant: a guest token from another directory is refused.
    """
    if header_value is None or not header_value.strip():
        raise PrincipalError(401, SIGN_IN)
    document = _decode(header_value)
    claims = _claims(document)
    auth_typ = document.get("auth_typ")
    if not isinstance(auth_typ, str) or auth_typ.strip().lower() != AUTH_TYPE:
        raise PrincipalError(401, "Sign in with your organisation's Microsoft Entra account.")
    if tenant_id is not None:
        tid = _single(claims, "tid", what="tenant")
        if tid is None or tid.lower() != tenant_id.strip().lower():
            raise PrincipalError(401, "Sign in with an account of this organisation's directory.")
    user_key = _single(claims, user_key_claim, what="user id")
    if user_key is None:
        raise PrincipalError(401, "The sign-in information does not identify you. Sign out and sign in again.")
    if not usable_key(user_key):
        raise PrincipalError(401, "The sign-in information has a user id this service cannot use. "
                                  "Ask an administrator to check the USER_KEY_CLAIM setting.")
    hr_key = _single(claims, hr_key_claim, what="employee id")
    if hr_key is not None and not usable_key(hr_key):
        raise PrincipalError(401, "The sign-in information has an employee id this service cannot use. "
                                  "Ask an administrator to check the HR_KEY_CLAIM setting.")
    role_types = set(_aliases("roles"))
    role_typ = document.get("role_typ")
    if isinstance(role_typ, str) and role_typ.strip():
        role_types.add(role_typ.strip().lower())
    roles = frozenset(_values(claims, frozenset(role_types)))
    accepted = frozenset(v.lower() for v in mfa_amr_values)
    mfa = bool(accepted & _amr_values(_values(claims, _aliases("amr"))))
    return Principal(user_key=user_key, hr_key=hr_key, is_admin=admin_role in roles, mfa=mfa, roles=roles)


def require_mfa(p: Principal) -> None:
    """Raises 403 unless the sign-in used multi-factor authentication."""
    if not p.mfa:
        raise PrincipalError(403, MFA_REQUIRED)


def encode_principal(claims: Sequence[tuple[str, str]], *, auth_typ: str = "aad") -> str:
    """Builds a header value the way App Service does (for tests and the local demo)."""
    document = {
        "auth_typ": auth_typ,
        "claims": [{"typ": typ, "val": val} for typ, val in claims],
        "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "role_typ": ROLE_URI,
    }
    return base64.b64encode(json.dumps(document).encode("utf-8")).decode("ascii")
