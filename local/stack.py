"""The whole local stack in the foreground: Azurite, the Face API emulator, the Service Bus stand-in
topology and the local Functions host running function_app.

    python -m local.stack [--face-data-dir .local/face-data] [--host-port 7071] [--face-port 7072]

What `make up` runs. Ctrl-C (or SIGTERM) stops every child process and exits 0. Child logs go to
``.local/logs/<name>.log``. ``running_stack`` is the same thing as a context manager (the demo
uses it, on free ports, so it never collides with a running `make up`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import requests

ROOT = Path(__file__).resolve().parents[1]
LOCAL_DIR = ROOT / ".local"
LOG_DIR = LOCAL_DIR / "logs"
FACE_DATA_DIR = LOCAL_DIR / "face-data"
AZURITE = ROOT / "node_modules" / ".bin" / "azurite"
DEFAULT_AZURITE_PORTS = (10000, 10001, 10002)
DEFAULT_FACE_PORT = 7072
DEFAULT_HOST_PORT = 7071
DEFAULT_EVENTS_PORT = 7073
STOP_TIMEOUT = 10.0


class StackError(RuntimeError):
    """The stack could not start (port taken, a child died, a child never became ready)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


@dataclass
class Stack:
    azurite_ports: tuple[int, int, int]
    face_port: int
    host_port: int
    env: dict[str, str]
    log_dir: Path
    face_data_dir: Path | None
    events_port: int = 0
    children: list[Child] = field(default_factory=list)
    _workdir: Path | None = None

    @property
    def host_url(self) -> str:
        return f"http://127.0.0.1:{self.host_port}"

    @property
    def face_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.face_port}"

    @property
    def connection_string(self) -> str:
        return self.env["PhotoStorage"]

    @property
    def events_url(self) -> str:
        """The door-system stand-in (local/events_sink.py): GET it for the events it received."""
        return f"http://127.0.0.1:{self.events_port}/events"

    def child(self, name: str) -> Child | None:
        return next((c for c in self.children if c.name == name), None)

    def add_instance(self, functions: list[str]) -> str:
        """Another host instance beside the first, running only ``functions`` (their Service Bus pumps
        compete for the same messages, as the instances of a scaled-out app do); returns its URL."""
        n = sum(1 for c in self.children if c.name.startswith("host")) + 1
        port = free_port()
        env = {**_child_env(), **self.env}
        child = _spawn(f"host-{n}", [sys.executable, "-m", "local.host", "--app", "function_app", "--port", str(port),
                                     "--functions", ",".join(functions), "--no-timers", "--no-blob-watcher"],
                       env=env, log_dir=self.log_dir, cwd=ROOT)
        self.children.append(child)
        url = f"http://127.0.0.1:{port}"
        _wait(child, _http_ok(f"{url}/admin/host/status"), what=f"host instance {n} ready", timeout=60)
        return url

    def dead_children(self) -> list[Child]:
        return [c for c in self.children if c.process.poll() is not None]

    def stop(self) -> None:
        """Stops the children, last started first (the host before what it depends on). Idempotent."""
        for c in reversed(self.children):
            c.stop()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def rows(self) -> list[tuple[str, str, str]]:
        """(service, address, log and data) for the table `make up` prints."""
        blob, queue, table = self.azurite_ports
        logs = _short(self.log_dir)
        data = _short(self.face_data_dir) if self.face_data_dir else "in memory"
        return [
            ("Enrollment page", f"{self.host_url}/api/web/", "sign in with a local test user"),
            ("Functions host", f"{self.host_url}/api", f"{logs}/host.log"),
            ("Face API emulator", self.face_endpoint, f"{logs}/face-api.log; data {data}"),
            ("Azurite blob", f"http://127.0.0.1:{blob}", f"{logs}/azurite.log; in memory"),
            ("Azurite queue", f"http://127.0.0.1:{queue}", "also the Service Bus stand-in"),
            ("Azurite table", f"http://127.0.0.1:{table}", "in memory"),
            ("Door events", self.events_url, f"{logs}/door-events.jsonl; what a door system receives"),
        ]


def _short(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _child_env() -> dict[str, str]:
    """The environment of every process the stack starts: this one's, with the repository importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _spawn(name: str, args: list[str], *, env: Mapping[str, str], log_dir: Path, cwd: Path) -> Child:
    log_path = log_dir / f"{name}.log"
    log: IO[bytes] = open(log_path, "wb")  # noqa: SIM115 - the child owns it; closed below after Popen dup'ed it
    try:
        # A session of its own: Ctrl-C in the terminal reaches only us, and we stop children in order.
        proc = subprocess.Popen(args, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        log.close()
    return Child(name, proc, log_path)


def _wait(child: Child, ready: Callable[[], bool], *, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise StackError(f"{child.name} exited with code {child.process.returncode} before {what}; "
                             f"last lines of {child.log_path}:\n{child.tail()}")
        if ready():
            return
        time.sleep(0.1)
    raise StackError(f"{child.name}: {what} did not happen within {timeout:.0f}s; "
                     f"last lines of {child.log_path}:\n{child.tail()}")


def _http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return requests.get(url, timeout=1).status_code == 200
        except requests.RequestException:
            return False
    return check


def _ports_listening(*ports: int) -> Callable[[], bool]:
    return lambda: all(port_in_use(p) for p in ports)


def _check_ports_free(named: Mapping[str, int]) -> None:
    taken = [f"{port} ({what})" for what, port in named.items() if port_in_use(port)]
    if taken:
        raise StackError(
            "port already in use on 127.0.0.1: " + ", ".join(taken)
            + ". Is another `make up` (or Azurite / a Functions host) running? Stop it, or pick other ports "
            "(python -m local.stack --help).")


def stack_app_env(*, blob: int, queue: int, table: int, face_port: int, extra_env: Mapping[str, str] | None = None,
                  environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The app settings of the stack's host: the local defaults, except where the environment already
    has a value. So `PRINCIPAL_SOURCE=appservice make up` runs the stack exactly as Azure would
    authenticate (503 until `WEBSITE_AUTH_ENABLED=True` is set as well)."""
    from shared.settings import local_environment

    env = os.environ if environ is None else environ
    app_env = local_environment(blob=blob, queue=queue, table=table, face_port=face_port)
    app_env.update({key: env[key] for key in app_env if env.get(key)})
    app_env.update(extra_env or {})
    return app_env


def start_stack(*, azurite_ports: tuple[int, int, int] | None = None, face_port: int | None = None,
                host_port: int | None = None, face_data_dir: Path | None = None, log_dir: Path = LOG_DIR,
                extra_env: Mapping[str, str] | None = None, host_args: list[str] | None = None,
                events_port: int | None = None, on_progress: Callable[[str], None] | None = None) -> Stack:
    """Starts everything and waits until it is ready. ``None`` ports are free ones. On failure,
    whatever was started is stopped again before the error propagates."""
    blob, queue, table = azurite_ports or (free_port(), free_port(), free_port())
    face_port = face_port or free_port()
    host_port = host_port or free_port()
    events_port = events_port or free_port()
    _check_ports_free({"door events": events_port, "Azurite blob": blob, "Azurite queue": queue, "Azurite table": table,
                       "Face API emulator": face_port, "Functions host": host_port})
    if not AZURITE.exists():
        raise StackError(f"{AZURITE} is missing: run `make setup` (npm ci) first")
    log_dir.mkdir(parents=True, exist_ok=True)
    if face_data_dir is not None:
        face_data_dir.mkdir(parents=True, exist_ok=True)

    # The app posts its door-system events to the local subscriber (EVENTS_TRANSPORT=http).
    events_env = {"EVENTS_TRANSPORT": "http", "EVENTS_SINK_URL": f"http://127.0.0.1:{events_port}/events",
                  "EVENTS_SCHEDULE": "*/5 * * * * *"}
    app_env = stack_app_env(blob=blob, queue=queue, table=table, face_port=face_port,
                            extra_env={**events_env, **(extra_env or {})})
    base_env = _child_env()
    workdir = Path(tempfile.mkdtemp(prefix="azurite-"))  # Azurite's cwd (it keeps nothing: in memory)
    stack = Stack((blob, queue, table), face_port, host_port, app_env, log_dir, face_data_dir, events_port=events_port,
                  _workdir=workdir)
    progress = on_progress or (lambda _msg: None)
    try:
        progress("starting Azurite")
        # Storage persists exactly when the Face emulator does: records and Face state stay consistent
        # across restarts (or are both fresh).
        persistence = (["--location", str(face_data_dir.parent / "azurite-data")] if face_data_dir is not None
                       else ["--inMemoryPersistence"])
        azurite = _spawn("azurite", [
            str(AZURITE), *persistence, "--skipApiVersionCheck", "--disableTelemetry", "--silent",
            "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1",
            "--blobPort", str(blob), "--queuePort", str(queue), "--tablePort", str(table),
        ], env=base_env, log_dir=log_dir, cwd=workdir)
        stack.children.append(azurite)

        progress("starting the Face API emulator")
        face_args = [sys.executable, "-m", "local.face_api", "--host", "127.0.0.1", "--port", str(face_port),
                     "--extra-models", "recognition_05"]
        if face_data_dir is not None:
            face_args += ["--data-dir", str(face_data_dir)]
        face = _spawn("face-api", face_args, env=base_env, log_dir=log_dir, cwd=ROOT)
        stack.children.append(face)

        _wait(azurite, _ports_listening(blob, queue, table), what="Azurite listening", timeout=30)
        progress("creating the Service Bus stand-in queues and subscriptions")
        from local.bus import apply_topology
        from shared.adapters.storage_queue_bus import StorageQueueBus

        apply_topology(StorageQueueBus(connection_string=stack.connection_string))
        progress("allowing the front end's photo uploads (CORS on Azurite's blob service)")
        from local.storage_cors import allow_browser_uploads, app_origins

        allow_browser_uploads(stack.connection_string, app_origins(stack.host_url))

        _wait(face, _http_ok(f"{stack.face_endpoint}/_emulator/health"), what="emulator healthy", timeout=60)

        progress("starting the door-system stand-in (records the events it receives)")
        (log_dir / "door-events.jsonl").unlink(missing_ok=True)  # this run's events only
        sink = _spawn("door-events", [sys.executable, "-m", "local.events_sink", "--port", str(events_port),
                                      "--out", str(log_dir / "door-events.jsonl")], env=base_env, log_dir=log_dir, cwd=ROOT)
        stack.children.append(sink)
        _wait(sink, _http_ok(f"http://127.0.0.1:{events_port}/health"), what="subscriber ready", timeout=30)

        progress("starting the Functions host")
        host_env = dict(base_env)
        host_env.update(app_env)
        host = _spawn("host", [sys.executable, "-m", "local.host", "--app", "function_app",
                               "--port", str(host_port), *(host_args or [])],
                      env=host_env, log_dir=log_dir, cwd=ROOT)
        stack.children.append(host)
        _wait(host, _http_ok(f"{stack.host_url}/admin/host/status"), what="host ready", timeout=60)
    except BaseException:
        stack.stop()
        raise
    return stack


@contextmanager
def running_stack(*, azurite_ports: tuple[int, int, int] | None = None, face_port: int | None = None,
                  host_port: int | None = None, face_data_dir: Path | None = None, quiet: bool = True,
                  log_dir: Path = LOG_DIR, extra_env: Mapping[str, str] | None = None,
                  host_args: list[str] | None = None) -> Iterator[Stack]:
    """The stack for the duration of a ``with`` block; free ports unless given; always stopped."""
    say: Callable[[str], None] | None = None if quiet else (lambda msg: print(f"… {msg}", flush=True))
    stack = start_stack(azurite_ports=azurite_ports, face_port=face_port, host_port=host_port,
                        face_data_dir=face_data_dir, log_dir=log_dir, extra_env=extra_env, host_args=host_args,
                        on_progress=say)
    try:
        yield stack
    finally:
        stack.stop()


def _print_table(stack: Stack) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="face-enrollment local stack", title_justify="left")
    table.add_column("Service", style="bold")
    table.add_column("Address", style="cyan", no_wrap=True)
    table.add_column("Notes")
    for row in stack.rows():
        table.add_row(*row)
    console = Console()
    console.print(table)
    console.print("Service Bus stand-in: [cyan]python -m local.bus send --topic hr-events --file EVENT.json[/] "
                  "(with PhotoStorage set to the Azurite connection string; default ports need nothing)")
    console.print(f"Open the enrollment page: [bold cyan]{stack.host_url}/api/web/[/]")
    console.print("Press [bold]Ctrl-C[/] to stop everything.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.stack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--azurite-ports", default=",".join(map(str, DEFAULT_AZURITE_PORTS)),
                        help="blob,queue,table ports (default 10000,10001,10002)")
    parser.add_argument("--face-port", type=int, default=DEFAULT_FACE_PORT)
    parser.add_argument("--host-port", type=int, default=DEFAULT_HOST_PORT)
    parser.add_argument("--events-port", type=int, default=DEFAULT_EVENTS_PORT,
                        help="the door-system stand-in that records the app's CloudEvents")
    parser.add_argument("--face-data-dir", type=Path, default=FACE_DATA_DIR,
                        help="where the Face emulator keeps its state (survives restarts)")
    parser.add_argument("--log-dir", type=Path, default=LOG_DIR)
    args = parser.parse_args(argv)
    try:
        blob, queue, table = (int(p) for p in args.azurite_ports.split(","))
    except ValueError:
        parser.error("--azurite-ports needs three comma-separated ports: blob,queue,table")

    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stack: Stack | None = None
    try:
        stack = start_stack(azurite_ports=(blob, queue, table), face_port=args.face_port, host_port=args.host_port,
                            face_data_dir=args.face_data_dir, log_dir=args.log_dir, events_port=args.events_port,
                            on_progress=lambda msg: print(f"… {msg}", flush=True))
        _print_table(stack)
        while True:
            dead = stack.dead_children()
            if dead:
                c = dead[0]
                print(f"error: {c.name} exited with code {c.process.returncode}; last lines of {c.log_path}:\n"
                      f"{c.tail()}", file=sys.stderr)
                return 1
            time.sleep(0.5)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        return 0
    finally:
        # Signals are ignored while the children stop: a second Ctrl-C must not leave them orphaned.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if stack is not None:
            stack.stop()
            print("stopped.", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
