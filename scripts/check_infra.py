#!/usr/bin/env python3
"""Offline checks of the Bicep under infra/ (no Bicep CLI, no internet).

1. Syntax: every ``*.bicep`` file is parsed with tree-sitter-bicep; any ERROR or MISSING node
   fails, reported as ``file:line:col``.
2. Policy: ``checkov -d infra --framework bicep --skip-download --external-checks-dir
   infra/policies -o json`` (checkov lives in its own virtualenv, ``.venv-checkov``). Fails when
   ``summary.parsing_errors > 0`` (checkov exits 0 on a Bicep syntax error!), when any check
   failed, when a check was skipped without a reason (``//checkov:skip=ID:reason``), or when a
   custom policy of infra/policies matched no resource at all (a custom Bicep policy with a typo in
   its resource type silently checks nothing).
3. Hygiene: no ``listKeys(`` anywhere in infra/ (no key is ever read into a deployment).
4. Authentication fails closed (independent of checkov, so a checkov bug cannot hide it): every
   function app has an ``authsettingsV2`` config with the Entra ID provider, the tenant's own
   issuer (v1 or v2, never common), ``requireAuthentication: true``, ``unauthenticatedClientAction: 'Return401'`` and
   exactly the two excluded paths (health and the Event Grid blob webhook); ``PRINCIPAL_SOURCE``
   is set to ``'appservice'`` and never ``local``; ``WEBSITE_AUTH_ENABLED`` is never set (App
   Service sets it itself).
5. The consent ledger's anchors are WORM: a container-level ``immutabilityPolicies`` resource
   whose parent is the container named by ``ledgerAnchorsContainerName``, with a retention period
   and no protected appends (also policy CKV2_FACEENR_21); and, because ARM can only create the
   policy Unlocked (the lock is an action), both post-deploy scripts lock it.

What this cannot do: type/semantic validation (unknown properties, wrong API versions, undefined
symbols). That needs the Bicep compiler (``az bicep build``) or ``az deployment sub what-if``,
both of which need internet access. See docs/deployment.md.

Runs with the project's main virtualenv (tree-sitter, tree-sitter-bicep); checkov is found at
``.venv-checkov/bin/checkov`` or given with ``--checkov PATH``. Exit code 0 = all good.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INFRA = ROOT / "infra"
DEFAULT_CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
VENV_HINT = (
    "python3 -m venv .venv-checkov && .venv-checkov/bin/pip install -r requirements-infra.txt"
)
NO_REASON = "No comment provided"  # what checkov reports for a skip comment without a reason
SKIP_COMMENT = re.compile(r"checkov:skip=\s*([A-Za-z_\d-]+(?:,[A-Za-z_\d-]+)*)?(:[^\n]*)?")
POLICY_ID = re.compile(r'^\s*id:\s*"?([A-Za-z0-9_]+)"?\s*$', re.MULTILINE)


# --------------------------------------------------------------------------------------------
# 1. syntax (tree-sitter-bicep)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntaxProblem:
    path: Path
    line: int  # 1-based
    column: int  # 1-based
    kind: str  # "ERROR" or "MISSING <node>"
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.kind} {self.text!r}"


def _parser() -> Any:
    try:
        import tree_sitter
        import tree_sitter_bicep
    except ImportError as exc:  # pragma: no cover - environment problem
        raise SystemExit(
            f"check_infra: {exc}. Install tree-sitter==0.26.1 and tree-sitter-bicep==1.1.0 "
            "into the project's .venv."
        ) from exc
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_bicep.language()))


def bicep_files(infra: Path) -> list[Path]:
    return sorted(p for p in infra.rglob("*.bicep") if p.is_file())


def syntax_problems(paths: Iterable[Path]) -> list[SyntaxProblem]:
    parser = _parser()
    problems: list[SyntaxProblem] = []
    for path in paths:
        source = path.read_bytes()
        tree = parser.parse(source)
        if not tree.root_node.has_error:
            continue
        stack = [tree.root_node]
        while stack:
            node = stack.pop()
            if node.is_missing:
                kind = f"MISSING {node.type}"
            elif node.type == "ERROR":
                kind = "ERROR"
            else:
                if node.has_error:
                    stack.extend(reversed(node.children))
                continue
            row, col = node.start_point
            text = source[node.start_byte : node.end_byte].decode("utf-8", "replace")
            problems.append(SyntaxProblem(path, row + 1, col + 1, kind, text.splitlines()[0][:60] if text else ""))
    problems.sort(key=lambda p: (str(p.path), p.line, p.column))
    return problems


# --------------------------------------------------------------------------------------------
# 2. checkov
# --------------------------------------------------------------------------------------------


def find_checkov(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The checkov executable, or SystemExit with the command that creates its virtualenv."""
    candidate = Path(explicit) if explicit else DEFAULT_CHECKOV
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    raise FileNotFoundError(
        f"checkov not found at {candidate}. checkov lives in its own virtualenv (its pins clash "
        f"with the app's): run `{VENV_HINT}` in {ROOT}, or pass --checkov PATH."
    )


def policy_ids(policies: Path) -> list[str]:
    ids: list[str] = []
    for f in sorted(policies.glob("*.y*ml")):
        m = POLICY_ID.search(f.read_text(encoding="utf-8"))
        if m:
            ids.append(m.group(1))
    return ids


def run_checkov(
    dirs: Sequence[Path], *, checkov: Path, policies: Path | None, timeout: float = 300
) -> dict[str, Any]:
    """Run checkov once over one or more directories; return its (bicep) JSON report.

    To scan several copies of the same tree, pass their common parent as ONE directory: checkov
    keys files by their path relative to each ``-d`` root, so identical trees given as several
    ``-d`` overwrite each other in the report.

    The report has ``summary`` (passed/failed/skipped/parsing_errors/resource_count) and
    ``results`` (passed_checks/failed_checks/skipped_checks, each with check_id, resource,
    file_abs_path, file_line_range, check_result.suppress_comment)."""
    cmd = [str(checkov)]
    for d in dirs:
        cmd += ["-d", str(d)]
    cmd += ["--framework", "bicep", "--skip-download", "-o", "json"]
    if policies is not None:
        cmd += ["--external-checks-dir", str(policies)]
    env = dict(os.environ, LOG_LEVEL="ERROR", BC_SKIP_MAPPING="TRUE")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    out = proc.stdout
    start = min((i for i in (out.find("{"), out.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise RuntimeError(
            f"checkov produced no JSON (exit {proc.returncode}).\nstdout:\n{out[-2000:]}\n"
            f"stderr:\n{proc.stderr[-4000:]}"
        )
    # One JSON document per scanned directory when several -d are given: read them all.
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    pos = start
    while pos < len(out):
        doc, pos = decoder.raw_decode(out, pos)
        docs.extend(doc if isinstance(doc, list) else [doc])
        while pos < len(out) and out[pos].isspace():
            pos += 1
    return _merge_bicep_reports(docs)


def _merge_bicep_reports(docs: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"check_type": "bicep", "summary": {}, "results": {}}
    counters = ("passed", "failed", "skipped", "parsing_errors", "resource_count")
    for doc in docs:
        if doc.get("check_type") not in (None, "bicep"):
            continue
        summary = doc.get("summary", {})
        for key in counters:
            merged["summary"][key] = merged["summary"].get(key, 0) + int(summary.get(key, 0) or 0)
        if "checkov_version" in summary:
            merged["summary"]["checkov_version"] = summary["checkov_version"]
        for kind, items in (doc.get("results") or {}).items():
            if isinstance(items, list):
                merged["results"].setdefault(kind, []).extend(items)
    return merged


def results(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return list(report.get("results", {}).get(f"{kind}_checks", []) or [])


def _where(r: dict[str, Any]) -> str:
    lines = r.get("file_line_range") or []
    suffix = f":{lines[0]}" if lines else ""
    return f"{r.get('file_abs_path') or r.get('file_path')}{suffix}"


# --------------------------------------------------------------------------------------------
# 4. authentication fails closed
# --------------------------------------------------------------------------------------------

# What Easy Auth lets through without a signed-in user: nothing else may be added here.
AUTH_EXCLUDED_PATHS = frozenset({"/api/health", "/runtime/webhooks/blobs"})
# The tenant's own issuer, v1 or v2, with the tenant from a parameter (never common/organizations).
TENANT_ISSUER = re.compile(r"https://(?:sts\.windows\.net/\$\{\w+\}/|login\.microsoftonline\.com/\$\{\w+\}/v2\.0)")
_RESOURCE_HEAD = re.compile(r"^resource\s+(\w+)\s+'([^'@]+)@[^']*'(\s+existing)?\s*=\s*(?:if\s*\(.*?\)\s*)?\{", re.M)


def strip_comments(text: str) -> str:
    """Bicep source without // and /* */ comments (quotes respected), same line numbering."""
    out: list[str] = []
    i, n = 0, len(text)
    in_str = False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == "'":
                in_str = False
            i += 1
        elif c == "'":
            in_str = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            block = text[i : n if j < 0 else j + 2]
            out.append("\n" * block.count("\n"))
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def resource_blocks(text: str) -> list[tuple[str, str, bool, str]]:
    """(symbol, type, existing, body) of every top-level resource in comment-free Bicep."""
    blocks = []
    for m in _RESOURCE_HEAD.finditer(text):
        depth, i = 1, m.end()
        in_str = False
        while i < len(text) and depth:
            c = text[i]
            if in_str:
                in_str = c != "'"
            elif c == "'":
                in_str = True
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            i += 1
        blocks.append((m.group(1), m.group(2), bool(m.group(3)), text[m.end() : i - 1]))
    return blocks


def auth_problems(infra: Path) -> list[str]:
    """Why the deployed API would not fail closed; empty when App Service Authentication holds."""
    problems: list[str] = []
    sites: list[str] = []
    auths: list[tuple[str, str]] = []
    codes: dict[str, str] = {}
    for path in bicep_files(infra):
        code = strip_comments(path.read_text(encoding="utf-8"))
        rel = path.relative_to(infra)
        codes[str(rel)] = code
        for symbol, rtype, existing, body in resource_blocks(code):
            if existing:
                continue
            if rtype.lower() == "microsoft.web/sites":
                sites.append(f"{rel}:{symbol}")
            if rtype.lower() == "microsoft.web/sites/config" and re.search(r"\bname:\s*'authsettingsV2'", body):
                auths.append((f"{rel}:{symbol}", body))
        for n, line in enumerate(code.splitlines(), start=1):
            if "WEBSITE_AUTH_ENABLED" in line:
                problems.append(f"{rel}:{n}: sets WEBSITE_AUTH_ENABLED (App Service sets it; by hand it fakes Easy Auth)")
        for m in re.finditer(r"name:\s*'PRINCIPAL_SOURCE'\s*\n\s*value:\s*(.+?)\s*$", code, re.M):
            if m.group(1) != "'appservice'":
                problems.append(f"{rel}: PRINCIPAL_SOURCE = {m.group(1)} (must be the literal 'appservice')")
        if re.search(r"PRINCIPAL_SOURCE", code) and not re.search(r"name:\s*'PRINCIPAL_SOURCE'", code):
            problems.append(f"{rel}: PRINCIPAL_SOURCE appears outside an app setting entry")
    for path in sorted(infra.rglob("*.json")):
        text = path.read_text(encoding="utf-8")
        for name in ("PRINCIPAL_SOURCE", "WEBSITE_AUTH_ENABLED"):
            if name in text:
                problems.append(f"{path.relative_to(infra)}: maps {name} (it must not be a parameter)")
    if not sites:
        problems.append("no Microsoft.Web/sites resource found")
    if len(auths) < len(sites):
        problems.append(
            f"App Service Authentication missing: {len(sites)} function app(s) {sites} but "
            f"{len(auths)} Microsoft.Web/sites/config 'authsettingsV2'"
        )
    for where, body in auths:
        flat = re.sub(r"\s+", " ", body)
        if not re.search(r"requireAuthentication: true\b", flat):
            problems.append(f"{where}: globalValidation.requireAuthentication is not true")
        action = re.search(r"unauthenticatedClientAction: '([^']*)'", flat)
        if not action or action.group(1) != "Return401":
            problems.append(
                f"{where}: unauthenticatedClientAction is {action.group(1) if action else 'unset'!r}, must be 'Return401'"
            )
        if not re.search(r"platform: \{ enabled: true\b", flat):
            problems.append(f"{where}: platform.enabled is not true")
        if not re.search(r"azureActiveDirectory: \{ enabled: true\b", flat):
            problems.append(f"{where}: the Entra ID (azureActiveDirectory) provider is not enabled")
        issuer = re.search(r"openIdIssuer: ('[^']*'|\w+)", flat)
        issuer_expr = issuer.group(1) if issuer else ""
        if issuer_expr and not issuer_expr.startswith("'"):
            var = re.search(rf"^var {issuer_expr} = (.+)$", codes.get(where.split(":")[0], ""), re.M)
            issuer_expr = var.group(1) if var else ""
        urls = re.findall(r"'(https:[^']*)'", issuer_expr)
        if not urls or not all(TENANT_ISSUER.fullmatch(u) for u in urls):
            problems.append(
                f"{where}: openIdIssuer {issuer_expr or 'unset'} is not the tenant's own issuer "
                "(https://sts.windows.net/<tenant>/ or https://login.microsoftonline.com/<tenant>/v2.0)"
            )
        excluded = re.search(r"excludedPaths: \[([^\]]*)\]", flat)
        paths = set(re.findall(r"'([^']*)'", excluded.group(1))) if excluded else set()
        if paths != AUTH_EXCLUDED_PATHS:
            problems.append(
                f"{where}: excludedPaths {sorted(paths)} != {sorted(AUTH_EXCLUDED_PATHS)} (only health and the "
                "Event Grid webhook may be reached without a user)"
            )
    return problems


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, msg: str) -> None:
        self.problems.append(msg)


def source_skips(paths: Iterable[Path]) -> list[tuple[Path, int, str, str]]:
    """(file, line, check id, reason) for every //checkov:skip comment in the sources."""
    found = []
    for path in paths:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            m = SKIP_COMMENT.search(line)
            if m:
                reason = (m.group(2) or "")[1:].strip()
                for cid in (m.group(1) or "").split(","):
                    found.append((path, n, cid, reason))
    return found


def worm_problems(infra: Path, scripts: Path | None = None) -> list[str]:
    """Why the ledger anchors would not be write-once; empty when the policy is declared and locked."""
    problems: list[str] = []
    anchors: list[str] = []
    policies: list[tuple[str, str]] = []
    for path in bicep_files(infra):
        code = strip_comments(path.read_text(encoding="utf-8"))
        for symbol, rtype, existing, body in resource_blocks(code):
            if existing:
                continue
            low = rtype.lower()
            if low == "microsoft.storage/storageaccounts/blobservices/containers" and re.search(
                    r"\bname:\s*ledgerAnchorsContainerName\b", body):
                anchors.append(symbol)
            if low == "microsoft.storage/storageaccounts/blobservices/containers/immutabilitypolicies":
                policies.append((symbol, body))
    if not anchors:
        problems.append("no container named ledgerAnchorsContainerName (the consent ledger's anchors)")
    for anchor in anchors:
        mine = [(sym, body) for sym, body in policies if re.search(rf"\bparent:\s*{re.escape(anchor)}\b", body)]
        if not mine:
            problems.append(f"container {anchor} has no immutabilityPolicies resource (WORM)")
        for sym, body in mine:
            if not re.search(r"\bimmutabilityPeriodSinceCreationInDays:\s*\S+", body):
                problems.append(f"{sym}: no immutabilityPeriodSinceCreationInDays")
            if re.search(r"\ballowProtectedAppendWrites(All)?:\s*true\b", body):
                problems.append(f"{sym}: protected append writes are allowed")
    scripts = scripts if scripts is not None else infra.parent / "scripts"
    for name in ("post-deploy.sh", "post-deploy.ps1"):
        script = scripts / name
        text = script.read_text(encoding="utf-8") if script.is_file() else ""
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        if not re.search(r"az storage container immutability-policy lock\b", code):
            problems.append(f"scripts/{name} does not lock the anchors' immutability policy "
                            "(an unlocked policy can be shortened or deleted)")
    return problems


def check(
    infra: Path, checkov_path: str | None, policies: Path | None, out: Callable[[str], None] = print
) -> int:
    t0 = time.monotonic()
    outcome = Outcome()
    files = bicep_files(infra)
    if not files:
        outcome.fail(f"no .bicep files under {infra}")

    # 1. syntax
    problems = syntax_problems(files)
    out(f"[syntax] tree-sitter-bicep: {len(files)} file(s), {len(problems)} problem(s)")
    for p in problems:
        out(f"  {p}")
        outcome.fail(f"syntax: {p}")

    # 3. hygiene (cheap, before checkov)
    for path in files:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("//", 1)[0] if not line.lstrip().startswith("//") else ""
            if "listkeys(" in code.lower().replace(" ", ""):
                outcome.fail(f"hygiene: {path}:{n}: listKeys() reads a secret into the deployment")
    for path, n, cid, reason in source_skips(files):
        if not cid:
            outcome.fail(f"skip: {path}:{n}: checkov:skip without a check id")
        elif not reason:
            outcome.fail(f"skip: {path}:{n}: {cid} is skipped without a reason (//checkov:skip={cid}:<why>)")

    # 4. authentication fails closed (text checks, independent of checkov)
    auth = auth_problems(infra)
    out(f"[auth] App Service Authentication / PRINCIPAL_SOURCE: {len(auth)} problem(s)")
    for problem in auth:
        out(f"  {problem}")
        outcome.fail(f"auth: {problem}")

    # 5. the ledger anchors are WORM, and locked
    worm = worm_problems(infra)
    out(f"[worm] ledger anchors' immutability policy: {len(worm)} problem(s)")
    for problem in worm:
        out(f"  {problem}")
        outcome.fail(f"worm: {problem}")

    # 2. checkov
    if problems:
        # checkov cannot parse a file with a syntax error (and exits 0 when it cannot): fix the syntax first.
        out("[checkov] not run: the syntax check failed (checkov reports nothing useful on unparsable files)")
    else:
        try:
            checkov = find_checkov(checkov_path)
        except FileNotFoundError as exc:
            out(f"[checkov] {exc}")
            outcome.fail(str(exc))
        else:
            report = run_checkov([infra], checkov=checkov, policies=policies)
            s = report.get("summary", {})
            out(
                f"[checkov] {s.get('checkov_version', '?')}: passed {s.get('passed', 0)}, "
                f"failed {s.get('failed', 0)}, skipped {s.get('skipped', 0)}, "
                f"parsing errors {s.get('parsing_errors', 0)}, resources {s.get('resource_count', 0)}"
            )
            if s.get("parsing_errors", 0):
                outcome.fail(
                    f"checkov: {s['parsing_errors']} Bicep file(s) could not be parsed "
                    "(checkov still exits 0 in that case); see the syntax section / run checkov by hand"
                )
            for r in results(report, "failed"):
                msg = f"{r['check_id']} {r.get('check_name', '')} -- {r['resource']} ({_where(r)})"
                out(f"  FAILED  {msg}")
                outcome.fail(f"checkov: {msg}")
            for r in results(report, "skipped"):
                reason = (r.get("check_result") or {}).get("suppress_comment") or ""
                out(f"  skipped {r['check_id']} on {r['resource']}: {reason}")
                if not reason.strip() or reason.strip() == NO_REASON:
                    outcome.fail(f"checkov: {r['check_id']} skipped on {r['resource']} without a reason")
            if policies is not None:
                seen = {r["check_id"] for kind in ("passed", "failed", "skipped") for r in results(report, kind)}
                ids = policy_ids(policies)
                silent = [i for i in ids if i not in seen]
                out(f"[policies] {len(ids)} custom polic(ies) in {policies}: " + ", ".join(ids))
                for i in silent:
                    outcome.fail(f"policy {i} matched no resource (wrong resource type or attribute path?)")

    dt = time.monotonic() - t0
    if outcome.problems:
        out(f"\ncheck_infra: FAILED ({len(outcome.problems)} problem(s), {dt:.1f}s)")
        for problem in outcome.problems:
            out(f"  - {problem}")
        return 1
    out(f"\ncheck_infra: OK ({dt:.1f}s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--infra", type=Path, default=DEFAULT_INFRA, help="directory with the Bicep (default: infra/)")
    ap.add_argument("--checkov", help=f"checkov executable (default: {DEFAULT_CHECKOV.relative_to(ROOT)})")
    ap.add_argument(
        "--policies", type=Path, default=None, help="custom policy directory (default: <infra>/policies)"
    )
    args = ap.parse_args(argv)
    infra = args.infra.resolve()
    policies = (args.policies or infra / "policies").resolve()
    return check(infra, args.checkov, policies if policies.is_dir() else None)


if __name__ == "__main__":
    sys.exit(main())
