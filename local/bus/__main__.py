"""Operator CLI for the Service Bus stand-in, used exactly as a producer or operator would.

    python -m local.bus send (--queue NAME | --topic NAME) --file MESSAGE.json [--message-id ID] [--property KEY=VALUE]...
    python -m local.bus peek (--queue NAME | --topic NAME --subscription NAME) [--deadletter]
    python -m local.bus setup            # create the queues and topic subscriptions of topology.json

The connection comes from ``PhotoStorage`` (or ``AzureWebJobsStorage``), Azurite's by default.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path

from local.bus import Entity, StandInReceiver, apply_topology
from shared.adapters.storage_queue_bus import StorageQueueBus
from shared.ports import OutgoingMessage
from shared.settings import azurite_connection_string


def _connection(given: str | None = None) -> str:
    return given or os.environ.get("PhotoStorage") or os.environ.get("AzureWebJobsStorage") or azurite_connection_string()


def _property(text: str) -> tuple[str, str | int | float | bool]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--property needs KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    parsed: str | int | float | bool = value
    if value in ("true", "false"):
        parsed = value == "true"
    else:
        for cast in (int, float):
            try:
                parsed = cast(value)
                break
            except ValueError:
                continue
    return key, parsed


def main(argv: list[str] | None = None, *, connection: str | None = None) -> int:
    """The command line; ``connection`` (tests calling it in-process) instead of the environment's."""
    parser = argparse.ArgumentParser(prog="python -m local.bus", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    send = sub.add_parser("send", help="send one message")
    where = send.add_mutually_exclusive_group(required=True)
    where.add_argument("--queue")
    where.add_argument("--topic")
    send.add_argument("--file", required=True, type=Path, help="message body (JSON or any bytes); - for stdin")
    send.add_argument("--message-id", default=None)
    send.add_argument("--content-type", default="application/json")
    send.add_argument("--property", action="append", default=[], type=_property, metavar="KEY=VALUE")
    peek = sub.add_parser("peek", help="show messages without locking them")
    pwhere = peek.add_mutually_exclusive_group(required=True)
    pwhere.add_argument("--queue")
    pwhere.add_argument("--topic")
    peek.add_argument("--subscription")
    peek.add_argument("--deadletter", action="store_true")
    sub.add_parser("setup", help="create the entities of local/bus/topology.json")
    args = parser.parse_args(argv)

    bus = StorageQueueBus(connection_string=_connection(connection))
    if args.command == "setup":
        for entity in apply_topology(bus):
            print(f"ready: {entity.label}")
        return 0
    if args.command == "send":
        body = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
        message_id = args.message_id or str(uuid.uuid4())
        destination = args.queue or args.topic
        if args.topic and not bus.subscriptions(args.topic):
            print(f"error: topic {args.topic!r} has no subscriptions (run `python -m local.bus setup`)", file=sys.stderr)
            return 2
        bus.send(destination, [OutgoingMessage(body=body, message_id=message_id, content_type=args.content_type,
                                               application_properties=dict(args.property))])
        print(json.dumps({"sent": destination, "messageId": message_id}))
        return 0
    if args.topic and not args.subscription:
        parser.error("peek --topic needs --subscription")
    entity = Entity(queue=args.queue) if args.queue else Entity(topic=args.topic, subscription=args.subscription)
    for env in StandInReceiver(bus).peek(entity, deadletter=args.deadletter):
        shown: object
        try:
            shown = json.loads(env.body)
        except ValueError:
            shown = env.body.decode("utf-8", "replace")
        print(json.dumps({
            "messageId": env.message_id, "enqueuedTimeUtc": env.enqueued_time_utc,
            "sequenceNumber": env.sequence_number, "applicationProperties": env.application_properties,
            "deadLetterReason": env.dead_letter_reason, "deadLetterErrorDescription": env.dead_letter_error_description,
            "body": shown,
        }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
