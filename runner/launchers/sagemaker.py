"""Train as a SageMaker training job (or a hyperparameter tuning job) from the stack's exact request.

The request in the stack (``JobSpec.request``) is what the policy gate checked; this module sends
it unchanged with boto3, after putting its inputs where it points: the source bundle at
``sagemaker_submit_directory`` and the data set under the training channel's S3 URI. It waits
with progress, streams the job's CloudWatch log, and brings the artifact back into ``run_dir``.

On the local target the emulator accepts the job and reports it Completed at once without
running anything, so the launcher then runs the same bundle locally with the job's
hyperparameters (as the remote side would) and puts the artifact where the job would have
written it: the record that comes back is real either way. A job with ``EnableNetworkIsolation``
runs isolated there too: its channels other than ``training`` (the ``code`` channel holding the
source bundle) are downloaded from the emulator into their folders, so the run uses the bytes the
job's channel points at, and the processes get no endpoint or credentials (runner/launchers/local.py).
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from runner.deploy.drivers.base import retry_while_propagating
from runner.launchers import LaunchError, LocalRunner, TrainingResult, TrainingRun
from runner.targets import Target

POLL_S = 30.0
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
SCRIPT_MODE_KEYS = ("sagemaker_program", "sagemaker_submit_directory", "sagemaker_region",
                    "sagemaker_container_log_level", "sagemaker_torch_distributed_enabled")


# -- inputs ------------------------------------------------------------------------------------
def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def upload_source_bundle(target: Target, uri: str, work_dir: Path) -> str:
    """The training bundle at ``uri`` (re-uploaded only when its bytes changed)."""
    from training.bundle import build_source_bundle

    work_dir.mkdir(parents=True, exist_ok=True)
    path = build_source_bundle(work_dir)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    bucket, key = split_uri(uri)
    s3 = target.client("s3")
    try:
        if s3.head_object(Bucket=bucket, Key=key).get("Metadata", {}).get("sha256") == digest:
            return uri
    except s3.exceptions.ClientError:
        pass
    s3.upload_file(str(path), bucket, key, ExtraArgs={"Metadata": {"sha256": digest}})
    return uri


def upload_data(target: Target, data_dir: Path, uri: str) -> int:
    """A local ImageFolder tree under ``uri``; files already there with the same size stay. Returns uploads."""
    bucket, prefix = split_uri(uri)
    s3 = target.client("s3")
    present: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/"):
        present.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    uploaded = 0
    for path in sorted(p for p in Path(data_dir).rglob("*") if p.is_file()):
        key = f"{prefix.rstrip('/')}/{path.relative_to(data_dir).as_posix()}"
        if present.get(key) != path.stat().st_size:
            s3.upload_file(str(path), bucket, key)
            uploaded += 1
    return uploaded


def download_prefix(target: Target, uri: str, dest: Path) -> Path:
    bucket, prefix = split_uri(uri)
    s3 = target.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/"):
        for item in page.get("Contents", []):
            path = dest / item["Key"][len(prefix.rstrip("/")) + 1:]
            if not path.is_file() or path.stat().st_size != item["Size"]:
                path.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, item["Key"], str(path))
    return dest


def prepare_inputs(run: TrainingRun, target: Target) -> Path:
    """Source bundle and data where the job's request points; returns a local copy of the data.

    The stack's bucket and the job's role exist already (the caller applies them first)."""
    names = run.stack.names
    upload_source_bundle(target, names.s3_uri("code/sourcedir.tar.gz"), run.run_dir / "bundle")
    if run.data_dir is not None and not run.settings.data.source.startswith("s3://"):
        count = upload_data(target, run.data_dir, names.data_uri)
        _say(run.console, f"data: {count} new files under {names.data_uri}")
        return Path(run.data_dir)
    return run.data_dir or download_prefix(target, names.data_uri, run.run_dir / "data")


# -- the job -----------------------------------------------------------------------------------
def launch(run: TrainingRun) -> TrainingResult:
    """Send the stack's CreateTrainingJob (or CreateHyperParameterTuningJob) and bring the artifact back."""
    settings, stack, target, run_dir, console, timeout_s = (run.settings, run.stack, _target(run), run.run_dir,
                                                            run.console, run.timeout_s)
    run_dir.mkdir(parents=True, exist_ok=True)
    job = run.job("training_job", "tuning_job")
    definition = job.request if job.kind == "training_job" else job.request["TrainingJobDefinition"]
    local_data = prepare_inputs(run, target)
    sm = target.client("sagemaker")

    if job.kind == "training_job":
        job_name = job.request["TrainingJobName"]
        retry_while_propagating(None, f"training job {job_name}", lambda: sm.create_training_job(**job.request),
                                say=lambda message: _say(console, message))
        _say(console, f"training job {job_name} started ({definition['ResourceConfig']['InstanceType']} x "
                      f"{definition['ResourceConfig']['InstanceCount']})")
        hyperparameters = dict(job.request["HyperParameters"])
    else:
        tuning_name = job.request["HyperParameterTuningJobName"]
        retry_while_propagating(None, f"tuning job {tuning_name}",
                                lambda: sm.create_hyper_parameter_tuning_job(**job.request),
                                say=lambda message: _say(console, message))
        _say(console, f"tuning job {tuning_name} started")
        best = _wait_tuning(target, tuning_name, console, timeout_s)
        job_name = best["TrainingJobName"]
        ranges = job.request["HyperParameterTuningJobConfig"]["ParameterRanges"]
        tuned_names = {r["Name"] for kind in ranges.values() for r in kind}
        tuned = {k: v for k, v in best.get("TunedHyperParameters", {}).items() if k in tuned_names}
        if target.jobs_run_here and tuned.keys() != tuned_names:
            # The emulator's best job is a placeholder: train with the configured values instead.
            from runner.stack.jobs import hyperparameters as configured

            tuned = {k: v for k, v in configured(settings).items() if k in tuned_names}
        hyperparameters = {**job.request["TrainingJobDefinition"]["StaticHyperParameters"], **tuned}

    if job.kind == "tuning_job" and target.jobs_run_here:
        # The emulator's best job does not exist as a training job: nothing to wait for.
        description: dict[str, Any] = {"ModelArtifacts": {"S3ModelArtifacts": stack.names.s3_uri(
            f"artifacts/{job.request['HyperParameterTuningJobName']}/{job_name}/output/model.tar.gz")}}
    else:
        description = _wait_training(target, job_name, console, timeout_s)
    artifact_uri = description.get("ModelArtifacts", {}).get("S3ModelArtifacts") or stack.names.s3_uri(
        f"artifacts/{job_name}/output/model.tar.gz")
    log_path = run_dir / "train.log"
    if target.jobs_run_here:
        # The emulator ran nothing: run the same bundle here, as the job's container would.
        result = run_here(run)(hyperparameters={k: v for k, v in hyperparameters.items() if k not in SCRIPT_MODE_KEYS},
                               data_dir=local_data, run_dir=run_dir,
                               instance_count=definition["ResourceConfig"]["InstanceCount"], quiet=run.quiet,
                               timeout_s=timeout_s, **container_inputs(target, definition, hyperparameters,
                                                                       job_name, run_dir))
        # SageMaker uploads /opt/ml/model as the job's role: a role that may not write there fails the job.
        bucket, key = split_uri(artifact_uri)
        target.role_client("s3", definition["RoleArn"], job_name).upload_file(str(result.artifact), bucket, key)
        return TrainingResult(Path(result.artifact), dict(result.metrics), Path(result.log_path), artifact_uri,
                              job_name)

    artifact = run_dir / "model.tar.gz"
    bucket, key = split_uri(artifact_uri)
    target.client("s3").download_file(bucket, key, str(artifact))
    metrics = {m["MetricName"]: float(m["Value"]) for m in description.get("FinalMetricDataList", [])}
    if not log_path.exists():
        log_path.write_text("")
    return TrainingResult(artifact, metrics, log_path, artifact_uri, job_name)


def container_inputs(target: Target, definition: dict[str, Any], hyperparameters: dict[str, str], job_name: str,
                     run_dir: Path) -> dict[str, Any]:
    """What the job's container gets besides data and hyperparameters: its name, and under network
    isolation its other channels (downloaded from the target), its submit directory and no network."""
    if not definition.get("EnableNetworkIsolation"):
        # The container reaches AWS as the job's role: the emulator authorises its calls against it.
        return {"job_name": job_name, "aws_environment": target.role_environment(definition["RoleArn"], job_name)}
    channels = {}
    for channel in definition.get("InputDataConfig", []):
        if channel["ChannelName"] == "training":
            continue  # the data set: already on this machine (prepare_inputs), the same objects
        dest = run_dir / "channels" / channel["ChannelName"]
        if dest.exists():
            shutil.rmtree(dest)
        channels[channel["ChannelName"]] = download_channel(target, channel["DataSource"]["S3DataSource"]["S3Uri"],
                                                            dest)
    return {"job_name": job_name, "channels": channels, "network_isolation": True,
            "submit_directory": hyperparameters.get("sagemaker_submit_directory")}


def download_channel(target: Target, uri: str, dest: Path) -> Path:
    """An S3Prefix channel's objects in ``dest`` as SageMaker lays them out: an object whose key is
    the URI itself by its file name (the SDK's code channel), the others by their path under it."""
    bucket, prefix = split_uri(uri)
    s3 = target.client("s3")
    dest.mkdir(parents=True, exist_ok=True)
    found = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith("/"):
                continue
            if key == prefix:
                name = key.rsplit("/", 1)[-1]
            elif key.startswith(prefix.rstrip("/") + "/"):
                name = key[len(prefix.rstrip("/")) + 1:]
            else:
                name = key[len(prefix.rsplit("/", 1)[0]) + 1:] if "/" in prefix else key
            path = dest / name
            if not path.resolve().is_relative_to(dest.resolve()):
                raise LaunchError(f"channel {uri}: object key {key!r} escapes the channel folder")
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(path))
            found += 1
    if not found:
        raise LaunchError(f"channel {uri}: no objects under that S3 URI (SageMaker fails the job the same way)")
    return dest


def _target(run: TrainingRun) -> Target:
    if run.target is None:
        raise LaunchError(f"training.launcher={run.settings.training.launcher} needs a target")
    return run.target


def run_here(run: TrainingRun) -> LocalRunner:
    """How a job the target only records is run: the same bundle in local processes."""
    if run.local_runner is not None:
        return run.local_runner
    from runner.launchers.local import run_local_training  # torch-free, but only needed on the emulator

    return run_local_training


def _wait_training(target: Target, job_name: str, console: Console | None, timeout_s: float | None) -> dict[str, Any]:
    sm = target.client("sagemaker")
    deadline = time.monotonic() + (timeout_s or 7 * 24 * 3600)
    logs = _LogTail(target, job_name, console)
    last = None
    while True:
        description = sm.describe_training_job(TrainingJobName=job_name)
        status = (description["TrainingJobStatus"], description.get("SecondaryStatus"))
        if status != last:
            _say(console, f"{job_name}: {status[0]} ({status[1]})")
            last = status
        logs.poll()
        if status[0] == "Completed":
            return description
        if status[0] in ("Failed", "Stopped"):
            raise LaunchError(f"training job {job_name} {status[0].lower()}: "
                              f"{description.get('FailureReason', 'no reason given')}")
        if time.monotonic() > deadline:
            raise LaunchError(f"training job {job_name} still {status[0]} at the launcher's deadline")
        time.sleep(POLL_S)


def _wait_tuning(target: Target, name: str, console: Console | None, timeout_s: float | None) -> dict[str, Any]:
    sm = target.client("sagemaker")
    deadline = time.monotonic() + (timeout_s or 7 * 24 * 3600)
    last = None
    while True:
        description = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        status = description["HyperParameterTuningJobStatus"]
        counters = description.get("TrainingJobStatusCounters", {})
        if (status, str(counters)) != last:
            _say(console, f"{name}: {status} {counters}")
            last = (status, str(counters))
        if status == "Completed":
            best = description.get("BestTrainingJob")
            if not best:
                raise LaunchError(f"tuning job {name} completed without a best training job")
            _say(console, f"best job {best['TrainingJobName']}: {best.get('TunedHyperParameters')}")
            return best
        if status in ("Failed", "Stopped"):
            raise LaunchError(f"tuning job {name} {status.lower()}: {description.get('FailureReason', '')}")
        if time.monotonic() > deadline:
            raise LaunchError(f"tuning job {name} still {status} at the launcher's deadline")
        time.sleep(POLL_S)


class _LogTail:
    """Prints new CloudWatch log lines of a training job (every host's stream)."""

    def __init__(self, target: Target, job_name: str, console: Console | None):
        self.logs = target.client("logs")
        self.job_name = job_name
        self.console = console
        self.tokens: dict[str, str | None] = {}

    def poll(self) -> None:
        if self.console is None:
            return
        try:
            streams = self.logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{self.job_name}/")
        except Exception:  # no log group yet (or none at all on the emulator)
            return
        for stream in streams.get("logStreams", []):
            name = stream["logStreamName"]
            kwargs = {"logGroupName": LOG_GROUP, "logStreamName": name, "startFromHead": True}
            if self.tokens.get(name):
                kwargs["nextToken"] = self.tokens[name]
            try:
                answer = self.logs.get_log_events(**kwargs)
            except Exception:
                continue
            for event in answer.get("events", []):
                self.console.print(f"  [{name.split('/')[-1]}] {event['message']}", highlight=False, markup=False)
            self.tokens[name] = answer.get("nextForwardToken")


def _say(console: Console | None, message: str) -> None:
    if console is not None:
        console.print(f"  {message}", highlight=False, markup=False)
