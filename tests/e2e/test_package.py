"""The package that azd deploys is the package that is tested.

`scripts/package.py` builds the zip as azd does (.funcignore honoured). These tests unpack it and
prove that the app runs from it alone: it imports in a fresh virtualenv made from the package's own
requirements.txt, and the local host, serving the unpacked package with nothing of the working tree
importable, runs an enrollment, an HR termination and a self-service revocation end to end, while an
audit hook records every file the process opens.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_enrollment import active_group
from tests.e2e.test_revocation import assert_erased, enroll, send, termination
from tests.fixtures.app_stack import AppStack, app_env
from tests.fixtures.azurite import ROOT, Azurite
from tests.fixtures.local_host import start_host

pytestmark = pytest.mark.e2e

VENV_CACHE = ROOT / ".local" / "package-venv"


def build_package(dest: Path) -> Path:
    archive = dest / "face-enrollment.zip"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "package.py"), "--out", str(archive)], cwd=ROOT,
                   check=True, capture_output=True, timeout=120)
    app_dir = dest / "app"
    with zipfile.ZipFile(archive) as z:
        z.extractall(app_dir)
    return app_dir


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_package(tmp_path_factory.mktemp("package"))


def fresh_venv(requirements: Path) -> Path:
    """A virtualenv with the package's requirements.txt and nothing else (cached by its hash)."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    target = VENV_CACHE / digest
    python = target / "bin" / "python"
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(target)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "-r", str(requirements)], check=True, timeout=600)
        (target / ".complete").touch()
    return python


IMPORT_EVERYTHING = r"""
import importlib, json, pkgutil, sys
import function_app
names = sorted(f.get_function_name() for f in function_app.app.get_functions())
modules = []
for package in ("shared", "functions"):
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        importlib.import_module(info.name)
        modules.append(info.name)
outside = sorted({m.__file__ for m in list(sys.modules.values())
                  if getattr(m, "__file__", None) and (m.__name__.split(".")[0] in ("shared", "functions", "function_app"))
                  and not m.__file__.startswith(sys.argv[1])})
print(json.dumps({"functions": names, "modules": modules, "outside": outside}))
"""


def test_the_package_imports_with_its_requirements_alone(package_dir: Path) -> None:
    for required in ("function_app.py", "host.json", "requirements.txt", "shared/contracts/hr-events.schema.json",
                     "web/index.html", "web/app.js", "web/i18n/en.json"):
        assert (package_dir / required).exists(), f"{required} is not in the package"
    assert not (package_dir / "local").exists() and not (package_dir / "tests").exists()
    python = fresh_venv(package_dir / "requirements.txt")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    out = subprocess.run([str(python), "-E", "-s", "-c", IMPORT_EVERYTHING, str(package_dir)], cwd=package_dir,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    packaged = json.loads(out.stdout)
    assert not packaged["outside"], f"modules imported from outside the package: {packaged['outside']}"
    # The same functions as the working tree registers (in a process of its own: get_functions() runs once).
    tree = subprocess.run([sys.executable, "-c", "import function_app, json; print(json.dumps(sorted("
                           "f.get_function_name() for f in function_app.app.get_functions())))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert packaged["functions"] == json.loads(tree.stdout)
    assert "shared.adapters.servicebus_publisher" in packaged["modules"]


@pytest.fixture(scope="module")
def packaged_stack(azurite: Azurite, face_emulator: Any, package_dir: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppStack, Path]]:
    work = tmp_path_factory.mktemp("packaged-host")
    code_root = work / "hostcode"  # the local host alone: no shared/, functions/ or terms/ of the tree
    shutil.copytree(ROOT / "local", code_root / "local", ignore=shutil.ignore_patterns("__pycache__"))
    opens = work / "opens.txt"
    env = app_env(azurite, face_emulator.endpoint)
    host = start_host(env=env, log_path=work / "host.log", code_root=code_root, app_dir=package_dir,
                      extra_args=["--audit-opens", str(opens),
                                  "--lock-seconds", "5", "--no-timers"])
    yield AppStack(host, azurite, face_emulator, env), opens
    host.stop()


def test_the_packaged_app_enrolls_terminates_and_revokes(packaged_stack: tuple[AppStack, Path], package_dir: Path,
                                                          tmp_path: Path) -> None:
    stack, opens = packaged_stack
    leaver, leaver_employee = f"u-{uuid.uuid4().hex[:8]}", f"E{uuid.uuid4().hex[:6]}"
    row = enroll(stack, leaver, leaver_employee, ["family2-man/1.jpg"])
    group = active_group(stack)
    send(stack, tmp_path, topic="hr-events", body=termination(leaver_employee), message_id=f"hr-{uuid.uuid4().hex}")
    assert_erased(stack, leaver, row, group)

    user, employee = f"u-{uuid.uuid4().hex[:8]}", f"E{uuid.uuid4().hex[:6]}"
    row = enroll(stack, user, employee, ["family2-lady/1.jpg"], store=False)
    assert stack.call("DELETE", "enrollment", user=user).status_code == 202
    assert_erased(stack, user, row, group)

    opened = [Path(line) for line in opens.read_text().splitlines()]
    tree_files = [p for p in opened
                  if p.is_relative_to(ROOT) and not p.is_relative_to(ROOT / ".venv") and not p.is_relative_to(sys.prefix)]
    assert not tree_files, f"the packaged app read files of the working tree: {tree_files[:10]}"
    from_package = {p.relative_to(package_dir).as_posix() for p in opened if p.is_relative_to(package_dir)}
    # The data files the app reads at run time came from the package (so the audit saw them).
    assert "shared/contracts/hr-events.schema.json" in from_package
    assert any(name.startswith("terms/") for name in from_package)
