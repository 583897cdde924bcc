"""Train on a plain EC2 instance from the stack's exact RunInstances request.

The request (the Deep Learning AMI with PyTorch, IMDSv2 required, an encrypted root volume, an
instance profile scoped to the data and artifact prefixes, no public IP, user data that trains,
packs and uploads model.tar.gz and shuts the instance down with a hard time limit,
InstanceInitiatedShutdownBehavior=terminate) is what the gate checked, and it is sent unchanged.
Before sending it the launcher checks that the subnet reaches S3 (ec2_reachability) and puts the
source bundle and the data where the user data reads them; then it waits for the artifact.

On the local target the emulator boots nothing: the stand-in instance (ec2_instance_standin)
runs the request's user data itself, with credentials from a metadata stand-in, against the
emulator's S3. Either way the artifact is the object the script uploaded.
"""

from __future__ import annotations

import json
import tarfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from runner.launchers import LaunchError, TrainingResult, TrainingRun
from runner.launchers.ec2_reachability import SUBNET_KEY, s3_route_of
from runner.launchers.sagemaker import prepare_inputs, split_uri
from runner.stack.ec2_image import describe_image
from runner.stack.ec2_user_data import artifact_uri_of
from runner.targets import Target

POLL_S = 30.0


def subnet_of(request: dict[str, Any]) -> str | None:
    for interface in request.get("NetworkInterfaces", []):
        if interface.get("SubnetId"):
            return str(interface["SubnetId"])
    return request.get("SubnetId")


def check_network(target: Target, request: dict[str, Any], console: Console | None) -> None:
    """The subnet must reach S3; on AWS a subnet is required (the gate's SG-SAN-009 says why)."""
    subnet = subnet_of(request)
    if subnet is None:
        if not target.jobs_run_here:
            raise LaunchError(f"{SUBNET_KEY} is not set: in the default VPC an instance without a public IP has "
                              "no route to S3; name a private subnet with an S3 gateway endpoint or a NAT gateway")
        _say(console, "  no subnet (target=local): the stand-in instance reaches the emulator on loopback")
        return
    route = s3_route_of(target.client("ec2"), subnet, target.region)
    _say(console, f"  subnet {subnet} reaches S3 through {route}")


def launch(run: TrainingRun) -> TrainingResult:
    """Send the stack's RunInstances request and bring back the artifact the instance uploads."""
    if run.target is None:
        raise LaunchError("training.launcher=ec2 needs a target")
    target, run_dir, console = run.target, run.run_dir, run.console
    run_dir.mkdir(parents=True, exist_ok=True)
    request = run.job("ec2_run").request
    artifact_uri = artifact_uri_of(request["UserData"])
    if not artifact_uri:
        raise LaunchError("the EC2 user data never names the artifact it uploads (ARTIFACT_URI=)")
    check_network(target, request, console)
    prepare_inputs(run, target)

    ec2 = target.client("ec2")
    instance = _run_instances(ec2, request)
    instance_id = instance["InstanceId"]
    _say(console, f"  instance {instance_id} ({request['InstanceType']}, {instance.get('ImageId')}; "
                  f"{describe_image(request['ImageId'], request['InstanceType'])}) started; "
                  f"artifact expected at {artifact_uri}")
    log_path = run_dir / "train.log"

    if target.jobs_run_here:
        from runner.launchers.ec2_instance_standin import run_user_data

        outcome = run_user_data(target, request, instance_id, run_dir / "instance", log_path, console=console,
                                quiet=run.quiet)
        if outcome.returncode != 0:
            why = (f"was stopped by {outcome.stopped_by}" if outcome.returncode is None
                   else f"exited with code {outcome.returncode}")
            raise LaunchError(f"the EC2 user data {why} on the stand-in instance {instance_id} (log: {log_path}):\n"
                              + "\n".join(outcome.tail[-12:]))
        if not any("now" in r.split() for r in outcome.shutdown_requests):
            ec2.terminate_instances(InstanceIds=[instance_id])
            raise LaunchError(f"the EC2 user data ended without shutting the instance down (on AWS it would run "
                              f"on, billed, until its time limit); terminated {instance_id} (log: {log_path})")
    else:
        # The user data shuts the instance down at max_runtime; allow for boot and upload.
        _wait_for_artifact(target, instance_id, artifact_uri, run.timeout_s + 900, console)
        try:
            output = ec2.get_console_output(InstanceId=instance_id, Latest=True).get("Output", "")
        except Exception:
            output = ""
        log_path.write_text(output)

    artifact = run_dir / "model.tar.gz"
    bucket, key = split_uri(artifact_uri)
    try:
        target.client("s3").download_file(bucket, key, str(artifact))
    except Exception as exc:
        raise LaunchError(f"instance {instance_id} uploaded no artifact at {artifact_uri}: {exc}") from None
    return TrainingResult(artifact, metrics_of(artifact), log_path, artifact_uri, instance_id)


def metrics_of(artifact: Path) -> dict[str, float]:
    """The metrics training wrote into model.json inside the artifact."""
    try:
        with tarfile.open(artifact, "r:gz") as archive:
            member = archive.extractfile("model.json")
            meta = json.loads(member.read()) if member is not None else {}
    except (KeyError, tarfile.TarError, json.JSONDecodeError):
        return {}
    return {k: float(v) for k, v in meta.get("metrics", {}).items() if isinstance(v, int | float)}


def _say(console: Console | None, text: str) -> None:
    if console is not None:
        console.print(text, highlight=False, markup=False)


def _run_instances(ec2: Any, request: dict[str, Any], timeout_s: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            instance: dict[str, Any] = ec2.run_instances(**request)["Instances"][0]
            return instance
        except ec2.exceptions.ClientError as exc:
            # A fresh instance profile takes a moment to be usable by EC2 ("Invalid IAM Instance Profile").
            message = str(exc.response.get("Error", {}).get("Message", ""))
            if "Invalid IAM Instance Profile" not in message or time.monotonic() > deadline:
                raise
            time.sleep(3.0)


def _wait_for_artifact(target: Target, instance_id: str, artifact_uri: str, limit_s: float,
                       console: Console | None) -> None:
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
        if state != last_state:
            _say(console, f"  {instance_id}: {state}")
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
