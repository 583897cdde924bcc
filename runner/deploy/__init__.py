"""Deploy: make an account match a stack, and take it away again.

planner (``planner.plan_changes``: read live, diff, order) → executor (``executor.apply``: one
driver per kind, journal, rollback) → sweeper (``sweeper``: what is no longer declared, and
``destroy``); ``storage`` holds the stack's bucket, artifacts and function code. A dry run
(``stage=plan``) is the planner alone.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from runner.deploy.executor import ApplyError, ApplyReport, apply, apply_only
from runner.deploy.planner import Change, plan_changes
from runner.deploy.storage import artifact_uri, ensure_bucket, upload_artifact, upload_function_code
from runner.deploy.sweeper import DestroyReport, destroy
from runner.stack.model import Stack
from runner.targets import Target


def deploy(stack: Stack, target: Target, artifact: Path, *, rollback: bool = True,
           console: Console | None = None) -> ApplyReport:
    """The whole deploy: the artifact the stack names in place, then the stack applied."""
    ensure_bucket(target, stack.names)
    uploaded = upload_artifact(target, stack.names, artifact)
    if uploaded != stack.model_data_url:
        raise ValueError(f"the stack names {stack.model_data_url}, the artifact is {uploaded}: build it from "
                         "this artifact (runner.deploy.artifact_uri)")
    return apply(stack, target, rollback=rollback, console=console)


__all__ = ["ApplyError", "ApplyReport", "Change", "DestroyReport", "apply", "apply_only", "artifact_uri", "deploy",
           "destroy", "ensure_bucket", "plan_changes", "upload_artifact", "upload_function_code"]
