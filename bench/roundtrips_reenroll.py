"""Round trips per re-enrolled user: every call the re-enrollment makes to storage, the bus and Face.

Runs a whole re-enrollment on the in-memory fakes (tests/fakes.py), which record every call made
through the ports, and divides by the users. A port call is one request to the service (the record
store's ``mutate`` is a get plus an update, and is counted as two; a batch transaction of up to 100
rows is one). Bus figures count requests: one per send call (which may carry many messages), one
receive and one settlement per delivery. The local stand-in
(shared/adapters/storage_queue_bus.py) spends more storage requests per message than that; its own
cost is reported by bench_reenroll.py, not here.

    python bench/roundtrips_reenroll.py [--users 50] [--photos 3] [--json]

The work-item figures are the critical path: the calls a worker makes between receiving a work
message and settling it, which run one after the other, between Face calls.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.commands import StartReenrollment  # noqa: E402
from tests.fakes import photo  # noqa: E402
from tests.service.support import Stack, make_stack  # noqa: E402


def _kind(name: str) -> str:
    """'records.get:reenrollitems' -> 'storage'; 'face.add_face' -> 'face'; 'publisher.send:q' -> 'bus'."""
    head = name.split(".", 1)[0]
    return {"records": "storage", "photos": "storage", "face": "face", "publisher": "bus"}.get(head, head)


def measure(users: int = 50, photos: int = 3) -> dict[str, Any]:
    stack: Stack = make_stack()
    stack.services.groups.active()
    for i in range(users):
        user = f"rt-{i:05d}"
        stack.consent(user)
        token = stack.user(user).kept_token
        image = photo(10 + i % 150)  # the fake Face tells identities apart by colour
        for j in range(photos):
            stack.photos.keep(f"{token}/{j}.jpg", image)

    calls: Counter[str] = Counter()
    work_calls: Counter[str] = Counter()
    in_work = {"on": False}

    def hook(name: str) -> None:
        calls[name] += 1
        if in_work["on"]:
            work_calls[name] += 1

    handlers = stack.handlers()
    work_queue = stack.services.settings.reenroll_work_queue
    deliveries = Counter[str]()

    def wrap(queue: str) -> Any:
        inner = handlers[queue]

        def handle(sent: Any, attempt: int) -> object:
            deliveries[queue] += 1
            in_work["on"] = queue == work_queue
            try:
                return inner(sent, attempt)
            finally:
                in_work["on"] = False
        return handle

    stack.handlers = lambda: {q: wrap(q) for q in handlers}  # type: ignore[method-assign]
    stack.set_hook(hook)
    run = stack.services.reenrollment.start(StartReenrollment("recognition_05", "bench"))
    stack.pump()
    stack.clear_hook()
    final = stack.services.reenrollment.progress(run.run_id)
    assert final.status == "switched" and final.done == users, final

    def summary(counter: Counter[str], extra_bus: int) -> dict[str, Any]:
        by_kind: Counter[str] = Counter()
        for name, n in counter.items():
            by_kind[_kind(name)] += n
        by_kind["bus"] += extra_bus
        return {"perUser": {k: round(v / users, 2) for k, v in sorted(by_kind.items())},
                "detailPerUser": {k: round(v / users, 2) for k, v in sorted(counter.items())}}

    # Receive + complete per delivery (Service Bus bills both); sends are counted at the publisher.
    whole = summary(calls, 2 * sum(deliveries.values()))
    work = summary(work_calls, 2 * deliveries[work_queue])
    messages = len(stack.publisher.sent)
    return {"users": users, "photos": photos, "run": whole, "workItem": work,
            "messagesSentPerUser": round(messages / users, 2)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.users, args.photos)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"re-enrollment on the fakes: {args.users} users x {args.photos} kept photos; per user:")
    for label, part in (("work item (critical path)", result["workItem"]), ("whole run", result["run"])):
        kinds = ", ".join(f"{k} {v:g}" for k, v in part["perUser"].items())
        print(f"  {label}: {kinds}")
        for name, n in part["detailPerUser"].items():
            print(f"      {n:6.2f}  {name}")
    print(f"  bus: {result['messagesSentPerUser']:g} messages sent per user (a send request may carry many)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
