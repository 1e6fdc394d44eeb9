"""events_sender: publishes the door-system events of the outbox (shared/services/events.py).

A timer, so a failed publish (Event Grid unreachable, throttled) is simply retried by the next
run: nothing is marked sent until Event Grid accepted it.
"""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%EVENTS_SCHEDULE%", run_on_startup=False, use_monitor=True)
def events_sender(timer: func.TimerRequest) -> None:
    from shared.bootstrap import services

    services().events.send()
