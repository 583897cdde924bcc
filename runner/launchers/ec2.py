"""Train on a plain EC2 instance from the stack's exact RunInstances request.

The request (IMDSv2 required, encrypted root volume, an instance profile scoped to the data and
artifact prefixes, user data that installs, trains, uploads and shuts the instance down with a
hard time limit, InstanceInitiatedShutdownBehavior=terminate) is what the gate checked. The
launcher puts the bundle and data where the user data looks for them, sends the request, and
waits until the artifact appears or the instance ends.

On the local target the emulator does not boot anything, so the launcher runs the same bundle
locally with the same arguments, uploads the artifact where the user data would, and terminates
the instance as the script's shutdown would.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from runner.launchers import LaunchError, TrainingResult, TrainingRun
from runner.launchers.sagemaker import prepare_inputs, run_here, split_uri
from runner.targets import Target

POLL_S = 30.0


def artifact_uri_of(user_data: str) -> str:
    """Where the user data uploads the artifact (its last ``aws s3 cp ... s3://...`` line)."""
    for line in reversed(user_data.splitlines()):
        words = shlex.split(line)
        if words[:3] == ["aws", "s3", "cp"] and words[-1].startswith("s3://"):
            return words[-1]
    raise LaunchError("the EC2 user data never uploads an artifact")


def hyperparameters_of(user_data: str) -> dict[str, str]:
    """The ``--name value`` arguments the user data passes to train.py (paths excluded)."""
    for line in user_data.splitlines():
        words = shlex.split(line)
        if len(words) > 1 and words[1] == "train.py":
            args = words[2:]
            pairs = {args[i][2:]: args[i + 1] for i in range(0, len(args) - 1, 2) if args[i].startswith("--")}
            return {k: v for k, v in pairs.items() if not k.endswith("_dir")}
    raise LaunchError("the EC2 user data never runs train.py")


def launch(run: TrainingRun) -> TrainingResult:
    """Send the stack's RunInstances request and wait for the artifact the instance uploads."""
    if run.target is None:
        raise LaunchError("training.launcher=ec2 needs a target")
    target, run_dir, console = run.target, run.run_dir, run.console
    run_dir.mkdir(parents=True, exist_ok=True)
    request = run.job("ec2_run").request
    local_data = prepare_inputs(run, target)
    artifact_uri = artifact_uri_of(request["UserData"])

    ec2 = target.client("ec2")
    # A fresh instance profile takes a moment to be usable by EC2 ("Invalid IAM Instance Profile").
    instance = _run_instances(ec2, request)
    instance_id = instance["InstanceId"]
    if console is not None:
        console.print(f"  instance {instance_id} ({request['InstanceType']}) started; artifact expected at "
                      f"{artifact_uri}", highlight=False)

    if target.jobs_run_here:
        try:
            result = run_here(run)(hyperparameters=hyperparameters_of(request["UserData"]), data_dir=local_data,
                                   run_dir=run_dir, instance_count=1, quiet=run.quiet, timeout_s=run.timeout_s)
            bucket, key = split_uri(artifact_uri)
            target.client("s3").upload_file(str(result.artifact), bucket, key)
        finally:
            ec2.terminate_instances(InstanceIds=[instance_id])  # what the script's shutdown does
        return TrainingResult(Path(result.artifact), dict(result.metrics), Path(result.log_path),
                              artifact_uri, instance_id)

    # The user data shuts the instance down at max_runtime; allow for boot and upload.
    limit = run.timeout_s + 900
    _wait_for_artifact(target, instance_id, artifact_uri, limit, console)
    artifact = run_dir / "model.tar.gz"
    bucket, key = split_uri(artifact_uri)
    target.client("s3").download_file(bucket, key, str(artifact))
    log_path = run_dir / "train.log"
    try:
        output = ec2.get_console_output(InstanceId=instance_id, Latest=True).get("Output", "")
    except Exception:
        output = ""
    log_path.write_text(output)
    return TrainingResult(artifact, {}, log_path, artifact_uri, instance_id)


def _run_instances(ec2: Any, request: dict[str, Any], timeout_s: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return ec2.run_instances(**request)["Instances"][0]
        except ec2.exceptions.ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", ""))
            if "Invalid IAM Instance Profile" not in message or time.monotonic() > deadline:
                raise
            time.sleep(3.0)


def _wait_for_artifact(target: Target, instance_id: str, artifact_uri: str, limit_s: float, console: Console | None) -> None:
    s3, ec2 = target.client("s3"), target.client("ec2")
    bucket, key = split_uri(artifact_uri)
    deadline = time.monotonic() + limit_s
    last_state = None
    while True:
        try:
            s3.head_object(Bucket=bucket, Key=key)
            return
        except s3.exceptions.ClientError:
            pass
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        state = reservations[0]["Instances"][0]["State"]["Name"] if reservations else "terminated"
        if state != last_state and console is not None:
            console.print(f"  {instance_id}: {state}", highlight=False)
            last_state = state
        if state in ("shutting-down", "terminated", "stopped"):
            try:  # the upload may land just before the shutdown
                s3.head_object(Bucket=bucket, Key=key)
                return
            except s3.exceptions.ClientError:
                raise LaunchError(f"instance {instance_id} ended ({state}) without uploading {artifact_uri}; "
                                  "see its console output") from None
        if time.monotonic() > deadline:
            ec2.terminate_instances(InstanceIds=[instance_id])
            raise LaunchError(f"instance {instance_id} did not deliver {artifact_uri} in time; terminated it")
        time.sleep(POLL_S)
