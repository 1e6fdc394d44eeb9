"""The infrastructure (infra/*.bicep) checked offline, and kept in step with the code.

- scripts/check_infra.py passes on the real infra/ (tree-sitter-bicep syntax + checkov with the
  custom policies of infra/policies);
- each custom policy is shown to FAIL on a copy of infra/ with its one property flipped (one
  checkov run over all the copies), and a syntax error makes the script fail;
- the app settings Bicep sets are exactly the SETTINGS with where in (azure, both), plus the
  platform's, and the `both` defaults agree;
- every %NAME% in a function binding is a declared setting, every binding connection is set in
  Bicep, and the post-deploy webhook targets a real Event Grid blob trigger;
- the Service Bus entities match the local stand-in's topology;
- App Service Authentication fails closed: scripts/check_infra.py's own auth check AND the
  custom checkov policy CKV2_FACEENR_8 both fail on copies of infra/ with authsettingsV2 removed,
  with AllowAnonymous, with requireAuthentication off; the auth check also fails when infra/
  sets PRINCIPAL_SOURCE=local, sets WEBSITE_AUTH_ENABLED, or excludes another path;
- the photo account's CORS rule, diagnostic settings and dead-letter lifecycle rule are as
  documented.

checkov runs from its own virtualenv (.venv-checkov). If it is missing these tests FAIL (CI
installs it): python3 -m venv .venv-checkov && .venv-checkov/bin/pip install -r requirements-infra.txt
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from shared.settings import SETTING_NAMES, SETTINGS

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
POLICIES = INFRA / "policies"
API_BICEP = INFRA / "app" / "api.bicep"
MAIN_BICEP = INFRA / "main.bicep"
CHECK_SCRIPT = ROOT / "scripts" / "check_infra.py"

# Settings the platform needs that are not the app's (not in SETTINGS): allowed extras in Bicep.
PLATFORM_SETTINGS = frozenset({
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
})
# Deprecated on Flex Consumption (runtime and package come from functionAppConfig).
FLEX_FORBIDDEN = frozenset({
    "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "AzureWebJobsStorage",
})


def _load_check_infra() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_infra", CHECK_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_infra"] = module
    spec.loader.exec_module(module)
    return module


check_infra = _load_check_infra()


@pytest.fixture(scope="session")
def checkov() -> Path:
    try:
        return check_infra.find_checkov(os.environ.get("CHECKOV"))
    except FileNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)


def _run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK_SCRIPT), *args], capture_output=True, text=True, timeout=600, cwd=ROOT
    )


# --------------------------------------------------------------------------------------------
# the check script on the real infra/
# --------------------------------------------------------------------------------------------


def test_check_script_passes_on_real_infra(checkov: Path) -> None:
    proc = _run_script("--checkov", str(checkov))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "check_infra: OK" in proc.stdout
    assert "parsing errors 0" in proc.stdout
    # every custom policy is listed as having run
    for pid in check_infra.policy_ids(POLICIES):
        assert pid in proc.stdout


def test_every_skip_in_the_bicep_carries_a_reason() -> None:
    skips = check_infra.source_skips(check_infra.bicep_files(INFRA))
    assert skips, "expected the documented skips (e.g. CKV_AZURE_35) to be found"
    assert all(cid and len(reason) >= 20 for _, _, cid, reason in skips), skips


def test_skip_without_reason_is_detected(tmp_path: Path) -> None:
    f = tmp_path / "x.bicep"
    f.write_text("resource s 'Microsoft.Storage/storageAccounts@2024-01-01' = {\n  //checkov:skip=CKV_AZURE_43\n}\n")
    [(_, line, cid, reason)] = check_infra.source_skips([f])
    assert (line, cid, reason) == (2, "CKV_AZURE_43", "")


# --------------------------------------------------------------------------------------------
# each custom policy fails on a deliberately broken copy (one checkov run for all copies)
# --------------------------------------------------------------------------------------------


def _flip_in_resource(symbol: str, old: str, new: str) -> Callable[[str], str]:
    """Replace the first `old` after `resource <symbol> ` (the real resource, not an `existing`)."""

    def edit(text: str) -> str:
        start = text.index(f"resource {symbol} ")
        at = text.index(old, start)
        return text[:at] + new + text[at + len(old):]

    return edit


BROKEN: dict[str, tuple[str, Callable[[str], str], str]] = {
    # policy id: (file under infra/, edit, resource checkov must report FAILED)
    "CKV2_FACEENR_1": ("app/servicebus.bicep",
                       _flip_in_resource("namespace", "disableLocalAuth: true", "disableLocalAuth: false"),
                       "Microsoft.ServiceBus/namespaces.namespace"),
    "CKV2_FACEENR_2": ("app/face.bicep", _flip_in_resource("face", "disableLocalAuth: true", "disableLocalAuth: false"),
                       "Microsoft.CognitiveServices/accounts.face"),
    "CKV2_FACEENR_3": ("app/storage.bicep",
                       _flip_in_resource("photoAccount", "allowSharedKeyAccess: false", "allowSharedKeyAccess: true"),
                       "Microsoft.Storage/storageAccounts.photoAccount"),
    "CKV2_FACEENR_4": ("app/storage.bicep",
                       _flip_in_resource("photoBlobService", "deleteRetentionPolicy: {\n      enabled: false",
                                         "deleteRetentionPolicy: {\n      enabled: true\n      days: 7"),
                       "Microsoft.Storage/storageAccounts/blobServices.photoBlobService"),
    "CKV2_FACEENR_5": ("app/storage.bicep",
                       _flip_in_resource("photoBlobService", "containerDeleteRetentionPolicy: {\n      enabled: false",
                                         "containerDeleteRetentionPolicy: {\n      enabled: true\n      days: 7"),
                       "Microsoft.Storage/storageAccounts/blobServices.photoBlobService"),
    "CKV2_FACEENR_6": ("app/storage.bicep",
                       _flip_in_resource("photoBlobService", "isVersioningEnabled: false", "isVersioningEnabled: true"),
                       "Microsoft.Storage/storageAccounts/blobServices.photoBlobService"),
    "CKV2_FACEENR_7": ("app/monitoring.bicep",
                       _flip_in_resource("applicationInsights", "DisableLocalAuth: true", "DisableLocalAuth: false"),
                       "Microsoft.Insights/components.applicationInsights"),
    "CKV2_FACEENR_8": ("app/api.bicep", lambda text: _remove_auth_resource(text),
                       "Microsoft.Web/sites.functionApp"),
    "CKV2_FACEENR_21": ("app/storage.bicep",
                        _flip_in_resource("ledgerAnchorsImmutability", "allowProtectedAppendWrites: false",
                                          "allowProtectedAppendWrites: true"),
                        "Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies"
                        ".ledgerAnchorsImmutability"),
    "CKV2_FACEENR_22": ("app/doorevents.bicep", _flip_in_resource("topic", "disableLocalAuth: true", "disableLocalAuth: false"),
                        "Microsoft.EventGrid/topics.topic"),
}


def _remove_auth_resource(text: str) -> str:
    """api.bicep without the authsettingsV2 resource (as if someone deleted it)."""
    start = text.index("resource auth 'Microsoft.Web/sites/config@")
    end = text.index("\noutput ", start)
    return text[:start] + text[end:]


def _add_app_setting(name: str, value: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        anchor = "      appSettings: [\n"
        at = text.index(anchor) + len(anchor)
        return text[:at] + f"        {{\n          name: '{name}'\n          value: {value}\n        }}\n" + text[at:]

    return edit


def _replace_literal(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
        return text.replace(old, new)

    return edit


# Further broken copies for authentication: (file, edit, does CKV2_FACEENR_8 fail too?).
# check_infra.auth_problems must report every one of them.
AUTH_BROKEN: dict[str, tuple[str, Callable[[str], str], bool]] = {
    "auth-removed": ("app/api.bicep", _remove_auth_resource, True),
    "allow-anonymous": ("app/api.bicep",
                        _replace_literal("unauthenticatedClientAction: 'Return401'",
                                         "unauthenticatedClientAction: 'AllowAnonymous'"), True),
    "require-auth-off": ("app/api.bicep",
                         _replace_literal("requireAuthentication: true", "requireAuthentication: false"), True),
    "principal-source-local": ("app/api.bicep",
                               _replace_literal("name: 'PRINCIPAL_SOURCE'\n          value: 'appservice'",
                                                "name: 'PRINCIPAL_SOURCE'\n          value: 'local'"), False),
    "principal-source-param": ("app/api.bicep",
                               _replace_literal("name: 'PRINCIPAL_SOURCE'\n          value: 'appservice'",
                                                "name: 'PRINCIPAL_SOURCE'\n          value: principalSource"), False),
    "website-auth-enabled": ("app/api.bicep", _add_app_setting("WEBSITE_AUTH_ENABLED", "'True'"), False),
    "extra-excluded-path": ("app/api.bicep",
                            _replace_literal("'/api/health'\n", "'/api/health'\n        '/api/admin/purge'\n"), False),
    "common-issuer": ("app/api.bicep",
                      _replace_literal("'https://sts.windows.net/${authTenantId}/'",
                                       "'https://login.microsoftonline.com/common/v2.0'"), False),
}


def _copy_infra(dest: Path) -> Path:
    shutil.copytree(INFRA, dest, ignore=shutil.ignore_patterns("policies"))
    return dest


def _site_tag(case: str) -> str:
    return re.sub(r"\W", "_", case)


def _unique_site_symbol(copy: Path, case: str) -> None:
    """Give the function app a symbol unique to this copy. checkov builds ONE graph over all the
    copies and resolves `parent: functionApp` by symbol name across files, so with the same symbol
    every copy's authsettingsV2 would attach to one copy's app (CKV2_FACEENR_8 is a connection
    policy). A rename changes no property, so it cannot change what the copy is testing."""
    api = copy / "app" / "api.bicep"
    api.write_text(re.sub(r"\bfunctionApp\b", f"functionApp_{_site_tag(case)}", api.read_text(encoding="utf-8")),
                   encoding="utf-8")


def _expected_resource(resource: str, case: str) -> str:
    return f"{resource}_{_site_tag(case)}" if resource == "Microsoft.Web/sites.functionApp" else resource


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory: pytest.TempPathFactory, checkov: Path) -> tuple[dict[str, Path], dict[str, Any]]:
    base = tmp_path_factory.mktemp("broken-infra")
    copies: dict[str, Path] = {}
    for pid, (rel, edit, _) in BROKEN.items():
        copy = _copy_infra(base / pid)
        target = copy / rel
        before = target.read_text(encoding="utf-8")
        after = edit(before)
        assert after != before, f"{pid}: the edit did not change {rel}"
        target.write_text(after, encoding="utf-8")
        _unique_site_symbol(copy, pid)
        copies[pid] = copy
    for case, (rel, edit, _) in AUTH_BROKEN.items():
        copy = _copy_infra(base / case)
        target = copy / rel
        before = target.read_text(encoding="utf-8")
        after = edit(before)
        assert after != before, f"{case}: the edit did not change {rel}"
        target.write_text(after, encoding="utf-8")
        _unique_site_symbol(copy, case)
        copies[case] = copy
    # One checkov run over the parent directory. (Not several -d: checkov keys files by their path
    # relative to each -d root, so identical trees under several roots overwrite each other.)
    report = check_infra.run_checkov([base], checkov=checkov, policies=POLICIES)
    return copies, report


def test_every_custom_policy_has_a_broken_copy_case() -> None:
    assert set(check_infra.policy_ids(POLICIES)) == set(BROKEN)


@pytest.mark.parametrize("policy_id", sorted(BROKEN))
def test_custom_policy_fails_on_broken_copy(policy_id: str, broken_run: tuple[dict[str, Path], dict[str, Any]]) -> None:
    copies, report = broken_run
    assert report["summary"].get("parsing_errors", 0) == 0
    copy = copies[policy_id]
    resource = _expected_resource(BROKEN[policy_id][2], policy_id)

    def in_copy(r: dict[str, Any]) -> bool:
        return Path(r["file_abs_path"]).resolve().is_relative_to(copy.resolve())

    failed = [r for r in check_infra.results(report, "failed") if in_copy(r)]
    assert any(r["check_id"] == policy_id and r["resource"] == resource for r in failed), (
        f"{policy_id} did not FAIL on {resource} in the broken copy; failed there: "
        f"{[(r['check_id'], r['resource']) for r in failed]}"
    )
    # ... and it is the only custom policy failing there (the flip is the only change)
    custom_failed = {r["check_id"] for r in failed if r["check_id"].startswith("CKV2_FACEENR_")}
    assert custom_failed == {policy_id}
    # ... while the same policy passes on the untouched resources of the other copies
    passed_elsewhere = [
        r for r in check_infra.results(report, "passed") if r["check_id"] == policy_id and not in_copy(r)
    ]
    assert passed_elsewhere, f"{policy_id} never PASSED in the other (intact) copies"


def _failed_in(report: dict[str, Any], copy: Path) -> list[dict[str, Any]]:
    return [
        r for r in check_infra.results(report, "failed")
        if Path(r["file_abs_path"]).resolve().is_relative_to(copy.resolve())
    ]


def _worm_copy(tmp_path: Path, edit: Callable[[str], str], script_edit: Callable[[str], str] | None = None) -> list[str]:
    infra = _copy_infra(tmp_path / "infra")
    storage = infra / "app" / "storage.bicep"
    storage.write_text(edit(storage.read_text(encoding="utf-8")), encoding="utf-8")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for name in ("post-deploy.sh", "post-deploy.ps1"):
        text = (ROOT / "scripts" / name).read_text(encoding="utf-8")
        (scripts / name).write_text(script_edit(text) if script_edit else text, encoding="utf-8")
    return check_infra.worm_problems(infra, scripts)


def _remove_worm_policy(text: str) -> str:
    start = text.index("resource ledgerAnchorsImmutability ")
    end = text.index("\n}\n", start) + 3
    return text[:start] + text[end:]


def test_worm_check_passes_on_real_infra(tmp_path: Path) -> None:
    assert check_infra.worm_problems(INFRA) == []
    assert _worm_copy(tmp_path, lambda t: t) == []


def test_worm_check_fails_without_the_policy(tmp_path: Path) -> None:
    problems = _worm_copy(tmp_path, _remove_worm_policy)
    assert any("no immutabilityPolicies resource" in p for p in problems), problems


def test_worm_check_fails_with_protected_appends(tmp_path: Path) -> None:
    problems = _worm_copy(tmp_path, _flip_in_resource("ledgerAnchorsImmutability", "allowProtectedAppendWrites: false",
                                                      "allowProtectedAppendWrites: true"))
    assert any("append" in p for p in problems), problems


def test_worm_check_fails_when_the_policy_is_left_unlocked(tmp_path: Path) -> None:
    def unlock(text: str) -> str:
        return "\n".join(line for line in text.splitlines() if "immutability-policy lock" not in line)

    problems = _worm_copy(tmp_path, lambda t: t, unlock)
    assert sum("does not lock" in p for p in problems) == 2, problems


def test_auth_check_passes_on_real_infra() -> None:
    assert check_infra.auth_problems(INFRA) == []


@pytest.mark.parametrize("case", sorted(AUTH_BROKEN))
def test_auth_check_and_checkov_fail_on_broken_auth(
    case: str, broken_run: tuple[dict[str, Path], dict[str, Any]]
) -> None:
    copies, report = broken_run
    copy = copies[case]
    problems = check_infra.auth_problems(copy)
    assert problems, f"{case}: scripts/check_infra.py found nothing wrong"
    failed = {(r["check_id"], r["resource"]) for r in _failed_in(report, copy)}
    custom_failed = {cid for cid, _ in failed if cid.startswith("CKV2_FACEENR_")}
    if AUTH_BROKEN[case][2]:
        assert ("CKV2_FACEENR_8", _expected_resource("Microsoft.Web/sites.functionApp", case)) in failed, (case, failed)
        assert custom_failed == {"CKV2_FACEENR_8"}
    else:
        assert custom_failed == set(), (case, custom_failed)


def test_infra_never_sets_principal_source_local_nor_website_auth_enabled() -> None:
    """Scan every file under infra/ (code and parameters), not only api.bicep's appSettings."""
    for f in sorted(INFRA.rglob("*")):
        if not f.is_file() or f.suffix not in (".bicep", ".json"):
            continue
        text = f.read_text(encoding="utf-8")
        code = check_infra.strip_comments(text) if f.suffix == ".bicep" else text
        assert "WEBSITE_AUTH_ENABLED" not in code, f"{f.relative_to(ROOT)} sets WEBSITE_AUTH_ENABLED"
        for m in re.finditer(r"PRINCIPAL_SOURCE", code):
            window = code[m.start(): m.start() + 120]
            assert "local" not in window.lower(), f"{f.relative_to(ROOT)}: {window!r}"
    settings = dict(_app_settings(API_BICEP.read_text(encoding="utf-8")))
    assert settings["PRINCIPAL_SOURCE"] == "'appservice'"
    assert settings["AUTH_TENANT_ID"] == "authTenantId"
    main = MAIN_BICEP.read_text(encoding="utf-8")
    assert "var effectiveAuthTenantId = empty(authTenantId) ? tenant().tenantId : authTenantId" in main
    assert "authTenantId: effectiveAuthTenantId" in main


def test_auth_parameters_come_from_the_azd_environment() -> None:
    params = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    # required, no default: azd stops (and scripts/preflight.sh explains) when AUTH_CLIENT_ID is unset
    assert params["authClientId"]["value"] == "${AUTH_CLIENT_ID}"
    assert params["authAllowedAudiences"]["value"] == "${AUTH_ALLOWED_AUDIENCES=}"
    assert params["authTenantId"]["value"] == "${AUTH_TENANT_ID=}"
    # v1 by default: only v1 tokens carry `amr`, which the app's MFA gate reads (docs/deployment.md)
    assert params["authIssuerVersion"]["value"] == "${AUTH_ISSUER_VERSION=v1}"
    main = MAIN_BICEP.read_text(encoding="utf-8")
    assert re.search(r"@minLength\(1\)\n@description\([^\n]*\)\nparam authClientId string\n", main)


def test_syntax_error_in_a_copy_fails_the_script(tmp_path: Path, checkov: Path) -> None:
    copy = _copy_infra(tmp_path / "infra")
    shutil.copytree(POLICIES, copy / "policies")
    target = copy / "app" / "servicebus.bicep"
    text = target.read_text(encoding="utf-8")
    # drop the closing brace of the namespace's `sku` object
    broken = text.replace("    tier: 'Standard'\n  }\n", "    tier: 'Standard'\n", 1)
    assert broken != text
    target.write_text(broken, encoding="utf-8")

    problems = check_infra.syntax_problems([target])
    assert problems and all(p.path == target for p in problems)

    proc = _run_script("--infra", str(copy), "--checkov", str(checkov))
    assert proc.returncode != 0, proc.stdout
    assert "check_infra: FAILED" in proc.stdout
    assert re.search(rf"{re.escape(str(target))}:\d+:\d+: (ERROR|MISSING)", proc.stdout), proc.stdout


# --------------------------------------------------------------------------------------------
# app settings in Bicep == settings the code reads
# --------------------------------------------------------------------------------------------


def _app_settings(text: str) -> list[tuple[str, str]]:
    """(name, value expression) of every entry of the function app's siteConfig.appSettings."""
    m = re.search(r"^(\s*)appSettings:\s*\[\n(.*?)^\1\]", text, re.MULTILINE | re.DOTALL)
    assert m, "no appSettings: [ ... ] block found in api.bicep"
    entries = re.findall(r"name:\s*'([^']+)'\s*\n\s*value:\s*(.+?)\s*$", m.group(2), re.MULTILINE)
    assert entries
    return entries


def _string_params(text: str) -> dict[str, str]:
    return dict(re.findall(r"^(?:param|var)\s+(\w+)(?:\s+string)?\s*=\s*'([^']*)'\s*$", text, re.MULTILINE))


def test_bicep_app_settings_are_exactly_the_azure_settings() -> None:
    entries = _app_settings(API_BICEP.read_text(encoding="utf-8"))
    names = [n for n, _ in entries]
    assert len(names) == len(set(names)), "duplicate app setting in api.bicep"
    in_bicep = set(names)
    expected = {s.name for s in SETTINGS if s.where in ("azure", "both")}
    local_only = {s.name for s in SETTINGS if s.where == "local"}

    assert not (in_bicep & local_only), f"local-only settings set in Azure: {sorted(in_bicep & local_only)}"
    assert not (in_bicep & FLEX_FORBIDDEN), f"settings deprecated on Flex / key-based: {sorted(in_bicep & FLEX_FORBIDDEN)}"
    assert expected - in_bicep == set(), f"settings the code reads but Bicep does not set: {sorted(expected - in_bicep)}"
    assert in_bicep - expected - PLATFORM_SETTINGS == set(), (
        f"settings set in Bicep that the code does not declare: {sorted(in_bicep - expected - PLATFORM_SETTINGS)}"
    )
    assert in_bicep >= PLATFORM_SETTINGS


def test_bicep_defaults_of_tunables_equal_settings_defaults() -> None:
    api = API_BICEP.read_text(encoding="utf-8")
    defaults = {s.name: s.default for s in SETTINGS}
    both_names = {s.name for s in SETTINGS if s.where == "both"}
    api_params = _string_params(api)
    main_params = _string_params(MAIN_BICEP.read_text(encoding="utf-8"))
    checked = 0
    for name, value in _app_settings(api):
        if name not in both_names:
            continue
        literal = re.fullmatch(r"'([^'$]*)'", value)
        if literal:
            assert literal.group(1) == defaults[name], f"api.bicep: {name} = {value} but defaults to '{defaults[name]}'"
            checked += 1
            continue
        if not re.fullmatch(r"\w+", value):
            continue
        for where, params in (("api.bicep", api_params), ("main.bicep", main_params)):
            if value in params:
                assert params[value] == defaults[name], (
                    f"{where}: {value} = '{params[value]}' but {name} defaults to '{defaults[name]}'"
                )
                checked += 1
    both = [s for s in SETTINGS if s.where == "both"]
    assert checked >= len(both), f"only {checked} defaults compared for {len(both)} tunables"


def test_managed_identity_settings_use_the_identity() -> None:
    settings = dict(_app_settings(API_BICEP.read_text(encoding="utf-8")))
    for conn in ("AzureWebJobsStorage", "PhotoStorage", "ServiceBusConnection"):
        assert settings[f"{conn}__credential"] == "'managedidentity'"
        assert settings[f"{conn}__clientId"] == "identityClientId"
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "'ClientId=${identityClientId};Authorization=AAD'"


def test_no_secret_is_read_or_written_by_the_infra() -> None:
    for f in sorted(INFRA.rglob("*")):
        if f.suffix not in (".bicep", ".json"):
            continue
        # code only: whole-line comments may name what is forbidden
        text = "\n".join(
            line for line in f.read_text(encoding="utf-8").lower().splitlines() if not line.lstrip().startswith("//")
        )
        for needle in ("listkeys(", "accountkey=", "sharedaccesskey", "listconnectionstrings(", "@secure()"):
            assert needle not in text, f"{f.relative_to(ROOT)} contains {needle!r}"


# --------------------------------------------------------------------------------------------
# function bindings vs settings and infra
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bindings() -> list[dict[str, Any]]:
    if not (ROOT / "function_app.py").is_file():
        pytest.fail("function_app.py not found at the repository root", pytrace=False)
    sys.path.insert(0, str(ROOT))
    try:
        import function_app
    except Exception as exc:
        pytest.fail(f"cannot import function_app: {type(exc).__name__}: {exc}", pytrace=False)
    from tests.fixtures.function_json import function_docs

    assert function_app.app is not None
    return [dict(doc) for doc in function_docs()]


def _all_strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _all_strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _all_strings(v)]
    return []


def test_every_binding_expression_is_a_declared_setting(bindings: list[dict[str, Any]]) -> None:
    assert bindings, "function_app.app has no functions"
    used = {m for fn in bindings for s in _all_strings(fn) for m in re.findall(r"%([^%\s]+)%", s)}
    assert used, "no %NAME% binding expressions found (expected queue/container names from settings)"
    assert used <= SETTING_NAMES, f"%NAME% used in bindings but not in SETTINGS: {sorted(used - SETTING_NAMES)}"


def test_every_binding_connection_is_configured_in_bicep(bindings: list[dict[str, Any]]) -> None:
    in_bicep = {n for n, _ in _app_settings(API_BICEP.read_text(encoding="utf-8"))}
    connections = {b["connection"] for fn in bindings for b in fn.get("bindings", []) if b.get("connection")}
    for conn in connections:
        assert conn in in_bicep or any(n.startswith(f"{conn}__") for n in in_bicep), (
            f"binding connection {conn!r} has no {conn} / {conn}__* app setting in api.bicep"
        )


def test_post_deploy_webhook_targets_an_event_grid_blob_trigger(bindings: list[dict[str, Any]]) -> None:
    main = MAIN_BICEP.read_text(encoding="utf-8")
    m = re.search(r"output ENROLL_FUNCTION_NAME string = '([^']+)'", main)
    assert m, "main.bicep must output ENROLL_FUNCTION_NAME for scripts/post-deploy.*"
    fn = next((f for f in bindings if f.get("name") == m.group(1)), None)
    assert fn is not None, f"no function named {m.group(1)!r}; functions: {[f.get('name') for f in bindings]}"
    triggers = [b for b in fn["bindings"] if b.get("type") == "blobTrigger"]
    assert triggers, f"{m.group(1)} is not a blob trigger"
    trigger = triggers[0]
    assert trigger.get("source") == "EventGrid", "Flex Consumption supports only the Event Grid blob trigger source"
    assert trigger["path"].split("/")[0] in ("%UPLOADS_CONTAINER%", "uploads")


# --------------------------------------------------------------------------------------------
# Service Bus entities == local stand-in topology
# --------------------------------------------------------------------------------------------


def test_servicebus_entities_match_local_topology() -> None:
    topology = json.loads((ROOT / "local" / "bus" / "topology.json").read_text(encoding="utf-8"))
    main_vars = _string_params(MAIN_BICEP.read_text(encoding="utf-8"))
    sb = (INFRA / "app" / "servicebus.bicep").read_text(encoding="utf-8")
    bicep_queues = {main_vars[v] for v in ("revocationsQueueName", "modelUpdatesQueueName", "reenrollWorkQueueName")}
    assert {q["name"] for q in topology["queues"]} == bicep_queues
    assert [t["name"] for t in topology["topics"]] == [main_vars["hrEventsTopicName"]]
    assert [s["name"] for s in topology["topics"][0]["subscriptions"]] == [main_vars["hrEventsSubscriptionName"]]

    max_delivery = int(re.search(r"param maxDeliveryCount int = (\d+)", sb).group(1))  # type: ignore[union-attr]
    lock = re.search(r"param lockDuration string = 'PT(\d+)S'", sb)
    assert lock, "lockDuration default must be PT<n>S"
    entities = topology["queues"] + topology["topics"][0]["subscriptions"]
    assert {e["maxDeliveryCount"] for e in entities} == {max_delivery}
    assert {e["lockSeconds"] for e in entities} == {int(lock.group(1))}
    # every queue and the topic: duplicate detection; queues and subscription: dead-letter on expiry
    assert sb.count("requiresDuplicateDetection: true") == len(bicep_queues) + 1
    assert sb.count("deadLetteringOnMessageExpiration: true") == len(bicep_queues) + 1
    assert "deadLetteringOnFilterEvaluationExceptions: true" in sb


# --------------------------------------------------------------------------------------------
# photo account: CORS for the browser upload, access logs, dead-letter lifecycle; roles
# --------------------------------------------------------------------------------------------

STORAGE_BICEP = INFRA / "app" / "storage.bicep"
RBAC_BICEP = INFRA / "app" / "rbac.bicep"


def _resource(path: Path, symbol: str) -> str:
    code = check_infra.strip_comments(path.read_text(encoding="utf-8"))
    for sym, _type, existing, body in check_infra.resource_blocks(code):
        if sym == symbol and not existing:
            return body
    raise AssertionError(f"resource {symbol} not found in {path.name}")


def _list(body: str, key: str) -> list[str]:
    m = re.search(rf"{key}: \[([^\]]*)\]", re.sub(r"\s+", " ", body))
    assert m, f"{key} not found"
    return [quoted or symbol for quoted, symbol in re.findall(r"'([^']*)'|(\w+)", m.group(1))]


def test_photo_blob_cors_allows_only_the_sas_upload_from_the_app_origin() -> None:
    body = _resource(STORAGE_BICEP, "photoBlobService")
    flat = re.sub(r"\s+", " ", body)
    assert flat.count("allowedOrigins:") == 1, "exactly one CORS rule"
    assert "allowedOrigins: corsAllowedOrigins " in flat
    assert _list(body, "allowedMethods") == ["PUT"]
    assert sorted(_list(body, "allowedHeaders")) == sorted([
        "x-ms-blob-type", "content-type", "x-ms-version", "x-ms-date", "x-ms-client-request-id", "content-length",
    ])
    assert "*" not in flat
    assert _list(body, "exposedHeaders") == ["x-ms-request-id"]
    max_age = int(re.search(r"maxAgeInSeconds: (\d+)", flat).group(1))  # type: ignore[union-attr]
    assert 0 < max_age <= 86400
    # the one origin is the function app's own, https, computed from the same name as the app
    main = MAIN_BICEP.read_text(encoding="utf-8")
    assert "var functionAppOrigin = 'https://${functionAppName}.azurewebsites.net'" in main
    assert re.search(r"corsAllowedOrigins: \[\s*functionAppOrigin\s*\]", main)
    assert "name: functionAppName" in main


def test_photo_blob_access_and_face_and_servicebus_logs_go_to_log_analytics() -> None:
    photo = re.sub(r"\s+", " ", _resource(STORAGE_BICEP, "photoBlobDiagnostics"))
    assert "scope: photoBlobService" in photo and "workspaceId: logAnalyticsWorkspaceId" in photo
    assert set(re.findall(r"category: '(\w+)' enabled: true", photo)) == {"StorageRead", "StorageWrite", "StorageDelete"}
    face = re.sub(r"\s+", " ", _resource(INFRA / "app" / "face.bicep", "faceDiagnostics"))
    assert "scope: face" in face and set(re.findall(r"category: '(\w+)' enabled: true", face)) == {"Audit"}
    sb = re.sub(r"\s+", " ", _resource(INFRA / "app" / "servicebus.bicep", "namespaceDiagnostics"))
    assert "scope: namespace" in sb and set(re.findall(r"category: '(\w+)' enabled: true", sb)) == {"OperationalLogs"}
    main = MAIN_BICEP.read_text(encoding="utf-8")
    assert main.count("logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId") == 3


def test_dead_lettered_erasures_and_hr_events_raise_an_alert() -> None:
    alert = re.sub(r"\s+", " ", _resource(INFRA / "app" / "servicebus.bicep", "deadLetterAlert"))
    assert "resource deadLetterAlert 'Microsoft.Insights/metricAlerts@" in (INFRA / "app" / "servicebus.bicep").read_text()
    assert "namespace.id" in alert
    assert "metricName: 'DeadletteredMessages'" in alert and "metricNamespace: 'Microsoft.ServiceBus/namespaces'" in alert
    assert re.search(r"name: 'EntityName' operator: 'Include' values: \[ revocationsQueueName hrEventsTopicName \]", alert)
    assert "operator: 'GreaterThan' threshold: 0" in alert and "enabled: true" in alert
    assert "docs/operations.md" in alert


def test_deadletter_container_has_a_lifecycle_delete_rule() -> None:
    flat = re.sub(r"\s+", " ", _resource(STORAGE_BICEP, "photoLifecycle"))
    rule = re.search(r"prefixMatch: \[ '\$\{deadLetterContainerName\}/' \].*?daysAfterModificationGreaterThan: (\w+)", flat)
    assert rule and rule.group(1) == "deadLetterMaxAgeDays"
    main = MAIN_BICEP.read_text(encoding="utf-8")
    assert re.search(r"param deadLetterRetentionDays int = \d+", main)
    assert "deadLetterMaxAgeDays: deadLetterRetentionDays" in main


def test_roles_least_privilege() -> None:
    rbac = check_infra.strip_comments(RBAC_BICEP.read_text(encoding="utf-8"))
    # Blob Data Contributor already includes generateUserDelegationKey/action: no Delegator.
    assert "db58b8e5-c6ad-4a2a-8342-4190687cbf4a" not in rbac
    # The HR receiver is scoped to this app's subscription of the topic, not the whole topic.
    receiver = re.sub(r"\s+", " ", _resource(RBAC_BICEP, "hrEventsReceiver"))
    assert "scope: hrEventsSubscription" in receiver
    # ftpsState is deprecated on Flex Consumption
    assert "ftpsState" not in check_infra.strip_comments(API_BICEP.read_text(encoding="utf-8"))


def test_only_the_app_may_publish_door_events() -> None:
    """EventGrid Data Sender is assigned once, to the app's identity, on the door-events topic only."""
    rbac = check_infra.strip_comments(RBAC_BICEP.read_text(encoding="utf-8"))
    assert rbac.count("roles.eventGridDataSender)") == 2  # the name guid and the roleDefinitionId of one assignment
    sender = re.sub(r"\s+", " ", _resource(RBAC_BICEP, "doorEventsSender"))
    assert "scope: doorEventsTopic" in sender and "principalId: appPrincipalId" in sender
    topic = re.sub(r"\s+", " ", _resource(INFRA / "app" / "doorevents.bicep", "topic"))
    assert "disableLocalAuth: true" in topic and "inputSchema: 'CloudEventSchemaV1_0'" in topic
