"""The endpoint server's logs: one JSON object a line on stderr.

stdout is reserved for the ready line that ``handlers.server_process.spawn_server`` waits for.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def log_event(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}, default=str), file=sys.stderr, flush=True)
