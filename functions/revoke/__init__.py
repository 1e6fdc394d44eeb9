"""revoke: erasure commands (users, admins) and HR termination events."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()


@bp.service_bus_queue_trigger(arg_name="msg", queue_name="%REVOCATIONS_QUEUE%", connection="ServiceBusConnection")
def revoke(msg: func.ServiceBusMessage) -> None:
    from shared.bootstrap import services
    from shared.envelopes import decode_revoke, deliver

    s = services()
    deliver(msg.get_body(), decode_revoke, s.revocation.erase, audit=s.audit, source=s.settings.revocations_queue,
            message_id=msg.message_id or "", delivery_count=msg.delivery_count or 1)


@bp.service_bus_topic_trigger(arg_name="event", topic_name="%HR_EVENTS_TOPIC%",
                              subscription_name="%HR_EVENTS_SUBSCRIPTION%", connection="ServiceBusConnection")
def hr_events(event: func.ServiceBusMessage) -> None:
    from functools import partial

    from shared.bootstrap import services
    from shared.envelopes import decode_hr_event, deliver

    s = services()
    parse = partial(decode_hr_event, termination_types=s.settings.termination_event_types)
    deliver(event.get_body(), parse, s.revocation.hr_event, audit=s.audit, source=s.settings.hr_events_topic,
            message_id=event.message_id or "", delivery_count=event.delivery_count or 1)
