"""What AWS services do with a part's role at run time, done for real on the local target.

On AWS, SageMaker pulls the endpoint's image, reads its artifact, ships its logs and publishes its
instance metrics as the model's execution role; Lambda writes the function's log stream and, when
tracing is active, sends X-Ray segments as the function's role. None of that is sagegate's code,
so without these calls a role that lacks the permissions would work locally and fail on AWS. Each
call here is signed with the role's AssumeRole credentials, so the emulator's authoriser
(runner/targets/iam_enforcement.py) checks it against the role's policies as IAM would; a refused
call is an ``AccessDenied`` naming the action and the resource, collected by the emulator
(``access_denied``) and reported by the run.

What a refusal does, as on AWS: an image that cannot be pulled or an artifact that cannot be read
stops the endpoint from starting; refused logs, metrics and traces are lost and the service goes
on (the run reports them: runner/app/invoke.py).

Sources: SageMaker DG "CreateModel API: Execution Role Permissions" (ECR pull, S3 artifact, logs,
metrics); Lambda DG "Lambda execution role" (CreateLogGroup, CreateLogStream, PutLogEvents) and
"Using Lambda with X-Ray" (PutTraceSegments, PutTelemetryRecords).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from runner.core.errors import UserError
from runner.targets import Target

ACCESS_DENIED = ("AccessDenied", "AccessDeniedException")


def _denied(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code", "") in ACCESS_DENIED


def _ensure_log_stream(logs: Any, group: str, stream: str) -> None:
    """What the services do before writing: create the group (it may exist) and the stream."""
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)


def _now_ms() -> int:
    return int(time.time() * 1000)


# ---- the endpoint: SageMaker hosting ------------------------------------------------------------

def pull_image(target: Target, endpoint_name: str, role_arn: str, image: str) -> None:
    """SageMaker pulls the model's image from ECR as the execution role before the container starts.

    The images are in AWS's registries, which the emulator does not hold: once the authoriser lets
    a call through, the emulator's "no such repository" answer is what a pull from it gives, and
    counts as pulled."""
    registry, _, path = image.partition("/")
    repository, _, tag = path.partition(":")
    where = {"registryId": registry.split(".")[0], "repositoryName": repository}
    layer = f"sha256:{uuid.uuid5(uuid.NAMESPACE_URL, image).hex * 2}"  # the emulator holds no manifest to read
    ecr = target.role_client("ecr", role_arn, f"SageMaker-{endpoint_name}")
    calls: tuple[tuple[str, Any, dict[str, Any]], ...] = (("GetAuthorizationToken", ecr.get_authorization_token, {}),
             ("BatchGetImage", ecr.batch_get_image, {**where, "imageIds": [{"imageTag": tag or "latest"}]}),
             ("BatchCheckLayerAvailability", ecr.batch_check_layer_availability, {**where, "layerDigests": [layer]}),
             ("GetDownloadUrlForLayer", ecr.get_download_url_for_layer, {**where, "layerDigest": layer}))
    for operation, call, params in calls:
        try:
            call(**params)
        except ClientError as exc:
            if _denied(exc):
                raise UserError(f"endpoint {endpoint_name} cannot start: its role {role_arn} cannot pull {image} "
                                f"({operation}: {exc.response['Error'].get('Message', '')})") from None
            # any other answer: the emulator holds no AWS images; the pull was authorised


def endpoint_started(target: Target, endpoint_name: str, role_arn: str, variant: str, lines: list[str]) -> None:
    """After the container answers /ping: SageMaker ships its output to
    /aws/sagemaker/Endpoints/<name> (stream <variant>/<instance id>) and publishes the instance's
    metrics, both as the execution role. Refusals are collected by the emulator, not raised."""
    session = f"SageMaker-{endpoint_name}"
    logs = target.role_client("logs", role_arn, session)
    group, stream = f"/aws/sagemaker/Endpoints/{endpoint_name}", f"{variant}/i-{uuid.uuid4().hex[:17]}"
    with contextlib.suppress(ClientError):
        _ensure_log_stream(logs, group, stream)
    with contextlib.suppress(ClientError):
        logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=variant)
    with contextlib.suppress(ClientError):
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": _now_ms(), "message": line} for line in lines[:100] or ["started"]])
    cloudwatch = target.role_client("cloudwatch", role_arn, session)
    dimensions = [{"Name": "EndpointName", "Value": endpoint_name}, {"Name": "VariantName", "Value": variant}]
    with contextlib.suppress(ClientError):
        cloudwatch.put_metric_data(Namespace="/aws/sagemaker/Endpoints", MetricData=[
            {"MetricName": name, "Dimensions": dimensions, "Value": 0.0, "Unit": "Percent"}
            for name in ("CPUUtilization", "MemoryUtilization", "DiskUtilization")])


# ---- the function: Lambda ---------------------------------------------------------------------

class FunctionPlatform:
    """Lambda's own calls for one function, as its role: the log stream of each execution
    environment with its START/END/REPORT lines, and X-Ray segments when tracing is active.

    Shipped from a background thread, as Lambda does, so invocations do not wait for them."""

    def __init__(self, target: Target, function_name: str, version: str, role_arn: str, traced: bool):
        self.function_name, self.version, self.traced = function_name, version, traced
        self._logs = target.role_client("logs", role_arn, function_name)
        self._xray = target.role_client("xray", role_arn, function_name) if traced else None
        self._group = f"/aws/lambda/{function_name}"
        self._work: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._ship, name=f"lambda-platform-{function_name}", daemon=True)
        self._thread.start()

    # Called by the runtime (runner/targets/lambda_runtime.py).
    def environment_started(self) -> str:
        """A new execution environment: its log stream name (Lambda's format)."""
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[{self.version}]{uuid.uuid4().hex}"
        self._work.put(("stream", stream))
        if self._xray is not None:
            self._work.put(("telemetry", None))
        return stream

    def invoked(self, stream: str, request_id: str, started: float, duration_ms: float, memory_mb: int) -> None:
        lines = [f"START RequestId: {request_id} Version: {self.version}", f"END RequestId: {request_id}",
                 f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
                 f"Billed Duration: {max(1, round(duration_ms))} ms\tMemory Size: {memory_mb} MB"]
        self._work.put(("events", (stream, [{"timestamp": int(started * 1000), "message": m} for m in lines])))
        if self._xray is not None:
            self._work.put(("segment", (request_id, started, duration_ms)))

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until what was handed over so far has been shipped (or refused)."""
        done = threading.Event()
        self._work.put(("flush", done))
        done.wait(timeout_s)

    def stop(self) -> None:
        self.flush()
        self._work.put(None)

    def _ship(self) -> None:
        while (item := self._work.get()) is not None:
            kind, payload = item
            if kind == "flush":
                payload.set()
                continue
            # A refusal is recorded by the emulator; Lambda drops what it could not ship.
            with contextlib.suppress(ClientError, OSError):
                self._one(kind, payload)

    def _one(self, kind: str, payload: Any) -> None:
        if kind == "stream":
            _ensure_log_stream(self._logs, self._group, payload)
        elif kind == "events":
            stream, events = payload
            self._logs.put_log_events(logGroupName=self._group, logStreamName=stream, logEvents=events)
        elif kind == "telemetry":
            assert self._xray is not None
            self._xray.put_telemetry_records(TelemetryRecords=[{"Timestamp": datetime.now(UTC),
                                                                "SegmentsReceivedCount": 0}])
        elif kind == "segment":
            assert self._xray is not None
            request_id, started, duration_ms = payload
            segment = {"name": self.function_name, "id": os.urandom(8).hex(), "origin": "AWS::Lambda::Function",
                       "trace_id": f"1-{int(started):08x}-{os.urandom(12).hex()}", "start_time": started,
                       "end_time": started + duration_ms / 1000, "aws": {"request_id": request_id}}
            self._xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(segment)])
