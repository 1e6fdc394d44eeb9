"""scripts/preflight.sh (the azd preprovision hook) against a fake `az` on the PATH.

Each scenario in tests/fixtures/fake_az/scenarios records the JSON documents az returns for the
commands the preflight runs; tests/fixtures/fake_az/az.py replays them, applies the preflight's own
`--query` (JMESPath) and `-o tsv` as az does, and logs every call. The fake runs with the checkov
virtualenv's Python, which has jmespath (pinned in requirements-infra.txt). Every branch is run:
all good, purge needed, ZRS unavailable, providers unregistered, region without Flex/Face, not
signed in, sign-in app registration missing. The preflight must only ever read: a test fails if it
runs any command that changes Azure. pwsh is not installed here, so scripts/preflight.ps1 is held
equivalent by review plus a test that it names the same providers, queries and fix commands.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PREFLIGHT_SH = ROOT / "scripts" / "preflight.sh"
PREFLIGHT_PS1 = ROOT / "scripts" / "preflight.ps1"
FAKE_AZ = ROOT / "tests" / "fixtures" / "fake_az" / "az.py"
SCENARIOS = ROOT / "tests" / "fixtures" / "fake_az" / "scenarios"
CLIENT_ID = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
PROVIDERS = [
    "Microsoft.Web", "Microsoft.Storage", "Microsoft.CognitiveServices", "Microsoft.ServiceBus",
    "Microsoft.EventGrid", "Microsoft.OperationalInsights", "Microsoft.Insights", "Microsoft.ManagedIdentity",
]
# az verbs that change something; the preflight may print them, never run them.
MUTATING = {"register", "purge", "create", "delete", "update", "set", "put", "post", "patch", "login"}

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.fixture(scope="module")
def fake_az_python() -> str:
    """A Python with jmespath for the fake az: the checkov virtualenv's (CHECKOV_PYTHON overrides)."""
    candidate = os.environ.get("CHECKOV_PYTHON") or str(ROOT / ".venv-checkov" / "bin" / "python")
    probe = subprocess.run([candidate, "-c", "import jmespath"], capture_output=True, text=True) \
        if Path(candidate).exists() else None
    if probe is None or probe.returncode != 0:
        pytest.fail(
            f"no Python with jmespath at {candidate}: python3 -m venv .venv-checkov && "
            ".venv-checkov/bin/pip install -r requirements-infra.txt", pytrace=False,
        )
    return candidate


@dataclass
class Run:
    rc: int
    out: str
    err: str
    calls: list[dict[str, Any]]

    @property
    def text(self) -> str:
        return self.out + self.err


def run_preflight(tmp_path: Path, scenario: str, python: str = sys.executable, **env: str | None) -> Run:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    az = bindir / "az"
    az.write_text(f'#!/bin/sh\nexec "{python}" "{FAKE_AZ}" "$@"\n', encoding="utf-8")
    az.chmod(0o755)
    log = tmp_path / f"{Path(scenario).stem}.calls.jsonl"
    log.unlink(missing_ok=True)
    base = {
        # no inherited AZURE_* or az: only this fake and the basic tools
        "PATH": f"{bindir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AZURE_ENV_NAME": "fe-test",
        "AZURE_LOCATION": "westeurope",
        "AUTH_CLIENT_ID": CLIENT_ID,
        "RESOURCE_TOKEN": "abc123xyz",
        "FAKE_AZ_SCENARIO": scenario if scenario.endswith(".json") else str(SCENARIOS / f"{scenario}.json"),
        "FAKE_AZ_LOG": str(log),
    }
    for key, value in env.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    proc = subprocess.run(["bash", str(PREFLIGHT_SH)], capture_output=True, text=True, env=base, timeout=60, cwd=ROOT)
    calls = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []
    return Run(proc.returncode, proc.stdout, proc.stderr, calls)


def assert_read_only_and_recorded(run: Run) -> None:
    for call in run.calls:
        argv = [str(a) for a in call["argv"]]
        assert call["matched"], f"az call not recorded in the scenario: {argv}"
        verbs = set(argv[:3]) | ({argv[argv.index("--method") + 1]} if "--method" in argv else set())
        assert not (verbs & MUTATING), f"the preflight ran a command that changes Azure: az {' '.join(argv)}"


def stops(run: Run) -> list[str]:
    return re.findall(r"preflight: STOP: (.*)", run.err)


# --------------------------------------------------------------------------------------------


def test_all_good_passes_and_explains_the_manual_steps(tmp_path: Path, fake_az_python: str) -> None:
    run = run_preflight(tmp_path, "all_good", fake_az_python)
    assert run.rc == 0, run.text
    assert "preflight: OK" in run.out
    assert stops(run) == []
    # what no script can do, with the official pages
    for needle in ("ResourceKindRequireAcceptTerms", "https://aka.ms/csrainotice", "UnsupportedFeature",
                   "https://aka.ms/facerecognition",
                   "https://learn.microsoft.com/legal/cognitive-services/computer-vision/limited-access-identity"):
        assert needle in run.out
    assert_read_only_and_recorded(run)
    # every query the preflight sent is valid JMESPath for the recorded documents (a bad --query
    # makes az, and the fake, exit 2), and nothing was left unchecked
    assert [c["argv"] for c in run.calls if c["exit"] != 0] == []
    assert "could not check" not in run.err
    # every check ran: one provider call each, the region checks, the SKU query, the deleted list
    argvs = [" ".join(map(str, c["argv"])) for c in run.calls]
    for ns in PROVIDERS:
        assert any(f"provider show --namespace {ns} " in a for a in argvs), ns
    assert any("list-flexconsumption-locations" in a and "westeurope" in a for a in argvs)
    assert any("list-skus --kind Face --location westeurope" in a for a in argvs)
    assert any(a.startswith("rest --method get") and "Microsoft.Storage/skus" in a and "Standard_ZRS" in a for a in argvs)
    assert any("list-deleted" in a and "kind=='Face'" in a for a in argvs)


def test_soft_deleted_face_account_stops_with_the_purge_command(tmp_path: Path, fake_az_python: str) -> None:
    run = run_preflight(tmp_path, "purge_needed", fake_az_python)
    assert run.rc == 1, run.text
    assert len(stops(run)) == 1 and "soft-deleted Face account 'face-abc123xyz'" in stops(run)[0]
    assert ("az cognitiveservices account purge --location westeurope --resource-group rg-fe-test "
            "--name face-abc123xyz") in run.err
    assert "azd env set FACE_NAME_SUFFIX" in run.err and "azd down --purge" in run.err
    # the account in another resource group is someone else's: not reported
    assert "face-zzz999" not in run.text
    assert_read_only_and_recorded(run)


def test_soft_deleted_face_account_found_without_resource_token(tmp_path: Path, fake_az_python: str) -> None:
    # a new azd environment with the old name: no RESOURCE_TOKEN yet, same resource group
    run = run_preflight(tmp_path, "purge_needed", fake_az_python, RESOURCE_TOKEN=None)
    assert run.rc == 1, run.text
    assert "--name face-abc123xyz" in run.err and "face-zzz999" not in run.text


def test_name_suffix_avoids_the_soft_deleted_account(tmp_path: Path, fake_az_python: str) -> None:
    run = run_preflight(tmp_path, "purge_needed", fake_az_python, FACE_NAME_SUFFIX="2")
    assert run.rc == 0, run.text
    assert stops(run) == []


def test_zrs_unavailable_stops_and_offers_lrs(tmp_path: Path, fake_az_python: str) -> None:
    run = run_preflight(tmp_path, "zrs_unavailable", fake_az_python)
    assert run.rc == 1, run.text
    assert len(stops(run)) == 1 and "zone-redundant storage (Standard_ZRS)" in stops(run)[0]
    assert "azd env set STORAGE_SKU Standard_LRS" in run.err
    assert_read_only_and_recorded(run)


def test_zrs_unavailable_is_fine_once_lrs_is_chosen(tmp_path: Path, fake_az_python: str) -> None:
    run = run_preflight(tmp_path, "zrs_unavailable", fake_az_python, STORAGE_SKU="Standard_LRS")
    assert run.rc == 0, run.text
    assert not any("Microsoft.Storage/skus" in " ".join(map(str, c["argv"])) for c in run.calls)


def test_unregistered_providers_stop_with_register_commands(tmp_path: Path, fake_az_python: str) -> None:
    run = run_preflight(tmp_path, "providers_unregistered", fake_az_python)
    assert run.rc == 1, run.text
    assert len(stops(run)) == 1
    for ns in ("Microsoft.EventGrid", "Microsoft.ServiceBus", "Microsoft.CognitiveServices"):
        assert f"az provider register --namespace {ns} --wait" in run.err
    for ns in set(PROVIDERS) - {"Microsoft.EventGrid", "Microsoft.ServiceBus", "Microsoft.CognitiveServices"}:
        assert f"--namespace {ns} " not in run.err
    assert "Microsoft.CognitiveServices (Registering)" in stops(run)[0]
    assert_read_only_and_recorded(run)


def test_region_without_flex_or_face_stops_twice(tmp_path: Path, fake_az_python: str) -> None:
    run = run_preflight(tmp_path, "region_unsupported", fake_az_python)
    assert run.rc == 1, run.text
    found = stops(run)
    assert len(found) == 2
    assert "Flex Consumption" in found[0] and "Face API" in found[1]
    assert "2 problem(s) found; nothing was created" in run.err


def test_a_failed_read_is_reported_never_taken_as_all_clear(tmp_path: Path, fake_az_python: str) -> None:
    # the deployer may list providers but not deleted accounts (or az is throttled): the check
    # must say it could not look, not pass silently
    doc = json.loads((SCENARIOS / "purge_needed.json").read_text(encoding="utf-8"))
    for response in doc["responses"]:
        if response["args"][:3] == ["cognitiveservices", "account", "list-deleted"]:
            response.pop("json")
            response.update(stderr="ERROR: (AuthorizationFailed) The client does not have authorization.\n", exit=1)
    scenario = tmp_path / "list_deleted_forbidden.json"
    scenario.write_text(json.dumps(doc), encoding="utf-8")
    run = run_preflight(tmp_path, str(scenario), fake_az_python)
    assert "could not check" in run.err and "soft-deleted Face accounts" in run.err, run.text
    assert stops(run) == [] and run.rc == 0  # reported, not blocking: the other checks passed


def test_not_signed_in_stops_at_once(tmp_path: Path, fake_az_python: str) -> None:
    run = run_preflight(tmp_path, "not_logged_in", fake_az_python)
    assert run.rc == 1
    assert "az login" in run.err
    assert len(run.calls) == 1  # nothing else was tried


@pytest.mark.parametrize("client_id", [None, "", "my-front-end"])
def test_missing_or_malformed_auth_client_id_stops(tmp_path: Path, fake_az_python: str, client_id: str | None) -> None:
    run = run_preflight(tmp_path, "all_good", fake_az_python, AUTH_CLIENT_ID=client_id)
    assert run.rc == 1, run.text
    assert len(stops(run)) == 1 and "AUTH_CLIENT_ID" in stops(run)[0]
    assert "azd env set AUTH_CLIENT_ID" in run.err
    if not client_id:
        assert "/.auth/login/aad/callback" in run.err and "FaceEnrollment.Admin" in run.err


def test_missing_location_stops(tmp_path: Path, fake_az_python: str) -> None:
    run = run_preflight(tmp_path, "all_good", fake_az_python, AZURE_LOCATION=None)
    assert run.rc == 1 and "azd env set AZURE_LOCATION" in run.err


def test_skip_switch_runs_nothing(tmp_path: Path, fake_az_python: str) -> None:
    run = run_preflight(tmp_path, "not_logged_in", fake_az_python, PREFLIGHT_SKIP="1")
    assert run.rc == 0 and run.calls == []


def test_every_scenario_file_is_valid_and_used() -> None:
    names = {p.stem for p in SCENARIOS.glob("*.json")}
    assert names == {"all_good", "purge_needed", "zrs_unavailable", "providers_unregistered",
                     "region_unsupported", "not_logged_in"}
    for p in SCENARIOS.glob("*.json"):
        doc = json.loads(p.read_text(encoding="utf-8"))
        assert doc["description"] and doc["responses"]


def test_powershell_twin_names_the_same_checks_and_fixes() -> None:
    sh = PREFLIGHT_SH.read_text(encoding="utf-8")
    ps = PREFLIGHT_PS1.read_text(encoding="utf-8")
    for ns in PROVIDERS:
        assert f"  {ns}\n" in sh and f"'{ns}'" in ps
    for needle in (
        "az account show --query id -o tsv",
        "az functionapp list-flexconsumption-locations",
        "az cognitiveservices account list-skus --kind Face",
        "Microsoft.Storage/skus?api-version=2023-05-01",
        "az cognitiveservices account list-deleted",
        "az cognitiveservices account purge --location",
        "azd env set STORAGE_SKU Standard_LRS",
        "azd env set FACE_NAME_SUFFIX 2",
        "azd env set AUTH_CLIENT_ID",
        "az provider register --namespace",
        "https://aka.ms/csrainotice",
        "https://aka.ms/facerecognition",
        "PREFLIGHT_SKIP",
        "could not check",
    ):
        assert needle in sh, f"preflight.sh lacks {needle!r}"
        assert needle in ps, f"preflight.ps1 lacks {needle!r}"


def test_azure_yaml_runs_the_preflight_before_provisioning() -> None:
    text = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    m = re.search(r"\n  preprovision:\n(.*?)\n  \w", text, re.S)
    assert m, "no preprovision hook in azure.yaml"
    assert "run: ./scripts/preflight.sh" in m.group(1) and "run: ./scripts/preflight.ps1" in m.group(1)
    assert "continueOnError: false" in m.group(1)
    assert os.access(PREFLIGHT_SH, os.X_OK), "scripts/preflight.sh must be executable"
