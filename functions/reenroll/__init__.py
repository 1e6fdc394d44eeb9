"""reenroll: a recognition model update re-enrolls everyone who kept photos into a new group."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()


@bp.service_bus_queue_trigger(arg_name="msg", queue_name="%MODEL_UPDATES_QUEUE%", connection="ServiceBusConnection")
def reenroll_start(msg: func.ServiceBusMessage) -> None:
    from shared.bootstrap import services

    services().reenrollment.handle_control(msg.get_body(), message_id=msg.message_id or "")


@bp.service_bus_queue_trigger(arg_name="msg", queue_name="%REENROLL_WORK_QUEUE%", connection="ServiceBusConnection")
def reenroll_work(msg: func.ServiceBusMessage) -> None:
    from shared.bootstrap import services

    services().reenrollment.handle_work(msg.get_body(), message_id=msg.message_id or "")
