"""Re-enrollment after a recognition model update (issue 7: not built yet).

Until it is, a start message is refused with a clear reason rather than silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.errors import MessageRejected


class ReenrollmentService:
    def __init__(self, *, records: Any, photos: Any, face: Any, audit: Any, publisher: Any, enrollment: Any,
                 settings: Any, clock: Callable[[], datetime]) -> None:
        self._audit = audit

    def handle_control(self, body: bytes, *, message_id: str) -> None:
        self._audit.write("message.rejected", actor="system", messageId=message_id[:128], reason="re-enrollment not available")
        raise MessageRejected("re-enrollment is not available in this version")

    def handle_work(self, body: bytes, *, message_id: str) -> None:
        self.handle_control(body, message_id=message_id)
