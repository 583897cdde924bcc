"""requests.jsonl: every AWS request a run sent, as it was sent, with secrets redacted.

A user can audit exactly what sagegate asked of their account, or diff two runs. Recorded at
``before-parameter-build`` after the request check (runner/targets/request_validation.py), so
a refused request is not in the log: it was never sent. Members the service model marks sensitive
(environment values, passwords) are replaced by ``<sensitive>``, and binary payloads (a Lambda
zip, an S3 object, an image) by their size and sha256.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from botocore.model import OperationModel, Shape

from runner.targets import Target


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: list[dict[str, Any]] = []

    def attach(self, target: Target) -> None:
        # Registered on every client of the target (now and later), after the request check.
        target.register("before-parameter-build", self._record, last=True)

    def _record(self, params: dict[str, Any], model: OperationModel, **_: Any) -> None:
        entry = {"time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
                 "service": model.service_model.service_name, "operation": model.name,
                 "params": redact(params, model.input_shape)}
        with self._lock:
            self.entries.append(entry)

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            lines = [json.dumps(entry, default=str, sort_keys=True) for entry in self.entries]
        path.write_text("".join(line + "\n" for line in lines))
        return path


def _payload(data: bytes) -> str:
    return f"<{len(data)} bytes sha256 {hashlib.sha256(data).hexdigest()[:16]}>"


def redact(value: Any, shape: Shape | None) -> Any:
    """``value`` with sensitive members and binary payloads replaced (by the operation's input shape)."""
    if shape is not None and shape.metadata.get("sensitive"):
        return "<sensitive>"
    if isinstance(value, bytes | bytearray):
        return _payload(bytes(value))
    if hasattr(value, "read"):
        # botocore has wrapped a body in a file object by now: hash it where it can be rewound.
        if not (hasattr(value, "seekable") and value.seekable()):
            return "<stream>"
        start = value.tell()
        data = value.read()
        value.seek(start)
        return _payload(data if isinstance(data, bytes) else str(data).encode())
    kind = shape.type_name if shape is not None else None
    if isinstance(value, dict):
        if kind == "structure":
            return {k: redact(v, shape.members.get(k)) for k, v in value.items()}  # type: ignore[union-attr]
        if kind == "map":
            return {k: redact(v, shape.value) for k, v in value.items()}  # type: ignore[union-attr]
        return {k: redact(v, None) for k, v in value.items()}
    if isinstance(value, list | tuple):
        member = shape.member if kind == "list" else None  # type: ignore[union-attr]
        return [redact(v, member) for v in value]
    return value
