"""A deploy in its own process that SIGKILLs itself at its k-th mutating call, after the request
has reached AWS and before the answer is read: nothing in the process (no ``finally``, no
rollback, no atexit) gets to run. Used by test_killed_process.py; not a test module.

    python deploy_then_die.py <emulator url> <stack name> <k> [override ...]
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from runner_helpers import is_mutating, stack_for  # noqa: E402

from runner.deploy import apply  # noqa: E402
from runner.targets import local_target  # noqa: E402


def main(url: str, name: str, k: int, *overrides: str) -> None:
    target = local_target(url)
    count = 0

    def die_after_sending(event_name: str, request, **_) -> None:
        nonlocal count
        if not is_mutating(event_name.rsplit(".", 1)[-1]):
            return
        count += 1
        if count == k:
            from botocore.httpsession import URLLib3Session

            URLLib3Session().send(request)
            print(f"killed at {event_name.rsplit('.', 1)[-1]}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    target.register("before-send", die_after_sending)
    apply(stack_for(name, *overrides), target)
    print("finished without reaching the call", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:])
