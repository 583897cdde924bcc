"""One execution environment of the local Lambda runtime: ``python -m runner.targets.lambda_worker``.

Imports the handler once (the init phase), then answers invocations one at a time. Protocol on
the inherited stdin/stdout: a line of JSON per message. The handler's own prints go to stderr
(stdout belongs to the protocol), as Lambda sends them to the function's log.

    -> {"ready": true, "init_ms": 12.3}                        after the import
    <- {"id": "...", "event": {...}, "deadline_ms": 1700000000000}
    -> {"id": "...", "result": ...} | {"id": "...", "error": {"errorMessage", "errorType"}}
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class Context:
    """The parts of Lambda's context object a handler reads."""

    def __init__(self, request_id: str, deadline_ms: int):
        self.aws_request_id = request_id
        self._deadline_ms = deadline_ms
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.invoked_function_arn = os.environ.get("SAGEGATE_FUNCTION_ARN", "")
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{os.getpid()}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def main() -> int:
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # the handler's prints are its log, not the protocol
    started = time.perf_counter()
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # an init error: Lambda reports it on every invocation
        init_error: dict[str, Any] | None = {"errorMessage": str(exc), "errorType": type(exc).__name__}
        handler = None
    else:
        init_error = None
    protocol.write(json.dumps({"ready": True, "init_ms": (time.perf_counter() - started) * 1000}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        answer: dict[str, Any] = {"id": request["id"]}
        if handler is None:
            answer["error"] = init_error
        else:
            try:
                answer["result"] = handler(request["event"], Context(request["id"], request["deadline_ms"]))
            except Exception as exc:
                traceback.print_exc()
                answer["error"] = {"errorMessage": str(exc), "errorType": type(exc).__name__}
        try:
            protocol.write(json.dumps(answer, default=str) + "\n")
        except (TypeError, ValueError) as exc:
            protocol.write(json.dumps({"id": request["id"], "error": {
                "errorMessage": f"Unable to marshal response: {exc}", "errorType": "Runtime.MarshalError"}}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
