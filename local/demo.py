"""The main scenario end to end, through the HTTP API exactly as a front end calls it.

    python -m local.demo --photos .local/demo-photos

Starts its own local stack (Azurite, Face emulator, Functions host) on free ports, so it never
collides with a running `make up`; consents, uploads, enrolls, identifies, erases on an HR
termination and on a user's own request; prints a numbered report and a summary; stops everything
it started; exits 0 only if every step did what it should. Child logs: .local/logs/demo/.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from local.stack import LOG_DIR, ROOT, Stack, StackError, running_stack

if TYPE_CHECKING:
    from shared.adapters.face_rest import FaceRestClient

PHOTOS_NEEDED = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")
ALICE = {"oid": "demo-alice", "employeeid": "E1001", "name": "Alice"}
BOB = {"oid": "demo-bob", "employeeid": "E1002", "name": "Bob"}
ADMIN = {"oid": "demo-admin", "name": "Admin"}
ADMIN_ROLE = "FaceEnrollment.Admin"
HTTP_TIMEOUT = 30.0
POLL_INTERVAL = 0.4
NOT_A_PHOTO = b"%PDF-1.4 quarterly report, definitely not a face " * 60


class StepFailed(Exception):
    """The step did not do what it should; the message says what happened instead."""


# --- the caller: what a front end sends -----------------------------------------------------------
def principal_header(user: dict[str, str], *, mfa: bool = True, admin: bool = False) -> str:
    """App Service Authentication's X-MS-CLIENT-PRINCIPAL for a signed-in Entra user."""
    claims = [{"typ": "oid", "val": user["oid"]}, {"typ": "name", "val": user.get("name", user["oid"])}]
    claims += [{"typ": "amr", "val": "pwd"}] + ([{"typ": "amr", "val": "mfa"}] if mfa else [])
    if user.get("employeeid"):
        claims.append({"typ": "employeeid", "val": user["employeeid"]})
    if admin:
        claims.append({"typ": "roles", "val": ADMIN_ROLE})
    doc = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}
    return base64.b64encode(json.dumps(doc).encode()).decode()


class Api:
    def __init__(self, base_url: str) -> None:
        self.base = f"{base_url}/api"
        self.session = requests.Session()
        self.session.headers["x-client-id"] = "local-demo"

    def call(self, method: str, path: str, *, user: dict[str, str] | None = None, mfa: bool = True,
             admin: bool = False, expect: int | None = None, body: Any = None) -> requests.Response:
        headers = {"X-MS-CLIENT-PRINCIPAL": principal_header(user, mfa=mfa, admin=admin)} if user else {}
        r = self.session.request(method, f"{self.base}/{path}", headers=headers, json=body, timeout=HTTP_TIMEOUT)
        if expect is not None and r.status_code != expect:
            raise StepFailed(f"{method} /api/{path} answered {r.status_code} (expected {expect}): {r.text[:400]}")
        return r

    def json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        r = self.call(method, path, **kwargs)
        try:
            doc: dict[str, Any] = r.json()
        except ValueError as exc:
            raise StepFailed(f"{method} /api/{path} answered {r.status_code} with non-JSON: {r.text[:200]}") from exc
        return doc

    def wait_status(self, user: dict[str, str], done: Callable[[dict[str, Any]], bool], *, what: str,
                    timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = self.json("GET", "enrollment", user=user, expect=200)
            if done(last):
                return last
            time.sleep(POLL_INTERVAL)
        raise StepFailed(f"{user['name']}: {what} not reached within {timeout:.0f}s; last status: "
                         f"{json.dumps(last)[:500]}")


# --- the step runner --------------------------------------------------------------------------------
@dataclass
class StepResult:
    number: int
    title: str
    outcome: str  # "pass", "fail" or "skip"
    short: str = ""
    summary: str = ""
    detail: list[RenderableType] = field(default_factory=list)
    seconds: float = 0.0


class Report:
    """Runs numbered steps, prints each as it ends, keeps the results for the summary."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.results: list[StepResult] = []
        self._secrets: list[str] = []

    def secret(self, value: str) -> str:
        """Registers a value that must never appear in the report (personIds)."""
        if value:
            self._secrets.append(value)
        return value

    def _clean(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "‹redacted›")
        return text

    def step(self, title: str, run: Callable[[StepResult], str], *, short: str = "",
             needs: Sequence[int] = ()) -> bool:
        """Runs one step. A step whose ``needs`` did not pass is skipped (and counts as not passed)."""
        result = StepResult(len(self.results) + 1, title, "pass", short)
        failed_needs = [n for n in needs if self.results[n - 1].outcome != "pass"]
        if failed_needs:
            result.outcome = "skip"
            result.summary = "skipped: needs step " + ", ".join(map(str, failed_needs))
        else:
            started = time.monotonic()
            try:
                with self.console.status(f"{result.number}. {title}…"):
                    result.summary = run(result)
            except StepFailed as exc:
                result.outcome, result.summary = "fail", self._clean(str(exc))
            except Exception as exc:  # an unexpected error fails this step; the report goes on
                result.outcome, result.summary = "fail", self._clean(f"{type(exc).__name__}: {exc}")
            result.seconds = time.monotonic() - started
        self.results.append(result)
        self._print(result)
        return result.outcome == "pass"

    def _print(self, r: StepResult) -> None:
        mark = {"pass": "[green]✓[/]", "fail": "[red]✗[/]", "skip": "[yellow]–[/]"}[r.outcome]
        self.console.print(f"{mark} [bold]{r.number:>2}. {escape(r.title)}[/] [dim]({r.seconds:.1f}s)[/]")
        style = "red" if r.outcome == "fail" else "yellow" if r.outcome == "skip" else "italic"
        self.console.print(indent(Text(r.summary, style=style)))
        for item in r.detail:
            self.console.print(indent(Text(self._clean(item), style="dim")) if isinstance(item, str) else item)
        self.console.print()

    @property
    def ok(self) -> bool:
        return all(r.outcome == "pass" for r in self.results)

    def summary(self, total_seconds: float) -> Table:
        passed = sum(r.outcome == "pass" for r in self.results)
        table = Table(title=f"Demo summary: {passed}/{len(self.results)} steps passed in {total_seconds:.0f}s",
                      title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("Step")
        table.add_column("Result", no_wrap=True)
        table.add_column("s", justify="right")
        for r in self.results:
            result = {"pass": "[green]✓ pass[/]", "fail": "[red]✗ FAIL[/]", "skip": "[yellow]– skipped[/]"}[r.outcome]
            table.add_row(str(r.number), escape(r.short or r.title), result, f"{r.seconds:.1f}")
        return table


def indent(renderable: RenderableType) -> RenderableType:
    from rich.padding import Padding

    return Padding(renderable, (0, 0, 0, 6))


# --- the scenario -------------------------------------------------------------------------------------
class Scenario:
    def __init__(self, stack: Stack, photos: Path, report: Report) -> None:
        self.stack = stack
        self.photos = photos
        self.report = report
        self.api = Api(stack.host_url)
        self.prefix = stack.env.get("TABLE_PREFIX", "faceenroll")
        self.uploads_container = stack.env.get("UPLOADS_CONTAINER", "uploads")
        self.kept_container = stack.env.get("KEPT_PHOTOS_CONTAINER", "kept-photos")
        self.terms_version = ""
        self.alice_uploads: list[str] = []
        # Held in memory only, never printed: the Face ids and the kept-photo token of Alice.
        self._alice_group = ""
        self._alice_person = ""
        self._alice_kept_token = ""

    # helpers
    def photo(self, name: str) -> bytes:
        return (self.photos / name).read_bytes()

    def table(self, name: str) -> Any:
        from azure.data.tables import TableServiceClient

        return TableServiceClient.from_connection_string(self.stack.connection_string).get_table_client(
            f"{self.prefix}{name}")

    def user_row(self, user_key: str) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return dict(self.table("users").get_entity(user_key, "user"))
        except ResourceNotFoundError:
            return None

    def blobs(self, container: str) -> list[str]:
        from azure.storage.blob import BlobServiceClient

        c = BlobServiceClient.from_connection_string(self.stack.connection_string).get_container_client(container)
        return [b.name for b in c.list_blobs()] if c.exists() else []

    def face(self) -> FaceRestClient:
        from shared.adapters.face_rest import FaceRestClient

        return FaceRestClient(endpoint=self.stack.face_endpoint, key="demo")

    def upload(self, user: dict[str, str], photos: list[bytes]) -> list[dict[str, Any]]:
        slots: list[dict[str, Any]] = self.api.json("POST", "enrollment/uploads", user=user, expect=201,
                                                    body={"count": len(photos)})["uploads"]
        for slot, data in zip(slots, photos, strict=True):
            put = requests.put(slot["url"], data=data, headers={"x-ms-blob-type": "BlockBlob"}, timeout=HTTP_TIMEOUT)
            if put.status_code != 201:
                raise StepFailed(f"PUT to the upload URL answered {put.status_code}: {put.text[:300]}")
        return slots

    @staticmethod
    def photo_table(status: dict[str, Any], names: dict[str, str]) -> Table:
        t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        t.add_column("photo")
        t.add_column("status")
        t.add_column("reasons")
        for p in status.get("photos", []):
            colour = "green" if p["status"] == "accepted" else "red" if p["status"] == "rejected" else "yellow"
            t.add_row(names.get(p["uploadId"], p["uploadId"][:8]), f"[{colour}]{p['status']}[/]",
                      escape(" ".join(p.get("reasons") or []) or "—"))
        return t

    # steps
    def terms(self, r: StepResult) -> str:
        terms = self.api.json("GET", "consent/terms", user=ALICE, expect=200)
        self.terms_version = str(terms.get("termsVersion") or "")
        purposes = terms.get("purposes") or []
        if not self.terms_version or not purposes:
            raise StepFailed(f"terms without a version or purposes: {json.dumps(terms)[:300]}")
        r.detail.append(indent(Group(*(Text(f"• {p}") for p in purposes))))
        return f"terms version {self.terms_version}: “{terms.get('title')}”, {len(purposes)} purposes"

    def no_mfa(self, r: StepResult) -> str:
        resp = self.api.call("POST", "consent", user=ALICE, mfa=False,
                             body={"termsVersion": self.terms_version, "accepted": True, "storePhotos": True})
        if resp.status_code != 403:
            raise StepFailed(f"consent without MFA answered {resp.status_code} (expected 403): {resp.text[:300]}")
        message = resp.json().get("error", {}).get("message", "")
        return f"403 Forbidden: {message}"

    def consent(self, r: StepResult) -> str:
        for user, keep in ((ALICE, True), (BOB, False)):
            got = self.api.json("POST", "consent", user=user, expect=201,
                                body={"termsVersion": self.terms_version, "accepted": True, "storePhotos": keep})
            r.detail.append(f"{user['name']} ({user['oid']}, employee {user['employeeid']}): 201, storePhotos={keep}"
                            + (f", consent recorded at {got['grantedAt']}" if "grantedAt" in got else ""))
        return "both consents recorded (201 Created)"

    def alice_uploads_step(self, r: StepResult) -> str:
        slots = self.upload(ALICE, [self.photo("obama.jpg"), self.photo("obama2.jpg")])
        self.alice_uploads = [s["uploadId"] for s in slots]
        read = requests.get(slots[0]["url"], timeout=HTTP_TIMEOUT)
        if read.status_code != 403:
            raise StepFailed(f"GET on the upload URL answered {read.status_code}: the SAS should be create-only")
        r.detail.append("obama.jpg, obama2.jpg → PUT 201 Created (x-ms-blob-type: BlockBlob)")
        r.detail.append(f"GET on the same SAS URL → {read.status_code}: the URL can create its blob, never read it")
        return "2 upload URLs issued; both photos uploaded straight to blob storage"

    def bob_uploads(self, r: StepResult) -> str:
        slots = self.upload(BOB, [self.photo("biden.jpg"), NOT_A_PHOTO])
        names = {slots[0]["uploadId"]: "biden.jpg", slots[1]["uploadId"]: "report.pdf (not a photo)"}
        status = self.api.wait_status(
            BOB, lambda s: len(s["photos"]) == 2 and all(p["status"] in ("accepted", "rejected") for p in s["photos"])
            and s["status"] in ("enrolled", "failed"), what="a final status", timeout=60)
        r.detail.append(indent(self.photo_table(status, names)))
        by_name = {names[p["uploadId"]]: p for p in status["photos"]}
        bad, good = by_name["report.pdf (not a photo)"], by_name["biden.jpg"]
        if bad["status"] != "rejected" or not bad.get("reasons"):
            raise StepFailed(f"the non-photo was not rejected with reasons: {bad}")
        if good["status"] != "accepted":
            raise StepFailed(f"biden.jpg was not accepted: {' '.join(good.get('reasons') or [])}")
        return f"Bob's status: {status['status']}; the non-photo is rejected with a reason he can act on"

    def alice_enrolled(self, r: StepResult) -> str:
        names = dict(zip(self.alice_uploads, ("obama.jpg", "obama2.jpg"), strict=True))
        status = self.api.wait_status(ALICE, lambda s: s["status"] in ("enrolled", "failed")
                                      and all(p["status"] in ("accepted", "rejected") for p in s["photos"]),
                                      what="enrolled", timeout=60)
        r.detail.append(indent(self.photo_table(status, names)))
        if status["status"] != "enrolled":
            raise StepFailed(f"Alice's status is {status['status']}, not enrolled")
        return f"Alice is enrolled (storePhotos={status.get('storePhotos')}, terms {status['consent']['termsVersion']})"

    def identify(self, r: StepResult) -> str:
        state = self.table("state").get_entity("group", "active")
        self._alice_group = str(state["groupId"])
        row = self.user_row(ALICE["oid"])
        if not row or not row.get("personId"):
            raise StepFailed("Alice has no personId in the users table")
        self._alice_person = self.report.secret(str(row["personId"]))
        self._alice_kept_token = str(row.get("keptToken") or "")
        kept = [b for b in self.blobs(self.kept_container) if self._alice_kept_token
                and b.startswith(self._alice_kept_token + "/")]
        with self.face() as face:
            faces = face.detect(self.photo("obama3.jpg"), recognition_model="recognition_04")
            if not faces:
                raise StepFailed("no face detected in obama3.jpg")
            result = face.identify(self._alice_group, [str(faces[0].face_id)], max_candidates=1)
        candidates = list(result[0].candidates) if result else []
        same = bool(candidates) and candidates[0].person_id == self._alice_person
        r.detail.append(f"obama3.jpg (never uploaded): {len(faces)} face detected; identify in the active group → "
                        f"{len(candidates)} candidate" + (f", confidence {candidates[0].confidence:.2f}"
                                                          if candidates else ""))
        r.detail.append(f"Alice's photos kept (storePhotos=true): {len(kept)} in container {self.kept_container}")
        if not same:
            raise StepFailed("identified as alice's person: no")
        return "identified as alice's person: yes (the personId itself stays out of this report)"

    def model_update(self, r: StepResult) -> str:
        """A recognition model update: Alice (kept photos) is re-enrolled automatically, Bob is asked to enroll again."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        cmd = [sys.executable, "-m", "local.reenroll", "--api", self.stack.host_url, "--interval", "0.3",
               "start", "--model", "recognition_05", "--watch"]
        self.report.console.print("    $ python -m local.reenroll start --model recognition_05 --watch")
        # The operator CLI draws its live progress bar straight onto this terminal.
        done = subprocess.run(cmd, cwd=ROOT, env=env, timeout=180, check=False)
        if done.returncode != 0:
            raise StepFailed(f"the re-enrollment run did not switch (exit {done.returncode})")
        state = self.table("state").get_entity("group", "active")
        new_group = str(state["groupId"])
        if new_group == self._alice_group or state.get("recognitionModel") != "recognition_05":
            raise StepFailed("the active group was not switched to recognition_05")
        row = self.user_row(ALICE["oid"]) or {}
        self._alice_new_group = new_group
        self._alice_new_person = self.report.secret(str(row.get("newPersonId") or ""))
        with self.face() as face:
            faces = face.detect(self.photo("obama3.jpg"), recognition_model="recognition_05")
            result = face.identify(new_group, [str(faces[0].face_id)], max_candidates=1)
        candidates = list(result[0].candidates) if result else []
        same = bool(candidates) and candidates[0].person_id == self._alice_new_person
        r.detail.append(f"active group now pinned to {state.get('recognitionModel')}; the old group is kept for the "
                        "grace period, then purge_timer deletes it")
        r.detail.append("obama3.jpg detected under recognition_05, identified in the new group as alice's new person: "
                        + ("yes" if same else "no"))
        bob = self.api.json("GET", "enrollment", user=BOB, expect=200)
        r.detail.append(f"Bob (no kept photos): {bob['status']} — {bob.get('message', '')}")
        alice = self.api.json("GET", "enrollment", user=ALICE, expect=200)
        if not same:
            raise StepFailed("Alice was not identified in the new group")
        if bob["status"] != "reenrollRequired" or alice["status"] != "enrolled":
            raise StepFailed(f"expected Alice enrolled and Bob reenrollRequired, got {alice['status']} / {bob['status']}")
        return "Alice re-enrolled from her kept photos into a recognition_05 group; Bob is asked to enroll again"

    def footprint(self, user: dict[str, str]) -> dict[str, Any]:
        """The admin's footprint view: counts per store (GET /api/admin/users/{userKey}/footprint)."""
        return self.api.json("GET", f"admin/users/{user['oid']}/footprint", user=ADMIN, admin=True, expect=200)

    @staticmethod
    def footprint_line(fp: dict[str, Any]) -> str:
        held = ", ".join(f"{k} {v}" for k, v in (fp.get("erasable") or {}).items() if v) or "nothing"
        kept = ", ".join(f"{k} {v}" for k, v in (fp.get("retained") or {}).items() if v) or "nothing"
        return f"holds: {held} | retained by design: {kept}"

    def hr_termination(self, r: StepResult) -> str:
        before = self.footprint(ALICE)
        r.detail.append(f"footprint of Alice before (admin view, counts only): {self.footprint_line(before)}")
        event_id = f"hr-{uuid.uuid4()}"
        now = datetime.now(timezone.utc)
        event = {"specversion": "1.0", "id": event_id, "source": "/hr/demo", "type": "hr.employee.terminated",
                 "time": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
                 "datacontenttype": "application/json",
                 "data": {"employeeId": ALICE["employeeid"], "effectiveDate": now.date().isoformat()}}
        with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="hr-event-", delete=False) as f:
            json.dump(event, f)
            event_file = Path(f.name)
        try:
            env = dict(os.environ)
            env["PhotoStorage"] = self.stack.connection_string
            env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
            cmd = [sys.executable, "-m", "local.bus", "send", "--topic", "hr-events", "--file", str(event_file),
                   "--message-id", event_id]
            sent = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
        finally:
            event_file.unlink(missing_ok=True)
        if sent.returncode != 0:
            raise StepFailed(f"local.bus send exited {sent.returncode}: {sent.stderr.strip()[-400:]}")
        r.detail.append(f"$ python -m local.bus send --topic hr-events --file hr-event.json --message-id {event_id}")
        r.detail.append(f"  {sent.stdout.strip()}")
        # "revoked" shows once the tombstone is written; the receiptId once the erasure is done and its receipt
        # exists (until then the status says the erasure is finishing).
        status = self.api.wait_status(ALICE, lambda s: s["status"] == "revoked" and "receiptId" in s,
                                      what="revoked with a receipt", timeout=45)
        receipt_id = status.get("receiptId")
        if not receipt_id:
            raise StepFailed(f"revoked without a receiptId: {status}")
        deadline = time.monotonic() + 45
        while self.api.call("GET", f"admin/receipts/{receipt_id}", user=ADMIN, admin=True).status_code != 200:
            if time.monotonic() > deadline:
                raise StepFailed(f"no receipt {receipt_id} 45 s after the revocation")
            time.sleep(0.5)
        receipt = self.api.json("GET", f"admin/receipts/{receipt_id}", user=ADMIN, admin=True, expect=200)
        t = Table(box=None, header_style="bold", pad_edge=False)
        t.add_column("erased")
        t.add_column("where")
        t.add_column("count", justify="right")
        for item in receipt.get("erased") or []:
            t.add_row(str(item.get("kind")), str(item.get("store")), str(item.get("count")))
        r.detail.append(f"Alice's status: revoked, receiptId {receipt_id}")
        r.detail.append(f"receipt (admin view): requested by {receipt.get('requestedBy')}, reason "
                        f"“{receipt.get('reason')}”, completed {receipt.get('completedAt')}")
        r.detail.append(indent(t))
        r.detail.append("retained: " + "; ".join(str(x) for x in receipt.get("retained") or []))
        after = self.footprint(ALICE)
        r.detail.append(f"footprint of Alice after: {self.footprint_line(after)}")
        r.detail.append(f"receipt verified: {receipt.get('verified')} ({len(receipt.get('checked') or [])} stores checked)")
        if not after.get("empty") or not receipt.get("verified"):
            raise StepFailed(f"the erasure left something or is not verified: {after.get('erasable')}")
        counts = {str(i.get("kind")): int(i.get("count") or 0) for i in receipt.get("erased") or []}
        if counts.get("faceTemplate", 0) < 1 or counts.get("enrollmentRecord", 0) < 1:
            raise StepFailed(f"the receipt does not show the face template and the enrollment record erased: {counts}")
        return f"HR event published on the topic; Alice erased (footprint empty, verified), receipt {receipt_id}"

    def nothing_left(self, r: StepResult) -> str:
        from shared.errors import PersonNotFound

        problems: list[str] = []
        row = self.user_row(ALICE["oid"])
        r.detail.append(f"users table row for {ALICE['oid']}: {'STILL THERE' if row else 'none'}")
        if row:
            problems.append("the users table still has Alice's row")
        try:
            with self.face() as face:
                face.get_person(self._alice_group, self._alice_person)
            person_gone = False
        except PersonNotFound:
            person_gone = True
        r.detail.append(f"Face person in the first group: {'gone (PersonNotFound)' if person_gone else 'STILL THERE'}")
        if not person_gone:
            problems.append("the Face group still has Alice's person")
        if getattr(self, "_alice_new_person", ""):
            try:
                with self.face() as face:
                    face.get_person(self._alice_new_group, self._alice_new_person)
                new_gone = False
            except PersonNotFound:
                new_gone = True
            r.detail.append(f"Face person in the re-enrollment group: {'gone (PersonNotFound)' if new_gone else 'STILL THERE'}")
            if not new_gone:
                problems.append("the new group still has Alice's person")
        uploads = [b for b in self.blobs(self.uploads_container) if b.rsplit("/", 1)[-1] in self.alice_uploads]
        r.detail.append(f"blobs of her uploads in container {self.uploads_container}: {len(uploads)}")
        if uploads:
            problems.append(f"{len(uploads)} of Alice's uploads are still in {self.uploads_container}")
        kept = [b for b in self.blobs(self.kept_container)
                if self._alice_kept_token and b.startswith(self._alice_kept_token + "/")]
        r.detail.append(f"her kept photos in container {self.kept_container}: {len(kept)}")
        if kept:
            problems.append(f"{len(kept)} kept photos of Alice are still in {self.kept_container}")
        if problems:
            raise StepFailed("; ".join(problems))
        return "no enrollment record, no face template, no photo of Alice is left"

    # --- issue 15: the access bundle (GET /api/me), re-enroll at any time ------------------------------
    def bundle(self, user: dict[str, str], r: StepResult, when: str) -> dict[str, Any]:
        """What a user can read about themselves; personIds and the kept-photo token are checked absent."""
        got = self.api.call("GET", "me", user=user)
        if got.status_code != 200:
            raise StepFailed(f"GET /api/me answered {got.status_code}: {got.text[:300]}")
        for secret in (self._alice_person, self._alice_kept_token):
            if secret and secret in got.text:
                raise StepFailed("the access bundle contains a personId or the kept-photo token")
        b: dict[str, Any] = got.json()
        ledger = ", ".join(f"{e['kind']}@{e['at'][11:19]} (terms {e.get('termsVersion', '-')})" for e in b["consentLedger"])
        photos = ", ".join(f"{p['status']}" for p in b["photos"]) or "none"
        actions = sorted({a["action"] for a in b["audit"]})
        r.detail.append(f"{when}: status {b['enrollment']['status']}; consent ledger: {ledger}")
        r.detail.append(f"  photos: {photos}; kept photos: {b['keptPhotos']['count']}; receipts: "
                        f"{[x['receiptId'] for x in b['receipts']] or 'none'}; face templates held: "
                        f"{b['held']['faceTemplates']['count']}")
        r.detail.append(f"  audit events about {user['name']}: {len(b['audit'])} ({', '.join(actions[:8])}"
                        f"{', …' if len(actions) > 8 else ''})")
        return b

    def access_after_enrollment(self, r: StepResult) -> str:
        b = self.bundle(ALICE, r, "after enrollment")
        if not b["keptPhotos"]["count"]:
            raise StepFailed("Alice chose storePhotos but the bundle lists no kept photo")
        photo_id = b["keptPhotos"]["photos"][0]["photoId"]
        link = self.api.json("GET", f"me/photos/{photo_id}", user=ALICE, expect=200)
        got = requests.get(link["url"], timeout=HTTP_TIMEOUT)
        put = requests.put(link["url"], data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=HTTP_TIMEOUT)
        r.detail.append(f"GET /api/me/photos/{{id}}: read-only link until {link['expiresOn']}: read → "
                        f"{got.status_code}, write → {put.status_code}")
        if got.status_code != 200 or put.status_code != 403:
            raise StepFailed("the kept-photo link is not read-only")
        other = self.api.call("GET", f"me/photos/{photo_id}", user=BOB)
        if other.status_code != 404:
            raise StepFailed(f"Bob reading Alice's photo answered {other.status_code}, not 404")
        return "Alice reads everything held about her, with no personId; her photo link is read-only, Bob's try is 404"

    def replace_photos(self, r: StepResult) -> str:
        created = self.api.json("POST", "enrollment/uploads", user=ALICE, expect=201, body={"count": 1, "replace": True})
        slot = created["uploads"][0]
        fp = self.footprint(ALICE)
        r.detail.append(f"admin footprint while pending: replacement {fp.get('replacement')}")
        if not (fp.get("replacement") or {}).get("pending"):
            raise StepFailed("the admin does not see the replacement pending")
        put = requests.put(slot["url"], data=self.photo("obama2.jpg"), headers={"x-ms-blob-type": "BlockBlob"},
                           timeout=HTTP_TIMEOUT)
        if put.status_code != 201:
            raise StepFailed(f"PUT answered {put.status_code}")
        status = self.api.wait_status(ALICE, lambda s: "replacement" not in s and s["status"] == "enrolled",
                                      what="replaced", timeout=90)
        counts: dict[str, int] = {}
        for p in status["photos"]:
            counts[p["status"]] = counts.get(p["status"], 0) + 1
        r.detail.append(f"photos after: {counts}")
        self.bundle(ALICE, r, "after re-enrollment")
        return "Alice replaced her photos: new face trained first, then the old faces and kept photos deleted"

    def access_after_erasure(self, r: StepResult) -> str:
        b = self.bundle(ALICE, r, "after erasure")
        if not b["receipts"] or b["held"]["faceTemplates"]["count"] or b["keptPhotos"]["count"]:
            raise StepFailed("after the erasure the bundle should show a receipt and no template or photo")
        receipt_id = b["receipts"][0]["receiptId"]
        own = self.api.json("GET", f"me/receipts/{receipt_id}", user=ALICE, expect=200)
        return f"Alice still reads her consent history and her receipt ({own['receiptId']}, verified={own['verified']})"

    def bob_revokes(self, r: StepResult) -> str:
        got = self.api.json("DELETE", "enrollment", user=BOB, expect=202)
        request_id = got.get("requestId")
        if not request_id:
            raise StepFailed(f"202 without a requestId: {got}")
        r.detail.append(f"DELETE /api/enrollment → 202, requestId {request_id}")
        status = self.api.wait_status(BOB, lambda s: s["status"] == "revoked" and "receiptId" in s,
                                      what="revoked with a receipt", timeout=45)
        if not status.get("receiptId"):
            raise StepFailed(f"revoked without a receiptId: {status}")
        deadline = time.monotonic() + 45  # revoked shows at the tombstone; the erasure follows
        while self.user_row(BOB["oid"]) is not None:
            if time.monotonic() > deadline:
                raise StepFailed("Bob is revoked but his users table row is still there")
            time.sleep(0.5)
        return f"Bob withdrew his consent: revoked, receipt {status['receiptId']}"

    def door_events(self, r: StepResult) -> str:
        # The events_sender timer runs every few seconds on the local stack; fire it once more now so
        # the last erasure is out before the subscriber is read.
        requests.post(f"{self.stack.host_url}/admin/functions/events_sender", json={"input": ""}, timeout=HTTP_TIMEOUT)
        got = requests.get(self.stack.events_url, timeout=HTTP_TIMEOUT).json()
        events = got.get("events") or []
        seen: list[tuple[str, str]] = []
        for e in events:
            data = e.get("data") or {}
            who = str(data.get("userKey") or data.get("groupId") or "")
            extra = f", receiptId {data['receiptId']}" if "receiptId" in data else ""
            r.detail.append(f"{e.get('type')}: {who}{extra} (id {str(e.get('id'))[:12]}…)")
            seen.append((str(e.get("type")), who))
            if "personId" in json.dumps(e):
                raise StepFailed("an event carries a personId")
        r.detail.append(f"duplicates dropped by the subscriber (same source + id): {got.get('duplicates', 0)}")
        wanted = [("faceenrollment.user.enrolled", ALICE["oid"]), ("faceenrollment.user.enrolled", BOB["oid"]),
                  ("faceenrollment.user.erased", BOB["oid"])]
        if any(r.number == 11 and r.outcome == "pass" for r in self.report.results):  # HR erased Alice
            wanted.append(("faceenrollment.user.erased", ALICE["oid"]))
        missing = [w for w in wanted if w not in seen]
        if missing:
            raise StepFailed(f"the door system did not receive {missing}")
        if any(r.number == 10 and r.outcome == "pass" for r in self.report.results) and seen.count(
                ("faceenrollment.user.enrolled", ALICE["oid"])) < 2:
            # Her photo replacement completed: announced as an enrollment (with the new faces) of its own.
            raise StepFailed("the door system did not hear of Alice's photo replacement")
        if len(set((e.get("source"), e.get("id")) for e in events)) != len(events):
            raise StepFailed("an event was recorded twice")
        return f"the door system received {len(events)} CloudEvents, each once, none with a personId"

    def ledger(self, r: StepResult) -> str:
        purge = self.api.json("POST", "admin/purge", user=ADMIN, admin=True, expect=200, body={"dryRun": False})
        anchor = purge.get("ledgerAnchor") or {}
        r.detail.append(f"purge wrote today's anchor {anchor.get('anchor')} over {anchor.get('chains')} chains, "
                        f"Merkle root {str(anchor.get('root'))[:16]}…")
        report = self.api.json("POST", "admin/ledger/verify", user=ADMIN, admin=True, expect=200)
        r.detail.append(f"POST /api/admin/ledger/verify: ok={report.get('ok')}, {report.get('entries')} entries in "
                        f"{report.get('chains')} chains, {report.get('anchors')} anchor(s), "
                        f"{len(report.get('findings') or [])} finding(s)")
        if not report.get("ok"):
            raise StepFailed(f"the ledger does not verify: {report.get('findings')}")
        return "the consent ledger (kept after both erasures) verifies against its anchor"

    def run(self) -> None:
        step = self.report.step
        step("Read the consent terms (GET /api/consent/terms)", self.terms, short="Consent terms shown")
        step("Consent without multi-factor sign-in is refused", self.no_mfa, short="No MFA → 403", needs=[1])
        step("Alice (storePhotos=true) and Bob (storePhotos=false) consent", self.consent,
             short="Alice and Bob consent", needs=[1])
        step("Alice uploads 2 photos to create-only SAS URLs", self.alice_uploads_step,
             short="Alice uploads; SAS is create-only", needs=[3])
        step("Bob uploads a photo and a non-photo; the non-photo is rejected", self.bob_uploads,
             short="Bob: 1 accepted, 1 rejected with reasons", needs=[3])
        step("Alice becomes enrolled", self.alice_enrolled, short="Alice enrolled", needs=[4])
        step("An unseen photo of Alice is identified as her", self.identify,
             short="Unseen photo identified as Alice", needs=[6])
        step("Recognition model update: re-enroll into a recognition_05 group", self.model_update,
             short="Model update → Alice re-enrolled, Bob asked", needs=[5, 7])
        step("Alice reads everything held about her (GET /api/me) and a link to her kept photo",
             self.access_after_enrollment, short="Access bundle after enrollment", needs=[6])
        step("Alice re-enrolls: replaces her photos (old ones go after the new face is trained)", self.replace_photos,
             short="Re-enroll at any time → old faces deleted after training", needs=[6])
        step("HR terminates Alice: erased on the HR event, footprint before and after, receipt", self.hr_termination,
             short="HR termination → footprint empty + verified receipt", needs=[7])
        step("Nothing of Alice is left", self.nothing_left, short="Nothing of Alice left", needs=[7, 11])
        step("Alice's access bundle after the erasure: ledger and receipt remain (GET /api/me, /api/me/receipts)",
             self.access_after_erasure, short="Access bundle after erasure", needs=[11])
        step("Bob withdraws his consent himself (DELETE /api/enrollment)", self.bob_revokes,
             short="Bob revokes himself → receipt", needs=[5])
        step("The door system heard of each change (CloudEvents from the outbox)", self.door_events,
             short="Door events: enrolled, replaced, erased (with receipts)", needs=[5, 6, 14])
        step("The consent ledger is anchored and verifies", self.ledger, short="Ledger anchored and verified",
             needs=[3])

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, required=True, help="directory with face_recognition's test images")
    parser.add_argument("--log-dir", type=Path, default=LOG_DIR / "demo")
    args = parser.parse_args(argv)
    console = Console()
    missing = [n for n in PHOTOS_NEEDED if not (args.photos / n).is_file()]
    if missing:
        console.print(f"[red]error:[/] {', '.join(missing)} missing in {args.photos}: run `make setup` "
                      "(scripts/fetch_demo_photos.py) first")
        return 2

    started = time.monotonic()
    report = Report(console)
    console.rule("face-enrollment demo")
    console.print("starting Azurite, the Face API emulator and the Functions host on free ports…")
    try:
        with running_stack(log_dir=args.log_dir) as stack:
            console.print(f"stack up in {time.monotonic() - started:.0f}s: host {stack.host_url}, "
                          f"Face emulator {stack.face_endpoint}, logs in {args.log_dir}\n")
            try:
                Scenario(stack, args.photos, report).run()
            except KeyboardInterrupt:
                console.print("[yellow]interrupted[/]")
            console.print("stopping the stack…")
    except StackError as exc:
        console.print(f"[red]✗ the local stack did not start:[/] {escape(str(exc))}")
        return 1
    total = time.monotonic() - started
    console.print(report.summary(total))
    if report.ok:
        console.print("[green bold]All steps passed.[/] Everything the demo started is stopped.")
        return 0
    console.print(f"[red bold]Some steps failed.[/] Logs: {args.log_dir}/host.log, face-api.log")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
