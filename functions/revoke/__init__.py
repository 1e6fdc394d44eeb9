"""revoke: erasure commands (users, admins) and HR termination events."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()


@bp.service_bus_queue_trigger(arg_name="msg", queue_name="%REVOCATIONS_QUEUE%", connection="ServiceBusConnection")
def revoke(msg: func.ServiceBusMessage) -> None:
    from shared.bootstrap import services

    services().revocation.handle_command(msg.get_body(), message_id=msg.message_id or "",
                                         delivery_count=msg.delivery_count or 1)


@bp.service_bus_topic_trigger(arg_name="event", topic_name="%HR_EVENTS_TOPIC%",
                              subscription_name="%HR_EVENTS_SUBSCRIPTION%", connection="ServiceBusConnection")
def hr_events(event: func.ServiceBusMessage) -> None:
    from shared.bootstrap import services

    services().revocation.handle_hr_event(event.get_body(), message_id=event.message_id or "",
                                          delivery_count=event.delivery_count or 1)
