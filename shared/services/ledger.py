"""The consent ledger as a hash chain per user: appending, anchoring, verifying.

Every ledger write (a grant in consent.py, a revocation's tombstone in revocation.py) goes
through ``ConsentLedger.append``. The chain rules and the anchor format are in
shared/domain/ledger_chain.py.

Appending: the new entry is placed last in its user's chain (its ``entry_id`` is moved just past
the latest one if a clock made it sort earlier), linked to the entry before it, and inserted.
Then the chain is read again: if another append for the same user landed in between (two
requests at once), the entry is re-linked to its real predecessor; each writer checks and repairs
only its own, seconds-old entry, so concurrent appends converge to one chain.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.adapters.repositories import Repositories, StoredLedgerEntry
from shared.domain import ledger_chain as lc
from shared.domain.enrollment import iso, ledger_entry_id, parse_iso
from shared.domain.records import LedgerEntry
from shared.errors import RecordConflict
from shared.ports import AnchorStorePort
from shared.services.audit import AuditLog

log = logging.getLogger("shared.ledger")

RELINK_ATTEMPTS = 5


def anchor_name(day: datetime) -> str:
    return f"{day:%Y/%m/%d}.json"


@dataclass
class VerifyReport:
    checked_at: str
    chains: int = 0
    entries: int = 0
    anchors: int = 0
    damaged_anchors: list[str] = field(default_factory=list)
    findings: list[lc.Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings and not self.damaged_anchors

    def as_json(self) -> dict[str, object]:
        return {"ok": self.ok, "checkedAt": self.checked_at, "chains": self.chains, "entries": self.entries,
                "anchors": self.anchors, "damagedAnchors": list(self.damaged_anchors),
                "findings": [f.as_json() for f in self.findings]}


class ConsentLedger:
    def __init__(self, repos: Repositories, anchors: AnchorStorePort, audit: AuditLog, *,
                 clock: Callable[[], datetime]) -> None:
        self._repos = repos
        self._anchors = anchors
        self._audit = audit
        self._clock = clock

    # --- reading -----------------------------------------------------------------------------------
    @staticmethod
    def _chain(user_key: str, rows: list[StoredLedgerEntry]) -> lc.Chain:
        chain = lc.Chain(user_key)
        for row in rows:  # in entry_id order
            chain.entries.append((row.entry.entry_id, row.entry.seq, row.entry.prev_sha256 or "", row.stored))
        return chain

    # --- appending ----------------------------------------------------------------------------------
    def prepare(self, entry: LedgerEntry) -> LedgerEntry:
        """Places ``entry`` last in its user's chain and links it (call before writing anything that names its id)."""
        rows = self._repos.ledger_rows.of(entry.user_key)
        if rows:
            latest = rows[-1]
            latest_id = latest.entry.entry_id
            if entry.entry_id <= latest_id:
                # Another host's clock (or a redelivered old request) would put it in the middle of
                # the chain: the ledger only grows at the end.
                unique = entry.entry_id.partition("_")[2]
                latest_at = parse_iso(latest_id.partition("_")[0])
                if latest_at is not None:
                    entry.entry_id = ledger_entry_id(latest_at + timedelta(microseconds=1), unique)
            entry.seq = max(r.entry.seq for r in rows) + 1
            entry.prev_sha256 = lc.entry_hash(latest.stored)
        else:
            entry.seq, entry.prev_sha256 = 1, lc.GENESIS
        return entry

    def append(self, entry: LedgerEntry, *, prepared: bool = False) -> LedgerEntry:
        """Inserts ``entry`` at the end of its chain (``RecordExists`` if that id is there already)."""
        if not prepared:
            self.prepare(entry)
        self._repos.ledger.insert(entry)
        self._relink(entry)
        return entry

    def _relink(self, entry: LedgerEntry) -> None:
        for _ in range(RELINK_ATTEMPTS):
            rows = self._repos.ledger_rows.of(entry.user_key)
            ids = [r.entry.entry_id for r in rows]
            if entry.entry_id not in ids:
                return
            i = ids.index(entry.entry_id)
            prev = lc.entry_hash(rows[i - 1].stored) if i else lc.GENESIS
            seq = rows[i - 1].entry.seq + 1 if i else 1
            if entry.prev_sha256 == prev and entry.seq == seq:
                return
            entry.prev_sha256, entry.seq = prev, seq
            try:
                self._repos.ledger.update(entry)
            except RecordConflict:
                continue
        log.warning("ledger entry could not be re-linked after concurrent appends")

    # --- anchoring ----------------------------------------------------------------------------------
    def anchor(self, *, dry_run: bool = False, since: str | None = None) -> dict[str, object]:
        """Today's anchor, written once (a second run the same day finds it and writes nothing): the head of
        every chain written since the watermark ``since``, or of every chain when there is none (the first
        anchor). A chain that did not change keeps the head an earlier anchor holds, and every anchor is
        immutable for longer than the ledger's proof period (``ledgerAnchor`` in the retention policy), so
        each entry stays checkable without reading the whole ledger every day. Returns the watermark for
        the next anchor (``since`` again when nothing was written)."""
        now = self._clock()
        name = anchor_name(now)
        changed, watermark = self._repos.ledger_rows.changed(since)
        heads = [lc.head_of(self._chain(user, rows)) for user, rows in changed.items()]
        document = lc.anchor_document(heads, at=iso(now), since=since)
        written = False
        if not dry_run:
            written = self._anchors.write_anchor(name, lc.anchor_bytes(document))
            if written:
                self._audit.write("ledger.anchored", actor="purge", anchor=name, chains=len(heads),
                                  entries=sum(len(rows) for rows in changed.values()), root=str(document["root"]),
                                  scope="changed" if since else "all")
        return {"anchor": name, "written": written, "chains": len(heads), "root": document["root"],
                "scope": "changed" if since else "all", "watermark": watermark if written else (since or "")}

    # --- verifying ----------------------------------------------------------------------------------
    def verify(self, *, actor: str) -> VerifyReport:
        report = VerifyReport(checked_at=iso(self._clock()))
        chains = {user: self._chain(user, rows) for user, rows in self._repos.ledger_rows.by_user().items()}
        refs = {lc.user_ref(user): user for user in chains}
        report.chains, report.entries = len(chains), sum(len(c.entries) for c in chains.values())
        seen: set[tuple[str, int, str]] = set()

        def add(finding: lc.Finding) -> None:
            key = (finding.user_key, finding.position, finding.problem)
            if key not in seen:
                seen.add(key)
                report.findings.append(finding)

        for chain in chains.values():
            for finding in lc.check_chain(chain):
                add(finding)
        for name in self._anchors.list_anchors():
            report.anchors += 1
            try:
                heads, intact = lc.read_anchor(self._anchors.read_anchor(name))
            except ValueError:
                report.damaged_anchors.append(name)
                continue
            if not intact:
                report.damaged_anchors.append(name)
                continue
            for head in heads:
                user = refs.get(head.user_ref)
                for finding in lc.check_against_anchor(chains.get(user) if user else None, user, head, name):
                    add(finding)
        report.findings.sort(key=lambda f: (f.user_key, f.position, f.problem))
        self._audit.write("ledger.verified", actor=actor[:200], ok=report.ok, chains=report.chains,
                          findings=len(report.findings), anchors=report.anchors)
        return report
