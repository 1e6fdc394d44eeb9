"""The consent ledger's hash chain and its anchors (pure functions: no I/O).

Each user's ledger entries, in ``entry_id`` order (time order, the order that decides consent),
form a chain: entry ``n`` (1-based ``seq``) carries ``prev_sha256``, the SHA-256 of entry ``n-1``,
and the first entry carries ``GENESIS``. An entry's hash covers every stored column (keys
included) in a canonical JSON form, so editing any column of entry ``n`` breaks the link of entry
``n+1``; deleting entry ``n`` leaves a gap in ``seq``; moving an entry breaks the order of ``seq``.

An edit that also rewrites every later link cannot be seen from the table alone: the anchors
catch it. Once a day an anchor records, for every chain, its length and the hash of its head,
and a Merkle root over those leaves; it is written to a WORM container (infra/app/storage.bicep)
that nobody can change or delete during its retention. Verification recomputes each chain and
compares it with every anchor: an anchored head that is gone, or whose hash differs, names the
user and the position.

Anchors name chains by ``user_ref`` (SHA-256 of the user key), not by the key: the anchor outlives
everything (WORM), and a bare user key there would be one more copy of an identifier.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The first link of every chain: SHA-256 of a fixed label (so it is not a value an entry could hash to by chance).
GENESIS = hashlib.sha256(b"face-enrollment consent ledger genesis v1").hexdigest()
ANCHOR_VERSION = 1
#: Columns that are not part of an entry's content: the store's own metadata.
_NOT_HASHED = frozenset({"Timestamp", "etag", "odata.etag", "odata.metadata"})


def entry_hash(entity: Mapping[str, Any]) -> str:
    """SHA-256 of an entry as stored (a Table entity: PartitionKey, RowKey and its columns).

    Canonical: sorted keys, no whitespace, JSON text of ``_json`` columns parsed first, columns that
    hold None left out (Table storage drops them), so the fake and Azurite give the same hash.
    """
    canon: dict[str, Any] = {}
    for key, value in entity.items():
        if key in _NOT_HASHED or value is None:
            continue
        if key.endswith("_json") and isinstance(value, str):
            value = json.loads(value)
        canon[key] = value
    return hashlib.sha256(json.dumps(canon, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def user_ref(user_key: str) -> str:
    return hashlib.sha256(f"ledger-user:{user_key}".encode()).hexdigest()


def leaf(ref: str, length: int, head: str) -> str:
    return hashlib.sha256(f"leaf:{ref}:{length}:{head}".encode()).hexdigest()


def merkle_root(leaves: Sequence[str]) -> str:
    """Merkle root over the sorted leaves (an odd node is paired with itself); the empty tree hashes a label."""
    level = sorted(leaves)
    if not level:
        return hashlib.sha256(b"empty").hexdigest()
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [hashlib.sha256(f"node:{a}:{b}".encode()).hexdigest() for a, b in zip(level[::2], level[1::2], strict=True)]
    return level[0]


@dataclass(frozen=True)
class ChainHead:
    user_ref: str
    length: int
    head: str

    def as_json(self) -> dict[str, object]:
        return {"user": self.user_ref, "entries": self.length, "head": self.head}


def anchor_document(heads: Iterable[ChainHead], *, at: str, since: str | None = None) -> dict[str, object]:
    """``since``: the heads are those of the chains written after it (the daily anchor); without it, of
    every chain (the first anchor). Verification reads every anchor either way."""
    ordered = sorted(heads, key=lambda h: h.user_ref)
    document: dict[str, object] = {"version": ANCHOR_VERSION, "at": at, "genesis": GENESIS, "chains": len(ordered),
                                   "root": merkle_root([leaf(h.user_ref, h.length, h.head) for h in ordered]),
                                   "heads": [h.as_json() for h in ordered]}
    if since:
        document["changedSince"] = since
    return document


def anchor_bytes(document: Mapping[str, Any]) -> bytes:
    """An anchor as written to the WORM container (canonical JSON: the same heads give the same bytes)."""
    return json.dumps(document, sort_keys=True).encode()


def read_anchor(data: bytes) -> tuple[list[ChainHead], bool]:
    """The heads of a stored anchor and whether its root matches them; ``ValueError`` when it is not an
    anchor at all (unreadable JSON, missing fields)."""
    try:
        document = json.loads(data)
        if not isinstance(document, dict):
            raise ValueError("an anchor is a JSON object")
        return anchor_heads(document)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not an anchor: {exc}") from exc


def anchor_heads(document: Mapping[str, Any]) -> tuple[list[ChainHead], bool]:
    """The heads of an anchor, and whether its root matches them (a damaged anchor is reported, not trusted)."""
    heads = [ChainHead(str(h["user"]), int(h["entries"]), str(h["head"])) for h in document.get("heads", [])]
    root = merkle_root([leaf(h.user_ref, h.length, h.head) for h in heads])
    return heads, root == document.get("root")


@dataclass(frozen=True)
class Finding:
    """One problem in a chain. ``position`` is the 1-based place in the user's chain."""

    user_key: str
    position: int
    problem: str  # edited | deleted | reordered | unchained
    entry_id: str | None = None
    detail: str = ""

    def as_json(self) -> dict[str, object]:
        return {"userKey": self.user_key, "position": self.position, "problem": self.problem,
                "entryId": self.entry_id, "detail": self.detail}


@dataclass
class Chain:
    """One user's entries as stored, sorted by ``entry_id``: ``(entry_id, seq, prev, entity)``."""

    user_key: str
    entries: list[tuple[str, int, str, Mapping[str, Any]]] = field(default_factory=list)

    def hashes(self) -> list[str]:
        return [entry_hash(e) for _, _, _, e in self.entries]


def check_chain(chain: Chain) -> list[Finding]:
    """The table-only checks: each link, and the run of ``seq`` values (1, 2, 3, ...)."""
    findings: list[Finding] = []
    hashes = chain.hashes()
    held = {seq for _, seq, _, _ in chain.entries}
    expected = 1
    for i, (entry_id, seq, prev, _) in enumerate(chain.entries):
        if not prev:
            findings.append(Finding(chain.user_key, expected, "unchained", entry_id,
                                    "the entry carries no link (written before the chain existed, or stripped)"))
        elif seq > expected:
            # Missing positions: the entry links past them (its link is explained by the gap).
            # (A position held by an entry that sorts elsewhere is reported as reordered, below.)
            findings.extend(Finding(chain.user_key, missing, "deleted", None,
                                    f"no entry holds position {missing}; the entry after it links past it")
                            for missing in range(expected, seq) if missing not in held)
        elif seq < expected:
            findings.append(Finding(chain.user_key, seq, "reordered", entry_id,
                                    f"the entry holds position {seq} but its id sorts it at position {expected}"))
        elif prev != (hashes[i - 1] if i else GENESIS):
            if i:
                findings.append(Finding(chain.user_key, expected - 1, "edited", chain.entries[i - 1][0],
                                        "its content no longer matches the link the next entry holds"))
            else:
                findings.append(Finding(chain.user_key, expected, "edited", entry_id,
                                        "the first entry does not link to the genesis value"))
        expected = max(expected, seq) + 1
    return findings


def head_of(chain: Chain) -> ChainHead:
    hashes = chain.hashes()
    seqs = [seq for _, seq, _, _ in chain.entries]
    return ChainHead(user_ref(chain.user_key), max(seqs, default=0), hashes[-1] if hashes else GENESIS)


def check_against_anchor(chain: Chain | None, user_key: str | None, anchored: ChainHead,
                         anchor_name: str) -> list[Finding]:
    """What an anchored head says about the chain today: its head entry must still be there, unchanged."""
    who = user_key or f"(user {anchored.user_ref[:16]}…)"
    if chain is None or not chain.entries:
        return [Finding(who, p, "deleted", None, f"anchored in {anchor_name}; the whole chain is gone")
                for p in range(1, anchored.length + 1)]
    by_seq = {seq: (entry_id, h) for (entry_id, seq, _, _), h in zip(chain.entries, chain.hashes(), strict=True)}
    found = by_seq.get(anchored.length)
    if found is None:
        return [Finding(who, anchored.length, "deleted", None, f"anchored in {anchor_name} as the head; no entry holds it now")]
    if found[1] != anchored.head:
        return [Finding(who, anchored.length, "edited", found[0],
                        f"differs from the head anchored in {anchor_name} (the chain after it may have been rewritten)")]
    return []
