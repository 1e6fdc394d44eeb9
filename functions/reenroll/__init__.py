"""reenroll: a recognition model update re-enrolls everyone who kept photos into a new group."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()


@bp.service_bus_queue_trigger(arg_name="msg", queue_name="%MODEL_UPDATES_QUEUE%", connection="ServiceBusConnection")
def reenroll_start(msg: func.ServiceBusMessage) -> None:
    from shared.bootstrap import services
    from shared.envelopes import decode_control, deliver

    s = services()
    deliver(msg.get_body(), decode_control, s.reenrollment.control, audit=s.audit,
            source=s.settings.model_updates_queue, message_id=msg.message_id or "",
            delivery_count=msg.delivery_count or 1)


@bp.service_bus_queue_trigger(arg_name="msg", queue_name="%REENROLL_WORK_QUEUE%", connection="ServiceBusConnection")
def reenroll_work(msg: func.ServiceBusMessage) -> None:
    from shared.bootstrap import services
    from shared.envelopes import decode_work, deliver

    s = services()
    deliver(msg.get_body(), decode_work, s.reenrollment.work, audit=s.audit, source=s.settings.reenroll_work_queue,
            message_id=msg.message_id or "", delivery_count=msg.delivery_count or 1)
