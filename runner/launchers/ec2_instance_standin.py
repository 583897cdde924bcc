"""The local target's stand-in for an EC2 instance: it runs the request's exact user data.

The emulator records RunInstances and boots nothing, so on ``target=local`` the launcher hands
the request's ``UserData`` text, unchanged, to ``bash`` in a scratch directory that stands in for
the instance:

- the instance metadata service is ``InstanceMetadataStandIn`` on loopback
  (``AWS_EC2_METADATA_SERVICE_ENDPOINT``), serving the emulator's STS credentials for the instance
  profile's role; no other AWS credentials are in the environment (no keys, no profile, no
  config files), so the script's SDK calls are signed with what the metadata service gives;
- S3 and every other API is the emulator (``AWS_ENDPOINT_URL``);
- ``shutdown`` is a stand-in on PATH that records each request; a ``shutdown -h now`` stops the
  script and terminates the instance in the emulator (InstanceInitiatedShutdownBehavior=terminate),
  and the time limit a ``shutdown -h +N`` schedules is enforced the same way;
- ``SAGEGATE_ROOT`` is the scratch directory's ``opt/sagegate`` and ``SAGEGATE_PYTHON`` this
  machine's python (the DLAMI's PyTorch environment on the instance).

The script's output goes to ``train.log``; epoch and accuracy lines also go to the console.
"""

from __future__ import annotations

import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from runner.launchers import LaunchError
from runner.launchers.instance_metadata_standin import InstanceIdentity, InstanceMetadataStandIn
from runner.targets import Target
from training.metrics import EPOCH_LINE, TESTING_ACCURACY, VALIDATION_ACCURACY

# The stand-in instance's interpreter (tests replace it with a torch-free fake).
INSTANCE_PYTHON = sys.executable
TAIL_LINES = 30
SHUTDOWN_STANDIN = """#!/bin/bash
# Stand-in for shutdown(8) on the local target's stand-in instance: records the request; the
# stand-in instance acts on it (now: stop and terminate; +N: the hard time limit).
printf '%s\\n' "$*" >> {record}
"""


@dataclass
class InstanceOutcome:
    returncode: int | None  # None: stopped by a shutdown (now, or the +N time limit) before it ended
    shutdown_requests: list[str]
    stopped_by: str | None  # "shutdown -h now" | "time limit" | None
    log_path: Path
    tail: list[str]
    metadata_requests: list[tuple[str, str, int]] = field(default_factory=list)


def role_arn_of_profile(target: Target, profile_name: str) -> tuple[str, str]:
    """(role name, role ARN) of the instance profile, as EC2 reads it."""
    profile = target.client("iam").get_instance_profile(InstanceProfileName=profile_name)["InstanceProfile"]
    if not profile.get("Roles"):
        raise LaunchError(f"instance profile {profile_name} has no role: the instance would get no credentials")
    role = profile["Roles"][0]
    return role["RoleName"], role["Arn"]


def instance_credentials(target: Target, role_arn: str, instance_id: str) -> dict[str, str]:
    """Temporary credentials for the role, as the metadata service hands them to the instance."""
    creds = target.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=instance_id,
                                             DurationSeconds=3600)["Credentials"]
    expiration = creds["Expiration"]
    return {"AccessKeyId": creds["AccessKeyId"], "SecretAccessKey": creds["SecretAccessKey"],
            "Token": creds["SessionToken"],
            "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ") if hasattr(expiration, "strftime")
            else str(expiration)}


def instance_env(root: Path, bin_dir: Path, home: Path, python: str, metadata_url: str,
                 emulator_url: str) -> dict[str, str]:
    """The stand-in instance's whole environment: nothing of this machine's AWS settings."""
    path = os.pathsep.join([str(bin_dir), str(Path(python).parent), "/usr/local/bin", "/usr/bin", "/bin"])
    env = {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1",
           "SAGEGATE_ROOT": str(root), "SAGEGATE_PYTHON": python,
           "AWS_EC2_METADATA_SERVICE_ENDPOINT": metadata_url, "AWS_ENDPOINT_URL": emulator_url,
           # No shared config or credentials file: the metadata service is the only source.
           "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials")}
    for name in ("PYTHONDONTWRITEBYTECODE", "TMPDIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def run_user_data(target: Target, request: dict[str, Any], instance_id: str, scratch: Path, log_path: Path, *,
                  console: Console | None = None, quiet: bool = False, minute_s: float = 60.0,
                  python: str | None = None) -> InstanceOutcome:
    """Run ``request["UserData"]`` as the instance would; terminate the instance as its shutdown does."""
    user_data = request["UserData"]
    role_name, role_arn = role_arn_of_profile(target, request["IamInstanceProfile"]["Name"])
    identity = InstanceIdentity(instance_id, role_name, instance_credentials(target, role_arn, instance_id),
                                target.region)
    root, bin_dir, home = scratch / "opt" / "sagegate", scratch / "bin", scratch / "home"
    for folder in (root, bin_dir, home):
        folder.mkdir(parents=True, exist_ok=True)
    script = scratch / "user-data"
    script.write_text(user_data)
    record = scratch / "shutdown-requests"
    record.write_text("")
    shutdown = bin_dir / "shutdown"
    shutdown.write_text(SHUTDOWN_STANDIN.format(record=shlex.quote(str(record))))
    shutdown.chmod(0o755)

    with InstanceMetadataStandIn(identity) as metadata:
        env = instance_env(root, bin_dir, home, python or INSTANCE_PYTHON, metadata.url, target.endpoint_url or "")
        process = subprocess.Popen(["bash", str(script)], cwd=scratch, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
        try:
            returncode, stopped_by, tail = _follow(process, record, log_path, console, quiet, minute_s)
        finally:
            _stop(process)
        requests = [line for line in record.read_text().splitlines() if line.strip()]
        if stopped_by is None and any(_is_now(r) for r in requests):
            stopped_by = "shutdown -h now"
        if stopped_by is not None or requests:
            # InstanceInitiatedShutdownBehavior=terminate: a shutdown from inside terminates it.
            target.client("ec2").terminate_instances(InstanceIds=[instance_id])
    return InstanceOutcome(returncode, requests, stopped_by, log_path, tail, list(identity.requests))


def _is_now(request: str) -> bool:
    return "now" in request.split()


def _time_limit(requests: list[str]) -> int | None:
    for request in requests:
        for word in request.split():
            if word.startswith("+") and word[1:].isdigit():
                return int(word[1:])
    return None


def _follow(process: subprocess.Popen, record: Path, log_path: Path, console: Console | None, quiet: bool,
            minute_s: float) -> tuple[int | None, str | None, list[str]]:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    started = time.monotonic()
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with log_path.open("w") as log:
        while True:
            requests = record.read_text().splitlines()
            limit = _time_limit(requests)
            if any(_is_now(r) for r in requests) and process.poll() is None:
                time.sleep(0.5)  # the trap's shutdown is the script's last command: let it end
                if process.poll() is None:
                    _drain(lines, log, tail)
                    return None, "shutdown -h now", list(tail)
            if limit is not None and time.monotonic() - started > limit * minute_s:
                _drain(lines, log, tail)
                return None, "time limit", list(tail)
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                return process.wait(), None, list(tail)
            text = line.rstrip("\n")
            log.write(text + "\n")
            log.flush()
            tail.append(text)
            if console is not None and not quiet and _is_progress(text):
                console.print(f"  {text}", markup=False, highlight=False)


def _drain(lines: queue.Queue[str | None], log: Any, tail: deque[str]) -> None:
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            return
        if line is None:
            return
        log.write(line)
        tail.append(line.rstrip("\n"))


def _is_progress(text: str) -> bool:
    return bool(EPOCH_LINE.match(text)) or text.startswith((VALIDATION_ACCURACY, TESTING_ACCURACY))


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: bash, the trainer and its workers
        except ProcessLookupError:
            pass
        process.wait()
