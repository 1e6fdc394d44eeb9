"""purge_timer: the scheduled sweep (expired consents, stale uploads, orphans, superseded groups)."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()


@bp.timer_trigger(arg_name="timer", schedule="%PURGE_SCHEDULE%", run_on_startup=False, use_monitor=True)
def purge_timer(timer: func.TimerRequest) -> None:
    from shared.bootstrap import services
    from shared.commands import RunPurge

    services().purge.run(RunPurge(dry_run=False, trigger="timer"))
