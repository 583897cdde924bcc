"""Launchers run the shared training bundle somewhere: local processes, SageMaker, EC2.

Every launcher has one signature, ``launch(run: TrainingRun) -> TrainingResult``, and is found
by its ``training.launcher`` name in ``LAUNCHERS``. A launcher sends the stack's exact job
request (what the gate checked); what the job needs first (the stack's bucket and the roles the
job runs as) is put in place by the caller, so launchers never apply the stack themselves.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rich.console import Console

from runner.core.errors import UserError
from runner.core.settings import Settings
from runner.stack.model import JobSpec, Stack
from runner.targets import Target


class LaunchError(UserError):
    """A training run that failed, stopped, or could not be started."""


@dataclass
class TrainingResult:
    artifact: Path  # the model.tar.gz in run_dir
    metrics: dict[str, float]
    log_path: Path
    # Where a remote job left the artifact, and the job (or instance) that made it.
    artifact_uri: str | None = None
    job_name: str | None = None


class LocalRunner(Protocol):
    """``runner.launchers.local.run_local_training``'s signature (tests pass a torch-free fake)."""

    def __call__(self, *, hyperparameters: Mapping[str, object], data_dir: Path, run_dir: Path,
                 instance_count: int = 1, quiet: bool = False, timeout_s: float | None = None,
                 channels: Mapping[str, Path] | None = None, submit_directory: str | None = None,
                 network_isolation: bool = False, job_name: str | None = None,
                 aws_environment: Mapping[str, str] | None = None) -> TrainingResult: ...


@dataclass
class TrainingRun:
    settings: Settings
    stack: Stack
    run_dir: Path
    # The data set on this machine (None: a remote launcher reads it where the job's channel points).
    data_dir: Path | None
    # Where AWS calls go; None only for the local launcher, which makes none.
    target: Target | None = None
    console: Console | None = None
    # How jobs run when the target only records them (the emulator): the same bundle, here.
    local_runner: LocalRunner | None = None

    @property
    def quiet(self) -> bool:
        return self.settings.quiet

    @property
    def timeout_s(self) -> float:
        return float(self.settings.training.max_runtime)

    def job(self, *kinds: str) -> JobSpec:
        for job in self.stack.jobs:
            if job.kind in kinds:
                return job
        raise LaunchError(f"the stack has no {' or '.join(kinds)} job (training.launcher decides which)")


Launcher = Callable[[TrainingRun], TrainingResult]

# training.launcher -> the module whose ``launch`` runs it (imported when chosen: the local
# launcher must not pay for boto3, nor the gate for any launcher).
LAUNCHERS = {"local": "runner.launchers.local", "sagemaker": "runner.launchers.sagemaker",
             "ec2": "runner.launchers.ec2"}


def launcher_for(name: str) -> Launcher:
    launch: Launcher = importlib.import_module(LAUNCHERS[name]).launch
    return launch
