"""One function per stage. A stage never does the work of a later one.

Every stage builds the stack and runs the policy gate first; a finding at or above
``policy.fail_on`` returns exit code 1 before any create call. ``all`` runs check, train, deploy
and invoke against one target, so the embedded emulator lives for the whole job.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.app import plan_view
from runner.app.context import RunContext
from runner.core import cost
from runner.core.errors import EXIT_OK, UserError
from runner.core.names import LOCAL_ACCOUNT
from runner.stack.build import build_stack
from runner.stack.jobs import hyperparameters
from runner.stack.model import Stack


@dataclass
class Gated:
    stack: Stack
    costs: cost.CostSummary
    exit_code: int


def _checkov_cache_dir(context: RunContext) -> Path | None:
    """In a sweep, checkov ran once for every job up front (runner/sweep.py): reuse its answers."""
    from runner.app.sweep import checkov_cache_dir

    return checkov_cache_dir()


def gate(context: RunContext, stack: Stack) -> Gated:
    from policies.gate import GateError, run_gate

    costs = cost.estimate(context.settings)
    context.write_json("template.json", stack.template())
    spinner = (contextlib.nullcontext() if context.settings.quiet or not context.settings.policy.checkov.enabled
               else context.console.status("policy gate: native rules and checkov on the rendered template"))
    try:
        with spinner:
            result = run_gate(context.settings, stack, costs, context.run_dir,
                              context.console, checkov_cache_dir=_checkov_cache_dir(context))
    except GateError as exc:
        raise UserError(f"policy gate could not run: {exc}") from None
    top = result.top_finding()
    context.result["gate"] = {
        "verdict": result.verdict,
        "fail_on": context.settings.policy.fail_on,
        "counts": result.counts,
        "top_finding": f"{top.rule_id} {top.resource}: {top.message}" if top else None,
    }
    context.result["cost"] = costs.as_dict()
    return Gated(stack, costs, result.exit_code)


@contextlib.contextmanager
def _target(context: RunContext, target: Any = None) -> Iterator[Any]:
    if target is not None:
        yield target
        return
    from runner.targets import open_target

    with open_target(context.settings) as opened:
        yield opened


def _account(context: RunContext) -> str:
    from runner.targets import account_for

    return account_for(context.settings) if context.settings.target.kind == "aws" else LOCAL_ACCOUNT


# -- check and plan ----------------------------------------------------------------------------
def check(context: RunContext) -> int:
    stack = build_stack(context.settings, account=_account(context))
    return gate(context, stack).exit_code


def plan(context: RunContext) -> int:
    settings = context.settings
    embedded = settings.target.kind == "local" and not settings.target.endpoint_url
    with contextlib.nullcontext() if embedded else _target(context) as target:
        account = target.account if target is not None else LOCAL_ACCOUNT
        stack = build_stack(settings, account=account, model_data_url=_deployed_model_url(context, target))
        costs = cost.estimate(settings)
        context.write_json("plan.json", {**stack.to_plan(), "cost": costs.as_dict()})
        plan_view.print_plan(context.console, stack, costs)
        if target is None:
            # The embedded emulator starts empty on every run: everything would be created.
            changes = [{"action": "create", "logical_id": r.logical_id, "type": r.type, "name": r.physical_name}
                       for r in stack.resources]
            live_resources: list[tuple[str, dict]] = []
        else:
            from runner.deploy.apply import plan_changes

            planned = plan_changes(stack, target)
            changes = [c.as_dict() for c in planned]
            live_resources = [(c.type, c.live.state) for c in planned if c.live is not None]
    delta = _cost_delta(settings, stack, live_resources)
    context.write_json("plan.json", {**stack.to_plan(), "cost": costs.as_dict(), "changes": changes,
                                     "cost_delta": delta})
    plan_view.print_changes(context.console, changes, live=target is not None)
    context.console.print(f"  monthly cost: live ${delta['live'][0]:,.2f}..${delta['live'][1]:,.2f} → planned "
                          f"${delta['planned'][0]:,.2f}..${delta['planned'][1]:,.2f} "
                          f"({delta['delta'][0]:+,.2f}..{delta['delta'][1]:+,.2f} at min..max capacity)")
    context.result["changes"] = {a: sum(1 for c in changes if c["action"] == a)
                                 for a in ("create", "update", "replace", "delete", "no-change")}
    code = gate(context, stack).exit_code
    context.console.print(f"plan.json and template.json written to {context.run_dir}")
    return code


def _cost_delta(settings, stack: Stack, live: list[tuple[str, dict]]) -> dict[str, tuple[float, float]]:
    planned = cost.resources_monthly_range([(r.type, r.properties) for r in stack.resources], settings.pricing)
    current = cost.resources_monthly_range(live, settings.pricing)
    return {"live": current, "planned": planned,
            "delta": (round(planned[0] - current[0], 2), round(planned[1] - current[1], 2))}


def _deployed_model_url(context: RunContext, target: Any) -> str | None:
    """The artifact a plan should compare against: the last one trained for this stack, if any."""
    artifact = _saved_artifact(context)
    if artifact is None or target is None:
        return None
    from runner.core.names import ResourceNames
    from runner.deploy.apply import artifact_uri

    return artifact_uri(ResourceNames.for_settings(context.settings, target.account), artifact)


# -- train -------------------------------------------------------------------------------------
def _state_dir(context: RunContext) -> Path:
    return Path(context.settings.workdir) / context.settings.name


def _saved_artifact(context: RunContext) -> Path | None:
    path = _state_dir(context) / "model.tar.gz"
    return path if path.is_file() else None


def local_data_dir(context: RunContext, target: Any = None) -> Path:
    """The ImageFolder tree on this machine: the built-in digits, a local path, or S3 synced down."""
    source = context.settings.data.source
    if source == "builtin:digits":
        from training.datasets.digits import ensure_digits

        return ensure_digits(Path(context.settings.workdir) / "data", context.settings.data.image_size)
    if source.startswith("builtin:"):
        raise UserError(f"data.source: unknown built-in data set {source!r}; known: builtin:digits")
    if source.startswith("s3://"):
        from training.s3sync import sync_s3_prefix

        with _target(context, target) as opened, _child_aws_environment(opened.child_env()):
            _require_s3_data(context.settings, opened)
            return sync_s3_prefix(source, Path(context.settings.workdir) / "data" / "s3")
    path = Path(source).expanduser()
    if not path.is_dir():
        raise UserError(f"data.source: {path} is not a folder (expected train/ valid/ test/ inside)")
    return path


def _require_s3_data(settings: Any, target: Any) -> None:
    """An s3:// data set must hold objects before a launcher creates roles and jobs for it."""
    source = settings.data.source
    if not source.startswith("s3://"):
        return
    from botocore.exceptions import ClientError

    bucket, _, prefix = source[len("s3://"):].partition("/")
    try:
        found = target.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix.strip("/") + "/", MaxKeys=1)
    except ClientError as exc:
        found = {"error": exc.response.get("Error", {}).get("Code", str(exc))}
    if not found.get("KeyCount"):
        where = "the local emulator's S3 starts empty: use data=digits or a local folder" \
            if target.kind == "local" else "point data.source at your train/ valid/ test/ tree"
        reason = found.get("error", "no objects")
        raise UserError(f"data.source: {source} cannot be read ({reason}); {where}")


@contextlib.contextmanager
def _child_aws_environment(env: dict[str, str]) -> Iterator[None]:
    """boto3 default clients (training's S3 sync) see the target for the duration of the block."""
    import os

    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def train_model(context: RunContext, stack: Stack, target: Any = None) -> Path:
    """Run the configured launcher; keep the artifact for the deploy stage; return its path."""
    settings = context.settings
    launcher = settings.training.launcher
    if launcher == "local":
        from runner.launchers.local import LauncherError, run_local_training

        try:
            result = run_local_training(
                hyperparameters=dict(hyperparameters(settings)),
                data_dir=local_data_dir(context, target),
                run_dir=context.run_dir,
                instance_count=settings.training.instance_count,
                quiet=settings.quiet,
                timeout_s=float(settings.training.max_runtime),
            )
        except LauncherError as exc:
            raise UserError(str(exc)) from None
    else:
        from runner.launchers import ec2, sagemaker

        launch = sagemaker.run if launcher == "sagemaker" else ec2.run
        with _target(context, target) as opened:
            _require_s3_data(settings, opened)
            # Data on this machine is uploaded to the stack's data prefix; s3:// data stays where it is.
            data_dir = None if settings.data.source.startswith("s3://") else local_data_dir(context, opened)
            result = launch(settings, stack, opened, context.run_dir, data_dir=data_dir, console=context.console,
                            quiet=settings.quiet, timeout_s=float(settings.training.max_runtime))
    state = _state_dir(context)
    state.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(result.artifact, state / "model.tar.gz")
    context.result["training"] = {"launcher": launcher, "metrics": result.metrics,
                                  "artifact": str(result.artifact), "log": str(result.log_path)}
    return result.artifact


def train(context: RunContext) -> int:
    stack = build_stack(context.settings, account=_account(context))
    if (code := gate(context, stack).exit_code) != EXIT_OK:
        return code
    train_model(context, stack)
    return EXIT_OK


# -- deploy, invoke, destroy -------------------------------------------------------------------
def deploy_stack(context: RunContext, target: Any, artifact: Path, *, gated: bool) -> Stack:
    """Upload the artifact and apply the stack (after the gate, unless this run already passed it)."""
    from runner.core.names import ResourceNames
    from runner.deploy.apply import apply, artifact_uri, ensure_bucket, upload_artifact, upload_function_code

    settings = context.settings
    names = ResourceNames.for_settings(settings, target.account)
    stack = build_stack(settings, account=target.account, model_data_url=artifact_uri(names, artifact))
    if not gated and (code := gate(context, stack).exit_code) != EXIT_OK:
        raise GateFailed(code)
    context.write_json("plan.json", {**stack.to_plan(), "cost": cost.estimate(settings).as_dict()})
    context.write_json("template.json", stack.template())
    ensure_bucket(target, names)
    upload_artifact(target, names, artifact)
    upload_function_code(target, stack)
    report = apply(stack, target, rollback=settings.apply.rollback, console=context.console)
    if not (report.created or report.updated or report.deleted):
        context.console.print(f"no changes: stack {settings.name} is up to date")
    context.result["deploy"] = {**report.as_dict(), **_deployed_summary(stack)}
    return stack


class GateFailed(Exception):
    def __init__(self, exit_code: int):
        super().__init__(f"policy gate failed (exit {exit_code})")
        self.exit_code = exit_code


def _deployed_summary(stack: Stack) -> dict[str, Any]:
    summary: dict[str, Any] = {"endpoint": stack.names.endpoint_name, "function": stack.names.function_name}
    variant = stack.resource("EndpointConfig").properties["ProductionVariants"][0]
    summary["variant"] = {k: variant[k] for k in ("InstanceType", "InitialInstanceCount") if k in variant}
    for target in stack.find("AWS::ApplicationAutoScaling::ScalableTarget"):
        summary["autoscaling"] = {"min": target.properties["MinCapacity"], "max": target.properties["MaxCapacity"]}
    function = stack.resource("InvokeFunction").properties
    alias = stack.resource("InvokeFunctionAlias").properties
    summary["concurrency"] = {
        "reserved": function["ReservedConcurrentExecutions"],
        "provisioned": alias.get("ProvisionedConcurrencyConfig", {}).get("ProvisionedConcurrentExecutions", 0),
        "alias": alias["Name"],
    }
    return summary


def _artifact_for_deploy(context: RunContext) -> Path:
    artifact = _saved_artifact(context)
    if artifact is None:
        raise UserError(f"no trained model for stack {context.settings.name!r} in "
                        f"{_state_dir(context)}: run stage=train first (or the whole job: stage=all)")
    return artifact


def deploy(context: RunContext) -> int:
    artifact = _artifact_for_deploy(context)
    with _target(context) as target:
        try:
            stack = deploy_stack(context, target, artifact, gated=False)
        except GateFailed as failed:
            return failed.exit_code
        _serve_if_asked(context, target, stack, artifact)
    return EXIT_OK


def invoke(context: RunContext) -> int:
    from runner.app import invoke as invoking

    with _target(context) as target:
        samples = invoking.samples(context, local_data_dir if context.settings.image is None else None)
        caller = invoking.function_caller(context.settings, target)
        context.result["predictions"] = invoking.run(context, caller, samples)
    return EXIT_OK


def destroy(context: RunContext) -> int:
    from runner.deploy.apply import destroy as destroy_stack

    with _target(context) as target:
        report = destroy_stack(context.settings, target, delete_artifacts=context.settings.destroy.delete_artifacts,
                               console=context.console)
    context.result["destroy"] = report.as_dict()
    deleted = len(report.deleted)
    context.console.print(f"destroyed {deleted} resource{'s' if deleted != 1 else ''} of stack "
                          f"{context.settings.name}" + (f"; kept {', '.join(report.kept)}" if report.kept else ""))
    return EXIT_OK


def _serve_if_asked(context: RunContext, target: Any, stack: Stack, artifact: Path, plane: Any = None) -> None:
    if not context.settings.serve:
        return
    from runner.app import invoke as invoking

    invoking.serve_forever(context, target, stack, artifact, plane)


# -- the whole job -----------------------------------------------------------------------------
def all_stages(context: RunContext) -> int:
    from runner.app import invoke as invoking
    from runner.app.report import print_run_report

    settings = context.settings
    with _target(context) as target:
        stack = build_stack(settings, account=target.account)
        if (code := gate(context, stack).exit_code) != EXIT_OK:
            return code
        artifact = train_model(context, stack, target)
        stack = deploy_stack(context, target, artifact, gated=True)
        with invoking.data_plane(context, target, stack, artifact) as plane:
            samples = invoking.samples(context, local_data_dir)
            caller = invoking.function_caller(settings, target, plane)
            context.result["predictions"] = invoking.run(context, caller, samples)
            print_run_report(context)
            _serve_if_asked(context, target, stack, artifact, plane)
    return EXIT_OK


STAGES: dict[str, Callable[[RunContext], int]] = {
    "check": check,
    "plan": plan,
    "train": train,
    "deploy": deploy,
    "invoke": invoke,
    "destroy": destroy,
    "all": all_stages,
}
