"""The stages (runner/app/stages.py) on a RunContext: what each gates, writes, records and refuses.

Training is replaced by a fake launcher (the real one is tests/training/ and tests/e2e/); deploys
go to the session's emulator; checkov is off (tests/policies/checkov/ covers it), so the gate is
the native rules.
"""

from __future__ import annotations

import copy
import hashlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from rich.console import Console
from runner_helpers import inventory, settings_for

import policies.gate
from policies.model import GateError
from runner import deploy
from runner.app import stages
from runner.app.context import RunContext
from runner.app.report import report_lines
from runner.core.errors import EXIT_OK, EXIT_VIOLATIONS, UserError
from runner.core.names import LOCAL_ACCOUNT, ResourceNames
from runner.core.settings import Settings, Stage
from runner.core.variants import production_variants
from runner.launchers import TrainingResult, TrainingRun
from runner.stack.build import build_stack

NO_CHECKOV = "policy.checkov.enabled=false"
# The invoke function's role may do anything to anything in SageMaker: the gate refuses it (high).
INSECURE = 'iam.roles.lambda_invoke.scopes=[{service:sagemaker,actions:["*"],resources:["*"]}]'
# The wildcard replaces the function role's scopes, X-Ray's too: Lambda would refuse it (SG-AWS-007).
INSECURE_RULES = {"SG-IAM-001", "SG-IAM-003", "SG-AWS-007"}
ARTIFACT = b"a model artifact, as far as the stages can tell"


def _context(workdir: Path, run_dir: Path, name: str, *overrides: str) -> RunContext:
    settings = settings_for(name, NO_CHECKOV, *overrides)
    settings.workdir = str(workdir)  # never the user's .sagegate
    return RunContext(settings, run_dir, Console(record=True, width=200, highlight=False))


@pytest.fixture
def make_context(tmp_path: Path):
    runs = iter(range(100))

    def make(name: str, *overrides: str) -> RunContext:
        return _context(tmp_path / "work", tmp_path / f"run-{next(runs)}", name, *overrides)

    return make


def _report(context: RunContext) -> dict[str, Any]:
    return json.loads((context.run_dir / "policy" / "report.json").read_text())


def _save_artifact(context: RunContext, data: bytes = ARTIFACT) -> Path:
    """What stage=train leaves for stage=deploy."""
    path = Path(context.settings.workdir) / context.settings.name / "model.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


class FakeLauncher:
    """`launch(TrainingRun) -> TrainingResult` without torch: writes an artifact and a log."""

    def __init__(self) -> None:
        self.runs: list[TrainingRun] = []
        self.names: list[str] = []  # the launcher names asked for

    def launcher_for(self, name: str) -> FakeLauncher:
        self.names.append(name)
        return self

    def __call__(self, run: TrainingRun) -> TrainingResult:
        self.runs.append(run)
        run.run_dir.mkdir(parents=True, exist_ok=True)
        (run.run_dir / "model.tar.gz").write_bytes(ARTIFACT)
        (run.run_dir / "train.log").write_text("epoch 1\n")
        return TrainingResult(run.run_dir / "model.tar.gz", {"test_accuracy": 0.5, "best_valid_loss": 1.25},
                              run.run_dir / "train.log")


@pytest.fixture
def launcher(monkeypatch) -> FakeLauncher:
    fake = FakeLauncher()
    monkeypatch.setattr(stages, "launcher_for", fake.launcher_for)
    return fake


def test_there_is_a_stage_function_for_every_stage_the_config_accepts():
    assert set(stages.STAGES) == set(get_args(Stage))


# ---- check -----------------------------------------------------------------------------------------

def test_check_writes_the_template_whose_sha256_the_gate_records(make_context):
    context = make_context("stg-check")
    assert stages.check(context) == EXIT_OK
    template = (context.run_dir / "template.json").read_bytes()
    digest = hashlib.sha256(template).hexdigest()
    gate = context.result["gate"]
    assert gate["template_sha256"] == digest
    assert _report(context)["template_sha256"] == digest
    # ... and the template is the stack of these settings, for the local account.
    stack = build_stack(context.settings, account=LOCAL_ACCOUNT)
    assert template == stack.template_json()
    assert context.result["cost"] == stack.cost(context.settings.pricing).as_dict()
    report = _report(context)
    assert (gate["verdict"], gate["fail_on"]) == ("pass", context.settings.policy.fail_on)
    assert gate["counts"] == report["counts"] and report["verdict"] == "pass"


def test_check_exits_1_on_a_stack_the_policy_refuses(make_context):
    context = make_context("stg-check-bad", INSECURE)
    assert stages.check(context) == EXIT_VIOLATIONS
    gate = context.result["gate"]
    assert gate["verdict"] == "fail" and gate["counts"]["high"] >= 1
    report = _report(context)
    assert report["verdict"] == "fail" and report["exit_code"] == 1
    assert INSECURE_RULES <= {f["rule_id"] for f in report["findings"]}
    assert gate["top_finding"].split()[0] in INSECURE_RULES
    assert report["template_sha256"] == hashlib.sha256((context.run_dir / "template.json").read_bytes()).hexdigest()


def test_a_stricter_fail_on_turns_the_same_stack_into_a_failure(make_context):
    lenient = make_context("stg-fail-on", "endpoint=serverless")
    strict = make_context("stg-fail-on", "endpoint=serverless", "policy=strict")
    assert stages.check(lenient) == EXIT_OK
    assert stages.check(strict) == EXIT_VIOLATIONS
    assert strict.result["gate"]["fail_on"] == "medium"
    assert lenient.result["gate"]["template_sha256"] == strict.result["gate"]["template_sha256"]


def test_a_gate_that_cannot_decide_is_a_user_error(make_context, monkeypatch):
    def cannot(*args, **kwargs):
        raise GateError("checkov timed out after 600 s")

    monkeypatch.setattr(policies.gate, "run_gate", cannot)
    with pytest.raises(UserError, match=r"^policy gate could not run: checkov timed out after 600 s$"):
        stages.check(make_context("stg-gate-error"))


# ---- plan ------------------------------------------------------------------------------------------

def test_plan_on_the_embedded_target_would_create_everything(make_context):
    context = make_context("stg-plan")
    assert stages.plan(context) == EXIT_OK
    stack = build_stack(context.settings, account=LOCAL_ACCOUNT)
    costs = stack.cost(context.settings.pricing)
    plan = json.loads((context.run_dir / "plan.json").read_text())
    assert [(c["action"], c["logical_id"]) for c in plan["changes"]] == [("create", r.logical_id)
                                                                        for r in stack.resources]
    assert plan["cost_delta"] == {"live": [0.0, 0.0], "planned": [costs.monthly_min, costs.monthly_max],
                                  "delta": [costs.monthly_min, costs.monthly_max]}
    assert plan["cost"] == costs.as_dict() and plan["model_data_url"] == stack.model_data_url
    assert context.result["changes"] == {"create": len(stack.resources), "update": 0, "replace": 0, "delete": 0,
                                         "no-change": 0}
    assert context.result["gate"]["template_sha256"] == hashlib.sha256(stack.template_json()).hexdigest()
    # The deploying identity's own least-privilege policy (policies/deployer_policy.py), beside the plan.
    from policies.deployer_policy import deployer_policy

    written = json.loads((context.run_dir / "deployer-policy.json").read_text())
    assert written == deployer_policy(stack, delete_artifacts=context.settings.destroy.delete_artifacts)
    assert context.result["deployer_policy"]["statements"] == len(written["Statement"])
    text = context.console.export_text()
    assert "changes (the embedded emulator starts empty)" in text
    assert f"{len(stack.resources)} to create" in text
    assert f"monthly cost: live $0.00..$0.00 → planned ${costs.monthly_min:,.2f}..${costs.monthly_max:,.2f}" in text


def test_plan_writes_every_request_the_deploy_and_the_jobs_send(make_context):
    """The embedded emulator starts empty: the plan rehearses the whole deploy and the job requests on
    this run's own emulator, so requests.jsonl holds what stage=deploy and stage=train will send."""
    context = make_context("stg-plan-req", "training=sagemaker", "training.volume_kms_key_id=null")
    assert stages.plan(context) == EXIT_OK
    sent = [json.loads(line) for line in (context.run_dir / "requests.jsonl").read_text().splitlines()]
    operations = [e["operation"] for e in sent]
    for expected in ("CreateRole", "CreateModel", "CreateEndpointConfig", "CreateEndpoint", "CreateFunction",
                     "PublishVersion", "CreateAlias", "RegisterScalableTarget", "PutScalingPolicy",
                     "CreateTrainingJob"):
        assert expected in operations, expected
    [job] = [e for e in sent if e["operation"] == "CreateTrainingJob"]
    assert job["params"]["TrainingJobName"] == build_stack(context.settings, account=LOCAL_ACCOUNT,
                                                           run_id=context.run_id).jobs[0].request["TrainingJobName"]
    assert context.result["requests"] == len(sent)


def test_plan_stops_with_exit_2_when_the_rehearsal_is_refused(make_context):
    """A notebook subnet the account does not have passes the gate (only the account can tell) and is
    refused where AWS refuses it: when the request is sent (SG-AWS-009), naming the config key."""
    context = make_context("stg-plan-subnet", "notebook=t3_medium", "notebook.subnet_id=subnet-0123456789abcdef0",
                           "notebook.security_group_ids=[sg-0123456789abcdef0]")
    with pytest.raises(UserError, match=r"The subnet ID 'subnet-0123456789abcdef0' does not exist "
                                        r"\(set by config key notebook\)"):
        stages.plan(context)
    assert (context.run_dir / "plan.json").is_file() and (context.run_dir / "requests.jsonl").is_file()


def test_plan_of_a_refused_stack_still_shows_it_and_exits_1(make_context):
    context = make_context("stg-plan-bad", INSECURE)
    assert stages.plan(context) == EXIT_VIOLATIONS
    plan = json.loads((context.run_dir / "plan.json").read_text())
    assert plan["resources"] and context.result["gate"]["verdict"] == "fail"


# ---- train -----------------------------------------------------------------------------------------

def test_train_runs_the_launcher_on_the_gated_stack_and_keeps_the_artifact(make_context, launcher, tmp_path):
    data = tmp_path / "digits"
    (data / "train").mkdir(parents=True)
    context = make_context("stg-train", f"data.source={data}")
    assert stages.train(context) == EXIT_OK
    [run] = launcher.runs
    assert launcher.names == [context.settings.training.launcher] == ["local"]
    assert (run.run_dir, run.data_dir) == (context.run_dir, data)
    assert [j.kind for j in run.stack.jobs] == ["local_training"]
    assert run.stack.template_json() == (context.run_dir / "template.json").read_bytes()
    saved = Path(context.settings.workdir) / "stg-train" / "model.tar.gz"
    assert saved.read_bytes() == ARTIFACT
    assert context.result["training"] == {
        "launcher": "local", "metrics": {"test_accuracy": 0.5, "best_valid_loss": 1.25},
        "artifact": str(context.run_dir / "model.tar.gz"), "log": str(context.run_dir / "train.log")}
    assert context.result["gate"]["verdict"] == "pass"


def test_train_stops_at_the_gate(make_context, launcher):
    context = make_context("stg-train-bad", INSECURE)
    assert stages.train(context) == EXIT_VIOLATIONS
    assert launcher.runs == []
    assert not (Path(context.settings.workdir) / "stg-train-bad").exists()
    assert "training" not in context.result


# ---- deploy ----------------------------------------------------------------------------------------

def test_deploy_without_a_trained_model_names_stage_train(make_context):
    context = make_context("stg-untrained")
    with pytest.raises(UserError, match=r"no trained model for stack 'stg-untrained' in .*: run stage=train first"):
        stages.deploy_stage(context)
    assert "gate" not in context.result


def test_final_stack_names_the_artifacts_content_addressed_key(make_context, local_target, tmp_path):
    context = make_context("stg-final")
    first, second, copy_of_first = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz", tmp_path / "c" / "a.tar.gz"
    first.write_bytes(ARTIFACT)
    second.write_bytes(ARTIFACT + b"!")
    copy_of_first.parent.mkdir()
    copy_of_first.write_bytes(ARTIFACT)
    names = ResourceNames.for_settings(context.settings, local_target.account)
    stack = stages.final_stack(context, local_target, first)
    expected = f"s3://{names.bucket}/artifacts/model-{hashlib.sha256(ARTIFACT).hexdigest()[:16]}.tar.gz"
    assert stack.model_data_url == expected == deploy.artifact_uri(names, first)
    assert stack.resource("Model").properties["PrimaryContainer"]["ModelDataUrl"] == expected
    assert stack.account == local_target.account
    other = stages.final_stack(context, local_target, second)
    assert other.model_data_url != expected
    assert other.resource("Model").physical_name != stack.resource("Model").physical_name
    assert stages.final_stack(context, local_target, copy_of_first).template() == stack.template()


def test_deploy_of_a_refused_stack_creates_nothing(make_context, emulator_url, local_target, stack_name):
    context = make_context(stack_name, INSECURE, f"target.endpoint_url={emulator_url}")
    _save_artifact(context)
    assert stages.deploy_stage(context) == EXIT_VIOLATIONS
    assert "deploy" not in context.result and context.result["gate"]["verdict"] == "fail"
    assert inventory(local_target, stack_name) == set()
    buckets = {b["Name"] for b in local_target.client("s3").list_buckets()["Buckets"]}
    assert ResourceNames.for_settings(context.settings, local_target.account).bucket not in buckets


DEPLOYED = "stg-deployed"


@pytest.fixture(scope="module")
def deployed(emulator_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunContext]:
    """stage=deploy of a saved artifact on the session's emulator, once for the tests below."""
    root = tmp_path_factory.mktemp("deployed")
    context = _context(root / "work", root / "deploy", DEPLOYED, f"target.endpoint_url={emulator_url}")
    _save_artifact(context)
    code = stages.deploy_stage(context)
    assert code == EXIT_OK, context.console.export_text()
    yield context


def _again(deployed: RunContext, run: str, **changes: Any) -> RunContext:
    """A later run on the deployed stack's settings (and workdir)."""
    settings: Settings = copy.deepcopy(deployed.settings)
    for dotted, value in changes.items():
        group, key = dotted.split("__")
        setattr(getattr(settings, group), key, value)
    return RunContext(settings, deployed.run_dir.parent / run, Console(record=True, width=200, highlight=False))


def test_deploy_records_what_it_created(deployed):
    settings = deployed.settings
    result = deployed.result["deploy"]
    assert len(result["created"]) == len(build_stack(settings).resources) and result["updated"] == result["deleted"] == []
    assert (result["endpoint"], result["function"]) == (f"{DEPLOYED}-endpoint", f"{DEPLOYED}-invoke")
    f = settings.function
    assert result["variants"] == [{"VariantName": v.name, "InstanceType": v.instance_type,
                                   "InitialInstanceCount": v.initial_instance_count, "InitialVariantWeight": v.weight,
                                   "autoscaling": {"min": v.min_capacity, "max": v.max_capacity}}
                                  for v in production_variants(settings)]
    assert result["concurrency"] == {"reserved": f.reserved_concurrency, "provisioned": f.provisioned_concurrency,
                                     "alias": f.alias}


def test_deploy_applies_exactly_the_stack_it_gated(deployed, local_target):
    artifact = Path(deployed.settings.workdir) / DEPLOYED / "model.tar.gz"
    names = ResourceNames.for_settings(deployed.settings, local_target.account)
    template_bytes = (deployed.run_dir / "template.json").read_bytes()
    digest = hashlib.sha256(template_bytes).hexdigest()
    assert deployed.result["gate"]["template_sha256"] == digest == _report(deployed)["template_sha256"]
    model_data_url = deploy.artifact_uri(names, artifact)
    template = json.loads(template_bytes)
    assert template["Resources"]["Model"]["Properties"]["PrimaryContainer"]["ModelDataUrl"] == model_data_url
    live_model = local_target.client("sagemaker").describe_model(
        ModelName=template["Resources"]["Model"]["Properties"]["ModelName"])
    assert live_model["PrimaryContainer"]["ModelDataUrl"] == model_data_url
    bucket, _, key = model_data_url.removeprefix("s3://").partition("/")
    assert local_target.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read() == ARTIFACT
    assert json.loads((deployed.run_dir / "plan.json").read_text())["model_data_url"] == model_data_url


def test_the_run_report_reads_what_deploy_recorded(deployed):
    [v] = production_variants(deployed.settings)
    lines = report_lines(deployed.result)
    assert (f"endpoint   {DEPLOYED}-endpoint: {v.instance_type} x {v.initial_instance_count}, "
            f"autoscaling {v.min_capacity}..{v.max_capacity}") in lines
    created = len(deployed.result["deploy"]["created"])
    assert f"apply      {created} created, 0 updated, 0 deleted" in lines


def test_plan_against_the_deployed_stack_changes_nothing(deployed):
    context = _again(deployed, "plan-same")
    assert stages.plan(context) == EXIT_OK
    counts = context.result["changes"]
    assert counts["no-change"] == len(deployed.result["deploy"]["created"])
    assert counts["create"] == counts["update"] == counts["replace"] == counts["delete"] == 0
    plan = json.loads((context.run_dir / "plan.json").read_text())
    assert plan["cost_delta"]["delta"] == [0.0, 0.0]
    assert "changes against live state" in context.console.export_text()


def test_plan_of_a_larger_endpoint_prices_the_difference(deployed):
    settings = deployed.settings
    context = _again(deployed, "plan-bigger", autoscaling__max_capacity=settings.autoscaling.max_capacity + 1)
    assert stages.plan(context) == EXIT_OK
    plan = json.loads((context.run_dir / "plan.json").read_text())
    changed = {c["logical_id"]: c["action"] for c in plan["changes"] if c["action"] != "no-change"}
    assert changed == {"ScalableTarget": "update"}
    [v] = production_variants(settings)
    one_instance_month = round(settings.pricing.hosting[v.instance_type]
                               * settings.pricing.hours_per_month, 2)
    assert plan["cost_delta"]["delta"] == [0.0, one_instance_month]


def test_deploying_the_same_artifact_again_changes_nothing(deployed):
    context = _again(deployed, "deploy-again")
    assert stages.deploy_stage(context) == EXIT_OK
    result = context.result["deploy"]
    assert result["created"] == result["updated"] == result["deleted"] == []
    assert f"no changes: stack {DEPLOYED} is up to date" in context.console.export_text()


# ---- invoke and destroy ------------------------------------------------------------------------------

def test_invoke_without_a_served_function_says_how_to_serve_it(make_context, emulator_url, tmp_path):
    image = tmp_path / "digit.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    context = make_context("stg-invoke", f"target.endpoint_url={emulator_url}")
    context.settings.image = str(image)
    with pytest.raises(UserError, match=r"no local runtime runs stg-invoke-invoke"):
        stages.invoke(context)
    assert "predictions" not in context.result


def test_destroy_deletes_the_stacks_resources_and_says_how_many(make_context, emulator_url, local_target, stack_name):
    context = make_context(stack_name, f"target.endpoint_url={emulator_url}")
    stack = build_stack(context.settings, account=local_target.account)
    deploy.apply_only(stack, local_target, ["RoleLambdaInvoke", "RoleSagemakerExecution"])
    assert inventory(local_target, stack_name) == {f"role:{stack_name}-lambda-invoke",
                                                   f"role:{stack_name}-sagemaker-execution"}
    assert stages.destroy(context) == EXIT_OK
    assert sorted(context.result["destroy"]["deleted"]) == [f"AWS::IAM::Role {stack_name}-lambda-invoke",
                                                            f"AWS::IAM::Role {stack_name}-sagemaker-execution"]
    assert inventory(local_target, stack_name) == set()
    assert f"destroyed 2 resources of stack {stack_name}" in context.console.export_text()
    again = make_context(stack_name, f"target.endpoint_url={emulator_url}")
    assert stages.destroy(again) == EXIT_OK
    assert again.result["destroy"]["deleted"] == []
    assert f"destroyed 0 resources of stack {stack_name}" in again.console.export_text()


# ---- the whole job ---------------------------------------------------------------------------------

def test_all_stops_at_the_gate_before_training_or_creating_anything(make_context, launcher, emulator_url,
                                                                    local_target, stack_name):
    context = make_context(stack_name, INSECURE, f"target.endpoint_url={emulator_url}")
    assert stages.all_stages(context) == EXIT_VIOLATIONS
    assert launcher.runs == []
    assert context.result["gate"]["verdict"] == "fail"
    assert "training" not in context.result and "deploy" not in context.result
    assert inventory(local_target, stack_name) == set()


def test_a_local_target_url_nothing_answers_is_a_user_error(make_context):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    context = make_context("stg-no-emulator", f"target.endpoint_url=http://127.0.0.1:{port}")
    with pytest.raises(UserError, match=r"target.endpoint_url: no emulator answers"):
        stages.destroy(context)



def test_every_run_names_its_jobs_afresh(make_context):
    """SageMaker job names are unique in an account forever: two runs of one config send two names,
    each valid for the API (at most 63 characters; a tuning job's at most 32)."""
    names = []
    for _ in range(2):
        context = make_context("fresh-names", "training=sagemaker")
        assert stages.plan(context) == 0
        (job,) = json.loads((context.run_dir / "plan.json").read_text())["jobs"]
        names.append(job["request"]["TrainingJobName"])
        assert job["request"]["CheckpointConfig"]["S3Uri"].endswith(f"/checkpoints/{names[-1]}")
    assert names[0] != names[1]
    assert all(name.startswith("fresh-names-") and len(name) <= 63 for name in names)
    tuning = [make_context("fresh-names", "training=sagemaker", "hpo=sagemaker_tuner") for _ in range(2)]
    tuned = []
    for context in tuning:
        assert stages.plan(context) == 0
        (job,) = json.loads((context.run_dir / "plan.json").read_text())["jobs"]
        tuned.append(job["request"]["HyperParameterTuningJobName"])
    assert tuned[0] != tuned[1] and all(len(name) <= 32 for name in tuned)


def test_a_job_request_aws_would_refuse_stops_the_run_before_anything(make_context):
    """The training job's tags carry the stack's tags: a value SageMaker's TagValue pattern refuses
    stops plan (and every gated stage) with exit 2 before the gate, a target or a job. Settings
    refuse such a value first (tests/runner/core/test_settings_strict.py); the request check is
    the defence in depth behind them, so the value is put in after validation."""
    context = make_context("bad-job-tag", "training=sagemaker")
    context.settings.tags["owner"] = "ml-team!"
    with pytest.raises(UserError, match=r"CreateTrainingJob: Tags\[\d\]\.Value 'ml-team!' does not match"):
        stages.plan(context)
    assert not (context.run_dir / "policy" / "report.json").exists()
