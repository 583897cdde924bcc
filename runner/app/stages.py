"""One function per stage. A stage never does the work of a later one.

Every stage that creates something builds the stack and runs the policy gate on exactly the
stack it will create: a finding at or above ``policy.fail_on`` returns exit code 1 before any
create call. ``all`` reads top to bottom in ``all_stages``: it gates the stack, trains, builds the
final stack around the trained artifact, gates that exact stack, applies it and smoke-tests it,
against one target, so the embedded emulator lives for the whole job.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from runner import deploy
from runner.app import invoke as invoking
from runner.app import plan_view
from runner.app.context import RunContext
from runner.app.report import print_run_report
from runner.app.training_data import local_data_dir, require_s3_data
from runner.core import cost
from runner.core.errors import EXIT_OK, UserError
from runner.core.names import ResourceNames
from runner.core.variants import variant_of
from runner.launchers import TrainingRun, launcher_for
from runner.stack.build import build_stack
from runner.stack.model import Stack
from runner.targets import Target, account_of, open_target, starts_empty
from runner.targets.dataplane import DataPlane
from runner.targets.request_log import RequestLog


class GateFailed(Exception):
    def __init__(self, exit_code: int):
        super().__init__(f"policy gate failed (exit {exit_code})")
        self.exit_code = exit_code


def gate(context: RunContext, stack: Stack) -> int:
    """Gate ``stack``: template.json, the policy reports and the run record describe exactly it."""
    from policies.gate import GateError, run_gate  # the gate's imports are paid only by gated stages
    from runner.app.sweep import checkov_cache_dir

    settings = context.settings
    _check_job_requests(stack)
    costs = stack.cost(settings.pricing)
    template = stack.template_json()
    (context.run_dir / "template.json").parent.mkdir(parents=True, exist_ok=True)
    (context.run_dir / "template.json").write_bytes(template)
    spinner = (contextlib.nullcontext() if settings.quiet or context.console.quiet or not settings.policy.checkov.enabled
               else context.console.status("policy gate: native rules and checkov on the rendered template"))
    try:
        with spinner:
            # In a sweep, checkov ran once for every job up front (runner/app/sweep.py): reuse its answers.
            result = run_gate(settings, stack, costs, context.run_dir, context.console,
                              checkov_cache_dir=checkov_cache_dir())
    except GateError as exc:
        raise UserError(f"policy gate could not run: {exc}") from None
    top = result.top_finding()
    context.result["gate"] = {
        "verdict": result.verdict,
        "fail_on": settings.policy.fail_on,
        "counts": result.counts,
        "top_finding": f"{top.rule_id} {top.resource}: {top.message}" if top else None,
        "template_sha256": hashlib.sha256(template).hexdigest(),
    }
    context.result["cost"] = costs.as_dict()
    if result.simulation is not None:  # an SLO is set: the day the gate judged, for sweep rows
        context.result["simulation"] = result.simulation
        context.result["slo"] = {"p99_ms": settings.slo.p99_ms, "error_rate": settings.slo.error_rate}
    return result.exit_code


def _check_job_requests(stack: Stack) -> None:
    """The stack's job requests are sent as they are: refuse, before anything runs, one the service
    model says AWS would refuse (exit 2). botocore's models: paid only by stacks that send a job."""
    if any(job.api for job in stack.jobs):
        from runner.targets.request_validation import check_job_requests

        check_job_requests(stack)


def _gated(context: RunContext, stack: Stack) -> Stack:
    if (code := gate(context, stack)) != EXIT_OK:
        raise GateFailed(code)
    return stack


@contextlib.contextmanager
def _target(context: RunContext, target: Target | None = None) -> Iterator[Target]:
    """The run's target; every request sent through it is written to requests.jsonl at the end."""
    if target is not None:
        yield target
        return
    log = RequestLog()
    with open_target(context.settings) as opened:
        log.attach(opened)
        try:
            yield opened
        finally:
            log.write(context.run_dir / "requests.jsonl")


# -- check and plan ----------------------------------------------------------------------------
def check(context: RunContext) -> int:
    settings = context.settings
    return gate(context, build_stack(settings, account=account_of(settings), run_id=context.run_id))


def plan(context: RunContext) -> int:
    settings = context.settings
    with contextlib.nullcontext() if starts_empty(settings) else _target(context) as target:
        account = target.account if target is not None else account_of(settings)
        stack = build_stack(settings, account=account, model_data_url=_deployed_model_url(context, target),
                            run_id=context.run_id)
        costs = stack.cost(settings.pricing)
        plan_view.print_plan(context.console, stack, costs)
        if target is None:
            # The embedded emulator starts empty on every run: everything would be created.
            changes = [{"action": "create", "logical_id": r.logical_id, "type": r.type, "name": r.physical_name}
                       for r in stack.resources]
            live: list[tuple[str, dict[str, Any]]] = []
        else:
            planned = deploy.plan_changes(stack, target)
            changes = [c.as_dict() for c in planned]
            live = [(c.type, {**c.live.key, **c.live.state}) for c in planned if c.live is not None]
    current = cost.estimate(live, [], settings.pricing)
    delta = {"live": (current.monthly_min, current.monthly_max), "planned": (costs.monthly_min, costs.monthly_max)}
    delta["delta"] = (round(costs.monthly_min - current.monthly_min, 2), round(costs.monthly_max - current.monthly_max, 2))
    context.write_json("plan.json", {**stack.to_plan(), "cost": costs.as_dict(), "changes": changes,
                                     "cost_delta": delta})
    _write_deployer_policy(context, stack)
    plan_view.print_changes(context.console, changes, live=target is not None)
    context.console.print(f"  monthly cost: live ${current.monthly_min:,.2f}..${current.monthly_max:,.2f} → planned "
                          f"${costs.monthly_min:,.2f}..${costs.monthly_max:,.2f} "
                          f"({delta['delta'][0]:+,.2f}..{delta['delta'][1]:+,.2f} at min..max capacity)")
    context.result["changes"] = {a: sum(1 for c in changes if c["action"] == a)
                                 for a in ("create", "update", "replace", "delete", "no-change")}
    code = gate(context, stack)
    if code == EXIT_OK and target is None:
        _rehearse(context, stack)
    context.console.print(f"plan.json, template.json and deployer-policy.json written to {context.run_dir}")
    return code


def _write_deployer_policy(context: RunContext, stack: Stack) -> None:
    """deployer-policy.json: what the identity running the deploy must be allowed (policies/deployer_policy.py)."""
    from policies.deployer_policy import deployer_policy

    policy = deployer_policy(stack, delete_artifacts=context.settings.destroy.delete_artifacts)
    context.write_json("deployer-policy.json", policy)
    context.result["deployer_policy"] = {"file": "deployer-policy.json", "statements": len(policy["Statement"])}


def _rehearse(context: RunContext, stack: Stack) -> None:
    """On a target that starts empty, a deploy creates everything and the jobs are sent as they are:
    send exactly that to this run's own emulator, so requests.jsonl holds every request the deploy
    and the training stage will send, each checked by the service model and by AWS's rules (a
    refused one stops the plan with exit 2, naming its config key). Nothing outlives the run."""
    if not context.settings.quiet:
        context.console.print("  rehearsing the deploy on this run's emulator (requests.jsonl)", highlight=False)
    with _target(context) as target:
        deploy.apply(stack, target)
        for job in stack.jobs:
            if job.api:
                service, _, operation = job.api.partition(":")
                _send(target, service, operation, job.request, job.config_key)
    sent = sum(1 for _ in (context.run_dir / "requests.jsonl").open())
    context.result["requests"] = sent
    context.console.print(f"  requests.jsonl: the {sent} requests a deploy sends, each accepted", highlight=False)


def _send(target: Target, service: str, operation: str, request: dict[str, Any], config_key: str) -> None:
    from botocore import xform_name
    from botocore.exceptions import ClientError

    try:
        getattr(target.client(service), xform_name(operation))(**request)
    except ClientError as exc:
        raise UserError(f"{operation} would be refused: {exc} (set by config key {config_key})") from None


def _deployed_model_url(context: RunContext, target: Target | None) -> str | None:
    """The artifact a plan should compare against: the last one trained for this stack, if any."""
    artifact = _saved_artifact(context)
    if artifact is None or target is None:
        return None
    return deploy.artifact_uri(ResourceNames.for_settings(context.settings, target.account), artifact)


# -- train -------------------------------------------------------------------------------------
def _state_dir(context: RunContext) -> Path:
    return Path(context.settings.workdir) / context.settings.name


def _saved_artifact(context: RunContext) -> Path | None:
    path = _state_dir(context) / "model.tar.gz"
    return path if path.is_file() else None


def train_model(context: RunContext, stack: Stack, target: Target | None = None) -> Path:
    """Run the configured launcher on the gated stack's job; keep the artifact for the deploy stage."""
    settings = context.settings
    name = settings.training.launcher
    launch = launcher_for(name)
    if name == "local":
        result = launch(TrainingRun(settings, stack, context.run_dir, local_data_dir(settings, target),
                                    console=context.console))
    else:
        with _target(context, target) as opened:
            require_s3_data(settings, opened)
            # What the job needs first: the stack's bucket and the roles it runs as.
            deploy.ensure_bucket(opened, stack.names)
            deploy.apply_only(stack, opened, stack.job_role_ids(), console=context.console)
            # Data on this machine is uploaded to the stack's data prefix; s3:// data stays where it is.
            data_dir = None if settings.data.source.startswith("s3://") else local_data_dir(settings, opened)
            result = launch(TrainingRun(settings, stack, context.run_dir, data_dir, opened, context.console))
    state = _state_dir(context)
    state.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(result.artifact, state / "model.tar.gz")
    context.result["training"] = {"launcher": name, "metrics": result.metrics,
                                  "artifact": str(result.artifact), "log": str(result.log_path)}
    return result.artifact


def train(context: RunContext) -> int:
    try:
        settings = context.settings
        stack = _gated(context, build_stack(settings, account=account_of(settings), run_id=context.run_id))
    except GateFailed as failed:
        return failed.exit_code
    train_model(context, stack)
    return EXIT_OK


# -- deploy, invoke, destroy -------------------------------------------------------------------
def final_stack(context: RunContext, target: Target, artifact: Path) -> Stack:
    """The stack that will be created: the configuration around this exact artifact."""
    names = ResourceNames.for_settings(context.settings, target.account)
    return build_stack(context.settings, account=target.account, model_data_url=deploy.artifact_uri(names, artifact),
                       run_id=context.run_id)


def deploy_stack(context: RunContext, target: Target, stack: Stack, artifact: Path) -> None:
    """Upload the artifact and apply the (already gated) stack."""
    settings = context.settings
    context.write_json("plan.json", {**stack.to_plan(), "cost": stack.cost(settings.pricing).as_dict()})
    report = deploy.deploy(stack, target, artifact, rollback=settings.apply.rollback, console=context.console)
    if not (report.created or report.updated or report.deleted):
        context.console.print(f"no changes: stack {settings.name} is up to date", markup=False)
    context.result["deploy"] = {**report.as_dict(), **_deployed_summary(stack)}


def _deployed_summary(stack: Stack) -> dict[str, Any]:
    summary: dict[str, Any] = {"endpoint": stack.names.endpoint_name, "function": stack.names.function_name}
    variants = stack.resource("EndpointConfig").properties["ProductionVariants"]
    bounds = {variant_of(t.properties["ResourceId"]): t.properties
              for t in stack.find("AWS::ApplicationAutoScaling::ScalableTarget")}
    summary["variants"] = [{**{k: v[k] for k in ("VariantName", "InstanceType", "InitialInstanceCount",
                                                  "InitialVariantWeight") if k in v},
                            **({"autoscaling": {"min": bounds[v["VariantName"]]["MinCapacity"],
                                                "max": bounds[v["VariantName"]]["MaxCapacity"]}}
                               if v["VariantName"] in bounds else {})}
                           for v in variants]
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


def deploy_stage(context: RunContext) -> int:
    artifact = _artifact_for_deploy(context)
    with _target(context) as target:
        try:
            stack = _gated(context, final_stack(context, target, artifact))
        except GateFailed as failed:
            return failed.exit_code
        deploy_stack(context, target, stack, artifact)
        _serve_if_asked(context, target, stack, artifact)
    return EXIT_OK


def invoke(context: RunContext) -> int:
    settings = context.settings
    with _target(context) as target:
        samples = invoking.samples(context, (lambda: local_data_dir(settings)) if settings.image is None else None)
        caller = invoking.function_caller(settings, target)
        context.result["predictions"] = invoking.run(context, caller, samples,
                                                     invoking.refusals_from_now(settings, target))
    return EXIT_OK


def destroy(context: RunContext) -> int:
    with _target(context) as target:
        report = deploy.destroy(context.settings, target, delete_artifacts=context.settings.destroy.delete_artifacts,
                                console=context.console)
    context.result["destroy"] = report.as_dict()
    deleted = len(report.deleted)
    context.console.print(f"destroyed {deleted} resource{'s' if deleted != 1 else ''} of stack "
                          f"{context.settings.name}" + (f"; kept {', '.join(report.kept)}" if report.kept else ""),
                          markup=False)
    return EXIT_OK


def _serve_if_asked(context: RunContext, target: Target, stack: Stack, artifact: Path, plane: DataPlane | None = None) -> None:
    if context.settings.serve:
        invoking.serve_forever(context, target, stack, artifact, plane)


# -- the whole job -----------------------------------------------------------------------------
def all_stages(context: RunContext) -> int:
    """check → train → gate the final stack → deploy exactly it → smoke test through the function."""
    settings = context.settings
    with _target(context) as target:
        try:
            stack = _gated(context, build_stack(settings, account=target.account, run_id=context.run_id))
            artifact = train_model(context, stack, target)
            stack = _gated(context, final_stack(context, target, artifact))
        except GateFailed as failed:
            return failed.exit_code
        deploy_stack(context, target, stack, artifact)
        with invoking.data_plane(context, target, stack, artifact) as plane:
            samples = invoking.samples(context, lambda: local_data_dir(settings, target))
            caller = invoking.function_caller(settings, target, plane)
            context.result["predictions"] = invoking.run(context, caller, samples, plane.refused if plane else None)
            print_run_report(context)
            _serve_if_asked(context, target, stack, artifact, plane)
    return EXIT_OK


def simulate_stage(context: RunContext) -> int:
    from runner.app.simulate import simulate_stage as simulate  # scipy: paid by stage=simulate only

    return simulate(context)


STAGES: dict[str, Callable[[RunContext], int]] = {
    "check": check,
    "plan": plan,
    "simulate": simulate_stage,
    "train": train,
    "deploy": deploy_stage,
    "invoke": invoke,
    "destroy": destroy,
    "all": all_stages,
}
