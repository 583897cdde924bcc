"""Run the training bundle in local processes, exactly as a SageMaker PyTorch training container would.

The bundle (``sourcedir.tar.gz``) is unpacked into a temporary ``/opt/ml``-shaped tree and its
``train.py`` runs with the container's ``SM_*`` environment; with ``instance_count > 1`` one
process per simulated host joins a DistributedDataParallel job (torchrun's variables, gloo).
The model directory is packed into ``model.tar.gz`` as SageMaker packs ``/opt/ml/model``.

A job with ``EnableNetworkIsolation`` runs isolated: its code comes from the ``code`` channel's
tarball (unpacked as the SageMaker training toolkit unpacks a local ``sagemaker_submit_directory``),
its inputs from the channel folders only, and its environment holds no AWS endpoint, credentials or
proxy, so code that would need the network fails here as it fails in the isolated container. A
single-host isolated job also runs in a network namespace of its own with only its loopback up
(``unshare``; where user namespaces are not allowed, the environment is the isolation).
"""

from __future__ import annotations

import functools
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

from runner.launchers import LaunchError, TrainingResult, TrainingRun
from training.archive import pack_directory, safe_extract
from training.bundle import ENTRY_POINT, build_source_bundle
from training.config import TRAINING_JOB_ENV
from training.metrics import EPOCH_LINE, TESTING_ACCURACY, VALIDATION_ACCURACY, parse_metric_lines

CHANNEL = "training"
TAIL_LINES = 30
# Variables of a surrounding job that must not leak into the simulated container.
DISTRIBUTED_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                         "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")
OPT_ML = "/opt/ml"
# Variables through which a process finds the network: proxies (any case).
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")
# "No AWS credentials are made available to the container runtime environment" of an isolated job:
# nor may boto3 find any in the developer's files or the instance metadata service.
NO_CREDENTIALS = {"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
                  "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
# Run first inside a new network namespace: bring its loopback up (a container has one), then
# become the job's Python. Every other address, the host's loopback included, is unreachable.
LOOPBACK_UP = """\
import fcntl, os, socket, struct, sys
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    flags = struct.unpack("16sH14s", fcntl.ioctl(s, 0x8913, struct.pack("16sH14s", b"lo", 0, b"")))[1]
    fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", flags | 1, b""))
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""


class TrainingFailed(LaunchError):
    """The training process exited non-zero (or timed out); the message ends with its last log lines."""

    def __init__(self, message: str, *, returncode: int | None, log_path: Path, tail: list[str]) -> None:
        super().__init__(message + ("\n--- last log lines ---\n" + "\n".join(tail) if tail else ""))
        self.returncode = returncode
        self.log_path = log_path
        self.tail = tail


@dataclass(frozen=True)
class _Host:
    name: str
    rank: int
    process: subprocess.Popen


def hyperparameter_arguments(hyperparameters: Mapping[str, object]) -> list[str]:
    """``--name value`` pairs as SageMaker passes them (booleans true/false; None is not sent)."""
    args: list[str] = []
    for name, value in hyperparameters.items():
        if value is None:
            continue
        args += [f"--{name}", _hp_text(value)]
    return args


def _hp_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)
    return str(value)


def run_local_training(
    *,
    hyperparameters: Mapping[str, object],
    data_dir: Path,
    run_dir: Path,
    instance_count: int = 1,
    checkpoint_dir: Path | None = None,
    quiet: bool = False,
    timeout_s: float | None = None,
    channels: Mapping[str, Path] | None = None,
    submit_directory: str | None = None,
    network_isolation: bool = False,
    job_name: str | None = None,
    aws_environment: Mapping[str, str] | None = None,
) -> TrainingResult:
    """Train in local processes under the SageMaker container contract; returns the artifact.

    ``channels``: input channels besides ``training`` (name -> folder), seen at
    /opt/ml/input/data/<name>. ``submit_directory``: the job's ``sagemaker_submit_directory`` when it
    is a tarball inside the container (e.g. the code channel's); the code is then unpacked from it
    instead of built here. ``network_isolation``: the processes get no AWS endpoint, credentials or
    proxy. ``job_name``: the container's TRAINING_JOB_NAME. ``aws_environment``: the AWS settings a
    job that is not isolated gets (on the local target, the emulator's endpoint and credentials, as
    a SageMaker container gets its role's); none of this machine's own AWS settings reach a job."""
    data_dir, run_dir = Path(data_dir).resolve(), Path(run_dir)
    if not data_dir.is_dir():
        raise LaunchError(f"training data folder {data_dir} does not exist")
    if instance_count < 1:
        raise LaunchError(f"instance_count must be at least 1, not {instance_count}")
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "train.log"
    hosts = [f"algo-{i + 1}" for i in range(instance_count)]

    all_channels = {CHANNEL: data_dir, **{name: Path(path).resolve() for name, path in (channels or {}).items()}}
    for name, path in all_channels.items():
        if not path.is_dir():
            raise LaunchError(f"channel {name}: folder {path} does not exist")
    container = _Container(all_channels, job_name, network_isolation, dict(aws_environment or {}))

    with tempfile.TemporaryDirectory(prefix="sagegate-opt-ml-") as tmp:
        opt_ml = Path(tmp) / "opt" / "ml"
        _lay_out_tree(opt_ml, all_channels, checkpoint_dir, hyperparameters, hosts)
        module_dir = _install_code(opt_ml, submit_directory)
        # Simulated hosts talk over this machine's loopback: only a single host gets its own namespace.
        python = (network_namespace_command() if network_isolation and instance_count == 1 else []) or [sys.executable]
        args = [*python, ENTRY_POINT, *hyperparameter_arguments(hyperparameters)]
        port = _free_port() if instance_count > 1 else None
        processes = [
            _Host(host, rank, subprocess.Popen(
                args, cwd=opt_ml / "code",
                env=_container_env(opt_ml, hyperparameters, hosts, host, rank, port, container, module_dir),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True,
            ))
            for rank, host in enumerate(hosts)
        ]
        epochs = int(str(hyperparameters.get("epochs") or 0))
        returncode, tail, log_text = _follow(processes, log_path, epochs, quiet, timeout_s)
        if returncode != 0:
            reason = _failure_reason(opt_ml)
            what = "timed out" if returncode is None else f"exited with code {returncode}"
            raise TrainingFailed(f"local training {what}" + (f": {reason}" if reason else "") + f" (log: {log_path})",
                                 returncode=returncode, log_path=log_path, tail=tail)
        model_dir = opt_ml / "model"
        if not (model_dir / "model.json").is_file():
            raise TrainingFailed(f"training exited 0 but wrote no model.json in {model_dir}",
                                 returncode=0, log_path=log_path, tail=tail)
        # write_tar_gz renames a finished temporary file: run_dir never holds half an artifact.
        artifact = pack_directory(model_dir, run_dir / "model.tar.gz")
        metrics_file = opt_ml / "output" / "data" / "metrics.json"
        if metrics_file.is_file():
            shutil.copyfile(metrics_file, run_dir / "metrics.json")
        found = _metrics(model_dir, log_text)
    return TrainingResult(artifact=artifact, metrics=found, log_path=log_path)


@dataclass(frozen=True)
class _Container:
    """What a job's container is given besides its hyperparameters and hosts."""

    channels: Mapping[str, Path]  # name -> folder on this machine, "training" first
    job_name: str | None = None
    network_isolation: bool = False
    # AWS_* settings a job that is not isolated gets (the emulator's, on the local target).
    aws_environment: Mapping[str, str] = field(default_factory=dict)


def _lay_out_tree(opt_ml: Path, channels: Mapping[str, Path], checkpoint_dir: Path | None,
                  hyperparameters: Mapping[str, object], hosts: list[str]) -> None:
    for sub in ("input/data", "input/config", "model", "output/data", "output/intermediate", "code"):
        (opt_ml / sub).mkdir(parents=True, exist_ok=True)
    # SageMaker copies each channel in; a link gives the same view without copying the dataset.
    for name, path in channels.items():
        (opt_ml / "input" / "data" / name).symlink_to(path, target_is_directory=True)
    if checkpoint_dir is not None:
        # SageMaker syncs the checkpoint prefix continuously; a link is the local equivalent.
        Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
        (opt_ml / "checkpoints").symlink_to(Path(checkpoint_dir).resolve(), target_is_directory=True)
    # Without one, there is no /opt/ml/checkpoints, as in a job without a CheckpointConfig.
    config = opt_ml / "input" / "config"
    (config / "hyperparameters.json").write_text(json.dumps(
        {k: _hp_text(v) for k, v in hyperparameters.items() if v is not None}, indent=2))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": hosts[0], "hosts": hosts, "network_interface_name": "eth0"}))
    (config / "inputdataconfig.json").write_text(json.dumps(_input_data_config(channels)))


def _install_code(opt_ml: Path, submit_directory: str | None) -> Path:
    """/opt/ml/code as the training toolkit fills it; returns what the container calls module_dir.

    A ``sagemaker_submit_directory`` inside the container (the code channel's tarball) is unpacked
    from there: a missing tarball fails the job, as it does in SageMaker. Otherwise (an s3:// URI,
    fetched by the toolkit) the same bundle is built here."""
    if submit_directory is None or submit_directory.startswith("s3://"):
        safe_extract(build_source_bundle(opt_ml.parent / "bundle"), opt_ml / "code")
        return opt_ml / "code"
    inside = PurePosixPath(submit_directory)
    if not inside.is_relative_to(OPT_ML) or ".." in inside.parts:
        raise LaunchError(f"sagemaker_submit_directory {submit_directory!r} is neither s3:// nor under {OPT_ML}")
    tarball = opt_ml.joinpath(*inside.relative_to(OPT_ML).parts)
    if not tarball.is_file() or not tarfile.is_tarfile(tarball):
        raise LaunchError(f"sagemaker_submit_directory {submit_directory}: no source tarball there "
                          "(is the code channel in the job's InputDataConfig?)")
    safe_extract(tarball, opt_ml / "code")
    return tarball


@functools.cache
def network_namespace_command() -> list[str]:
    """A Python command that runs in a new network namespace with only its loopback up (arguments
    follow as for ``python``), or [] where this machine allows none (no ``unshare``, or user
    namespaces forbidden)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    for mapping in ("--map-current-user", "--map-root-user"):
        prefix = [unshare, "--user", mapping, "--net", "--", sys.executable, "-c", LOOPBACK_UP]
        try:
            if subprocess.run([*prefix, "-c", "pass"], capture_output=True, timeout=30).returncode == 0:
                return prefix
        except (OSError, subprocess.TimeoutExpired):
            continue
    return []


def _input_data_config(channels: Mapping[str, Path]) -> dict:
    return {name: {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
            for name in channels}


def isolated_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` as a network-isolated container sees it: no AWS_* variable (endpoints, credentials,
    profiles), no proxy, nothing naming an endpoint; boto3 finds no credentials anywhere."""
    endpoints = [v for k, v in env.items() if k.startswith("AWS_ENDPOINT_URL") and v]
    kept = {k: v for k, v in env.items()
            if not k.startswith("AWS_") and k.lower() not in PROXY_VARIABLES and not any(e in v for e in endpoints)}
    return {**kept, **NO_CREDENTIALS}


def without_local_aws(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without this machine's AWS settings (variables, profiles, credentials files): a job
    on the local target must never reach a real account with the developer's credentials."""
    return {**{k: v for k, v in env.items() if not k.startswith("AWS_")}, **NO_CREDENTIALS}


def _container_env(opt_ml: Path, hyperparameters: Mapping[str, object], hosts: list[str], host: str,
                   rank: int, port: int | None, container: _Container | None = None,
                   module_dir: Path | None = None) -> dict[str, str]:
    """The variables the SageMaker PyTorch training toolkit sets, for one (simulated) host."""
    container = container or _Container({CHANNEL: opt_ml / "input" / "data" / CHANNEL})
    module_dir = module_dir or opt_ml / "code"
    base = (isolated_environment(os.environ) if container.network_isolation
            else {**without_local_aws(os.environ), **container.aws_environment})
    inherited = {k: v for k, v in base.items() if not k.startswith("SM_") and k not in DISTRIBUTED_VARIABLES
                 and k != TRAINING_JOB_ENV}
    channel_dirs = {name: str(opt_ml / "input" / "data" / name) for name in container.channels}
    hps = {k: v for k, v in hyperparameters.items() if v is not None}
    num_cpus = max(1, (os.cpu_count() or 1) // len(hosts))  # simulated hosts share this machine
    resource = {"current_host": host, "hosts": hosts, "network_interface_name": "eth0"}
    paths = {
        "model_dir": str(opt_ml / "model"),
        "input_dir": str(opt_ml / "input"),
        "input_config_dir": str(opt_ml / "input" / "config"),
        "output_dir": str(opt_ml / "output"),
        "output_data_dir": str(opt_ml / "output" / "data"),
        "output_intermediate_dir": str(opt_ml / "output" / "intermediate"),
        "module_dir": str(module_dir),
    }
    training_env = {
        **paths,
        "additional_framework_parameters": {},
        "channel_input_dirs": channel_dirs,
        "current_host": host,
        "framework_module": "sagemaker_pytorch_container.training:main",
        "hosts": hosts,
        "hyperparameters": hps,
        "input_data_config": _input_data_config(container.channels),
        "is_master": rank == 0,
        "job_name": container.job_name or "sagegate-local",
        "log_level": 20,
        "master_hostname": hosts[0],
        "module_name": ENTRY_POINT.removesuffix(".py"),
        "network_interface_name": "eth0",
        "num_cpus": num_cpus,
        "num_gpus": 0,
        "resource_config": resource,
        "user_entry_point": ENTRY_POINT,
    }
    env: dict[str, str] = {
        **inherited,
        "PYTHONUNBUFFERED": "1",
        "SM_TRAINING_ENV": json.dumps(training_env),
        "SM_HPS": json.dumps(hps),
        "SM_USER_ARGS": json.dumps(hyperparameter_arguments(hyperparameters)),
        "SM_CHANNELS": json.dumps(list(channel_dirs)),
        **{f"SM_CHANNEL_{name.upper()}": path for name, path in channel_dirs.items()},
        "SM_HOSTS": json.dumps(hosts),
        "SM_CURRENT_HOST": host,
        "SM_NUM_GPUS": "0",
        "SM_NUM_CPUS": str(num_cpus),
        "SM_LOG_LEVEL": "20",
        "SM_NETWORK_INTERFACE_NAME": "eth0",
        "SM_USER_ENTRY_POINT": ENTRY_POINT,
        "SM_MODULE_NAME": ENTRY_POINT.removesuffix(".py"),
        "SM_FRAMEWORK_MODULE": str(training_env["framework_module"]),
        "SM_FRAMEWORK_PARAMS": "{}",
        "SM_RESOURCE_CONFIG": json.dumps(resource),
        "SM_INPUT_DATA_CONFIG": json.dumps(_input_data_config(container.channels)),
        **{f"SM_{k.upper()}": v for k, v in paths.items()},
        **{f"SM_HP_{k.upper()}": _hp_text(v) for k, v in hps.items()},
    }
    if container.job_name:
        env[TRAINING_JOB_ENV] = container.job_name  # SageMaker sets it in every training container
    if port is not None:
        # What torchrun (SageMaker's torch_distributed) sets: one process per host on CPU.
        env.update({"RANK": str(rank), "WORLD_SIZE": str(len(hosts)), "LOCAL_RANK": "0",
                    "LOCAL_WORLD_SIZE": "1", "GROUP_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
                    "MASTER_PORT": str(port)})
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _follow(hosts: list[_Host], log_path: Path, epochs: int, quiet: bool,
            timeout_s: float | None) -> tuple[int | None, list[str], str]:
    """Stream every process's output into train.log (and the console); returns (code, tail, log)."""
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
    readers = [threading.Thread(target=_pump, args=(h.name, h.process, lines), daemon=True) for h in hosts]
    for reader in readers:
        reader.start()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    kept: list[str] = []
    display = _ProgressDisplay(epochs, quiet)
    primary = hosts[0].name
    open_streams = len(hosts)
    failed: int | None = 0
    with log_path.open("w") as log, display:
        while open_streams:
            if deadline is not None and time.monotonic() > deadline:
                _stop(hosts)
                failed = None
                break
            try:
                host, line = lines.get(timeout=0.2)
            except queue.Empty:
                code = _first_failure(hosts)
                if code:  # a dead peer leaves the others blocked in a collective: stop them
                    _stop(hosts)
                continue
            if line is None:
                open_streams -= 1
                continue
            text = line.rstrip("\n")
            shown = text if len(hosts) == 1 else f"[{host}] {text}"
            log.write(shown + "\n")
            log.flush()
            tail.append(shown)
            kept.append(shown)
            display.line(shown, from_primary=host == primary)
    for h in hosts:
        try:
            h.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _stop([h])
            h.process.wait()
    if failed is not None:
        failed = _first_failure(hosts) or 0
    return failed, list(tail), "\n".join(kept)


def _pump(name: str, process: subprocess.Popen, lines: queue.Queue) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put((name, line))
    lines.put((name, None))


def _first_failure(hosts: list[_Host]) -> int:
    for h in hosts:
        code = h.process.poll()
        if code:
            return code
    return 0


def _stop(hosts: list[_Host]) -> None:
    for h in hosts:
        if h.process.poll() is None:
            try:
                os.killpg(h.process.pid, signal.SIGKILL)  # its own session: the trainer and its workers
            except ProcessLookupError:
                pass


def _failure_reason(opt_ml: Path) -> str:
    failure = opt_ml / "output" / "failure"
    return failure.read_text().strip().splitlines()[-1] if failure.is_file() and failure.read_text().strip() else ""


def _metrics(model_dir: Path, log_text: str) -> dict[str, float]:
    meta = json.loads((model_dir / "model.json").read_text())
    found = {k: float(v) for k, v in meta.get("metrics", {}).items() if isinstance(v, int | float)}
    if not found:
        parsed = parse_metric_lines(log_text)
        found = {name.lower().replace(" ", "_"): values[-1] for name, values in parsed.items()}
    return found


class _ProgressDisplay:
    """Epoch progress bar with the latest validation accuracy; log lines scroll above it."""

    def __init__(self, epochs: int, quiet: bool) -> None:
        self.quiet = quiet
        self.epochs = epochs
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.task = None

    def __enter__(self) -> _ProgressDisplay:
        if not self.quiet:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=Console(stderr=True), transient=False)
            self.progress.start()
            self.task = self.progress.add_task("training", total=self.epochs or None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def line(self, text: str, from_primary: bool) -> None:
        if self.progress is None or self.task is None:
            return
        self.progress.console.print(text, markup=False, highlight=False, style="dim")
        if not from_primary:
            return
        bare = text.split("] ", 1)[-1]
        epoch = EPOCH_LINE.match(bare)
        if epoch:
            self.progress.update(self.task, description=f"epoch {epoch.group(1)}/{epoch.group(2)}",
                                 total=int(epoch.group(2)), completed=int(epoch.group(1)) - 1)
        elif bare.startswith(VALIDATION_ACCURACY):
            self.progress.update(self.task, advance=1, description=f"training ({bare.lower()})")
        elif bare.startswith(TESTING_ACCURACY):
            self.progress.update(self.task, completed=self.progress.tasks[0].total or 0,
                                 description=f"done ({bare.lower()})")


def launch(run: TrainingRun) -> TrainingResult:
    """training=local: the stack's local job (its hyperparameters and instance count) on this machine."""
    job = run.job("local_training")
    if run.data_dir is None:
        raise LaunchError("the local launcher needs the data set on this machine")
    runner = run.local_runner or run_local_training
    return runner(hyperparameters=dict(job.request["HyperParameters"]), data_dir=run.data_dir, run_dir=run.run_dir,
                  instance_count=int(job.request["InstanceCount"]), quiet=run.quiet, timeout_s=run.timeout_s)
