"""The plan view (runner/app/plan_view.py): one description per resource kind and job kind, the
cost lines, and the two tables `stage=plan` prints."""

from __future__ import annotations

from dataclasses import replace

import pytest
from rich.console import Console
from runner_helpers import settings_for, stack_for

from runner.app.plan_view import cost_lines, describe, describe_job, print_changes, print_plan
from runner.core.cost import CostSummary
from runner.core.variants import production_variants
from runner.deploy.drivers import KIND_ORDER
from runner.stack.model import JobSpec, Resource

# Options whose stacks hold, between them, every resource kind and every job kind.
SM = ("training=sagemaker", "training.volume_kms_key_id=null")
TUNER = ("hpo=sagemaker_tuner", *SM)
NOTEBOOK = ("notebook=t3_medium", "notebook.subnet_id=subnet-0123456789abcdef0",
            "notebook.security_group_ids=[sg-0123456789abcdef0]")
EC2 = ("training=ec2",)


def _console() -> Console:
    return Console(record=True, width=200, highlight=False)


def _costs(**changes: float | None) -> CostSummary:
    base = CostSummary(
        price_snapshot="us-east-1 2026-10-01",
        endpoint_hourly_min=0.115, endpoint_hourly_initial=0.115, endpoint_hourly_max=0.345,
        endpoint_monthly_min=83.95, endpoint_monthly_initial=83.95, endpoint_monthly_max=251.85,
        provisioned_concurrency_monthly=5.48, notebook_monthly=0.0, training_job=0.0,
        training_job_spot=None, tuning_job=0.0, monthly_min=89.43, monthly_max=257.33,
    )
    return replace(base, **changes)


# ---- describe: one resource -------------------------------------------------------------------------

def test_a_role_names_its_trusted_service_every_statement_and_managed_policies():
    role = Resource("R", "AWS::IAM::Role", {
        "AssumeRolePolicyDocument": {"Statement": [{"Principal": {"Service": "lambda.amazonaws.com"}}]},
        "Policies": [{"PolicyDocument": {"Statement": [
            {"Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*"},
            {"Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": ["arn:a", "arn:b"]},
        ]}}],
        "ManagedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
    })
    assert describe(role).splitlines() == [
        "trusted by lambda.amazonaws.com",
        "s3:GetObject on 1 resource",
        "logs:CreateLogStream, logs:PutLogEvents on 2 resources",
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
    ]


def test_a_role_without_inline_policies_is_its_trust_alone():
    role = Resource("R", "AWS::IAM::Role", {
        "AssumeRolePolicyDocument": {"Statement": [{"Principal": {"Service": "ec2.amazonaws.com"}}]}})
    assert describe(role) == "trusted by ec2.amazonaws.com"


def test_the_built_roles_are_described_from_their_own_policies():
    stack = stack_for("pv-roles")
    invoke = describe(stack.resource("RoleLambdaInvoke")).splitlines()
    assert invoke[0] == "trusted by lambda.amazonaws.com"
    statements = stack.resource("RoleLambdaInvoke").properties["Policies"][0]["PolicyDocument"]["Statement"]
    assert len(invoke) == 1 + len(statements)
    assert "sagemaker:InvokeEndpoint on 1 resource" in invoke
    assert describe(stack.resource("RoleSagemakerExecution")).startswith("trusted by sagemaker.amazonaws.com\n")


def test_model_shows_the_image_tag_and_the_artifact():
    stack = stack_for("pv-model")
    props = stack.resource("Model").properties["PrimaryContainer"]
    image, data = describe(stack.resource("Model")).splitlines()
    assert "/" not in image and image == f"image {props['Image'].rsplit('/', 1)[1]}"
    assert data == f"data {stack.model_data_url}"


def test_endpoint_config_shows_each_variant_and_its_key():
    settings = settings_for("pv-config")
    [v] = production_variants(settings)
    assert describe(stack_for("pv-config").resource("EndpointConfig")).splitlines() == [
        f"{v.name}: {v.instance_type} x {v.initial_instance_count}",
        f"KMS {settings.endpoint.kms_key_id}",
    ]


def test_an_ab_test_endpoint_config_has_a_line_per_variant():
    settings = settings_for("pv-ab", "endpoint=ab_test")
    variants = production_variants(settings)
    assert len(variants) == 2
    assert describe(stack_for("pv-ab", "endpoint=ab_test").resource("EndpointConfig")).splitlines() == [
        *(f"{v.name}: {v.instance_type} x {v.initial_instance_count}" for v in variants),
        f"KMS {settings.endpoint.kms_key_id}",
    ]


def test_serverless_endpoint_config_shows_memory_and_concurrency_and_the_default_key():
    settings = settings_for("pv-serverless", "endpoint=serverless")
    lines = describe(stack_for("pv-serverless", "endpoint=serverless").resource("EndpointConfig")).splitlines()
    e = settings.endpoint
    [v] = production_variants(settings)
    assert lines == [f"{v.name}: serverless {e.serverless_memory_mb} MB, "
                     f"max concurrency {e.serverless_max_concurrency}", "KMS default"]


def test_two_variants_are_two_lines():
    config = Resource("EndpointConfig", "AWS::SageMaker::EndpointConfig", {"ProductionVariants": [
        {"VariantName": "Blue", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2},
        {"VariantName": "Green", "ServerlessConfig": {"MemorySizeInMB": 3072, "MaxConcurrency": 4}},
    ], "KmsKeyId": "alias/mine"})
    assert describe(config).splitlines() == ["Blue: ml.m5.large x 2", "Green: serverless 3072 MB, max concurrency 4",
                                             "KMS alias/mine"]


def test_endpoint_names_its_config():
    stack = stack_for("pv-endpoint")
    config = stack.resource("EndpointConfig").properties["EndpointConfigName"]
    assert describe(stack.resource("Endpoint")) == f"config {config}"


def test_autoscaling_shows_capacity_target_and_cooldowns():
    settings = settings_for("pv-scaling")
    stack = stack_for("pv-scaling")
    [v] = production_variants(settings)
    resource_id, capacity = describe(stack.resource("ScalableTarget")).splitlines()
    assert resource_id == f"endpoint/{stack.names.endpoint_name}/variant/{v.name}"
    assert capacity == f"capacity {v.min_capacity}..{v.max_capacity}"
    policy = stack.resource("ScalingPolicy").properties["TargetTrackingScalingPolicyConfiguration"]
    assert describe(stack.resource("ScalingPolicy")).splitlines() == [
        f"target {policy['TargetValue']:g} {policy['PredefinedMetricSpecification']['PredefinedMetricType']}",
        f"cooldowns in {policy['ScaleInCooldown']} s / out {policy['ScaleOutCooldown']} s",
    ]


def test_a_fractional_scaling_target_is_not_rounded_away():
    policy = Resource("P", "AWS::ApplicationAutoScaling::ScalingPolicy", {"TargetTrackingScalingPolicyConfiguration": {
        "TargetValue": 12.5, "PredefinedMetricSpecification": {"PredefinedMetricType": "M"},
        "ScaleInCooldown": 300, "ScaleOutCooldown": 60}})
    assert describe(policy) == "target 12.5 M\ncooldowns in 300 s / out 60 s"


def test_function_version_and_alias():
    settings = settings_for("pv-function")
    stack = stack_for("pv-function")
    f = settings.function
    assert describe(stack.resource("InvokeFunction")).splitlines() == [
        f"{f.runtime} {f.memory_size} MB timeout {f.timeout} s",
        f"reserved concurrency {f.reserved_concurrency}",
    ]
    assert describe(stack.resource("InvokeFunctionAlias")) == (
        f"alias {f.alias}, provisioned concurrency {f.provisioned_concurrency}")
    assert describe(stack.resource("InvokeFunctionVersion")) == (
        stack.resource("InvokeFunctionVersion").properties["Description"])


def test_an_alias_without_provisioned_concurrency_shows_zero():
    alias = Resource("A", "AWS::Lambda::Alias", {"Name": "live", "FunctionName": "f", "FunctionVersion": "1"})
    assert describe(alias) == "alias live, provisioned concurrency 0"


def test_notebook_shows_instance_root_internet_and_key():
    settings = settings_for("pv-notebook", *NOTEBOOK)
    notebook = stack_for("pv-notebook", *NOTEBOOK).resource("NotebookInstance")
    p = notebook.properties
    assert describe(notebook) == (f"{settings.notebook.instance_type}, root {p['RootAccess']}, "
                                  f"internet {p['DirectInternetAccess']}, KMS {p['KmsKeyId']}")
    bare = Resource("N", "AWS::SageMaker::NotebookInstance",
                    {"InstanceType": "ml.t3.medium", "RootAccess": "Enabled", "DirectInternetAccess": "Enabled"})
    assert describe(bare) == "ml.t3.medium, root Enabled, internet Enabled, KMS none"


def test_an_unknown_kind_has_no_description():
    assert describe(Resource("Q", "AWS::SQS::Queue", {"QueueName": "q"})) == ""


def _built_resource_of(kind: str) -> Resource:
    """The first resource of ``kind`` in the stacks of the default config and a few options."""
    for overrides in ((), NOTEBOOK, EC2, ("endpoint=serverless",)):
        for resource in stack_for("pv-kinds", *overrides).resources:
            if resource.type == kind:
                return resource
    raise AssertionError(f"no built stack holds a {kind}")


@pytest.mark.parametrize("kind", [
    pytest.param(cls.type, id=cls.type.replace("AWS::", "")) for cls in KIND_ORDER])
def test_every_kind_the_deploy_layer_knows_is_described(kind: str):
    assert describe(_built_resource_of(kind)).strip()


def test_the_instance_profile_names_its_role():
    profile = _built_resource_of("AWS::IAM::InstanceProfile")
    assert describe(profile) == f"for EC2 instances, as role {profile.properties['Roles'][0]}"


# ---- describe_job -------------------------------------------------------------------------------------

def test_local_training_job():
    settings = settings_for("pv-local")
    [job] = stack_for("pv-local").jobs
    t = settings.training
    hp = job.request["HyperParameters"]
    assert describe_job(job) == (f"local process x {job.request['InstanceCount']}: {hp['arch']} "
                                 f"@{hp['image_size']} px, {t.epochs} epochs")


def test_sagemaker_training_job_marks_spot():
    [job] = stack_for("pv-sm", *SM).jobs
    rc, sc = job.request["ResourceConfig"], job.request["StoppingCondition"]
    spot = " spot" if job.request.get("EnableManagedSpotTraining") else ""
    assert describe_job(job) == f"{rc['InstanceType']} x {rc['InstanceCount']}{spot}, max {sc['MaxRuntimeInSeconds']} s"
    on_demand = JobSpec("J", "training_job", "sagemaker:CreateTrainingJob", {
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600}})
    assert describe_job(on_demand) == "ml.m5.xlarge x 2, max 600 s"
    assert describe_job(replace(on_demand, request={**on_demand.request, "EnableManagedSpotTraining": True})) == (
        "ml.m5.xlarge x 2 spot, max 600 s")


def test_tuning_job_shows_limits_instances_and_objective():
    [job] = stack_for("pv-tuner", *TUNER).jobs
    cfg = job.request["HyperParameterTuningJobConfig"]
    rc = job.request["TrainingJobDefinition"]["ResourceConfig"]
    objective = cfg["HyperParameterTuningJobObjective"]
    assert describe_job(job) == (
        f"{cfg['ResourceLimits']['MaxNumberOfTrainingJobs']} jobs, {cfg['ResourceLimits']['MaxParallelTrainingJobs']} "
        f"parallel, {rc['InstanceType']} x {rc['InstanceCount']}, {objective['Type']} {objective['MetricName']}")


def test_ec2_run_shows_imds_termination_subnet_and_ami():
    [job] = stack_for("pv-ec2", *EC2).jobs
    assert describe_job(job).splitlines() == [
        f"{job.request['InstanceType']}, IMDSv2 {job.request['MetadataOptions']['HttpTokens']}, terminate on "
        "shutdown, no subnet",
        "AMI: ami-999844e0 (the emulator's Deep Learning AMI), PyTorch on the CPU",
        "[dim]ImageId ami-999844e0[/]"]


@pytest.mark.parametrize(("instance_type", "processor"), [("m5.xlarge", "CPU"), ("g4dn.xlarge", "GPU")])
def test_the_plan_shows_which_ami_an_ec2_run_boots_on_aws(instance_type, processor):
    [job] = stack_for("pv-ec2", *EC2, "target=aws", f"training.instance_type={instance_type}",
                      "training.ec2_subnet_id=subnet-0123456789abcdef0").jobs
    lines = describe_job(job).splitlines()
    assert lines[0].endswith("subnet-0123456789abcdef0")
    assert lines[1] == f"AMI: Deep Learning AMI PyTorch 2.10 (AL2023) via SSM, PyTorch on the {processor}"
    assert "resolve:ssm:/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.10" in lines[2]


def test_an_unknown_job_kind_has_no_description():
    assert describe_job(JobSpec("J", "batch_transform", None, {})) == ""


# ---- cost_lines -----------------------------------------------------------------------------------------

def test_cost_lines_of_an_endpoint_and_function_only():
    assert cost_lines(_costs()) == [
        "endpoint: $83.95/month at min capacity, $251.85/month at max ($0.345/h)",
        "provisioned concurrency: $5.48/month",
        "total: $89.43 to $257.33 per month (prices us-east-1 2026-10-01)",
    ]


def test_cost_lines_add_notebook_training_spot_and_tuning_when_present():
    lines = cost_lines(_costs(notebook_monthly=36.5, training_job=0.74, training_job_spot=0.22, tuning_job=1.47,
                              monthly_min=1234.5, monthly_max=12345.678))
    assert lines[2:] == [
        "notebook: $36.50/month",
        "training job: at most $0.74 (spot ≈ $0.22)",
        "tuning job: at most $1.47",
        "total: $1,234.50 to $12,345.68 per month (prices us-east-1 2026-10-01)",
    ]
    assert cost_lines(_costs(training_job=3.0))[2] == "training job: at most $3.00"


def test_cost_lines_of_a_built_stack_agree_with_its_cost():
    settings = settings_for("pv-cost", *NOTEBOOK)
    costs = stack_for("pv-cost", *NOTEBOOK).cost(settings.pricing)
    lines = cost_lines(costs)
    assert f"notebook: ${costs.notebook_monthly:,.2f}/month" in lines
    assert lines[-1] == (f"total: ${costs.monthly_min:,.2f} to ${costs.monthly_max:,.2f} per month "
                         f"(prices {settings.pricing.region} {settings.pricing.as_of})")


# ---- print_plan and print_changes -----------------------------------------------------------------------

def test_print_plan_has_a_row_per_resource_and_job_and_the_cost_lines():
    settings = settings_for("pv-print", *NOTEBOOK)
    stack = stack_for("pv-print", *NOTEBOOK)
    costs = stack.cost(settings.pricing)
    console = _console()
    print_plan(console, stack, costs)
    text = console.export_text()
    assert f"stack pv-print — {stack.region}, account {stack.account}" in text
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if line.startswith("│")
            and line.split("│")[1].strip()}
    for resource in stack.resources:
        assert resource.logical_id in rows, resource.logical_id
        assert resource.type.replace("AWS::", "") in rows[resource.logical_id]
        assert "AWS::" not in rows[resource.logical_id]
        first_line = describe(resource).splitlines()[0]
        assert first_line in rows[resource.logical_id]
        if resource.physical_name:
            assert resource.physical_name in text
    [job] = stack.jobs
    assert "local" in rows[job.logical_id] and describe_job(job) in rows[job.logical_id]
    for line in cost_lines(costs):
        assert f"  {line}" in text.splitlines()


def test_print_plan_shows_the_api_of_a_remote_job():
    settings = settings_for("pv-print-sm", *SM)
    stack = stack_for("pv-print-sm", *SM)
    console = _console()
    print_plan(console, stack, stack.cost(settings.pricing))
    row = next(line for line in console.export_text().splitlines() if line.startswith("│ TrainingJob "))
    assert "sagemaker:CreateTrainingJob" in row


CHANGES = [
    {"action": "create", "logical_id": "Model", "type": "AWS::SageMaker::Model", "name": "s-model-2", "details": []},
    {"action": "update", "logical_id": "ScalableTarget", "type": "AWS::ApplicationAutoScaling::ScalableTarget",
     "name": "endpoint/s-endpoint/variant/AllTraffic", "details": ["MaxCapacity", "MinCapacity"]},
    {"action": "replace", "logical_id": "EndpointConfig", "type": "AWS::SageMaker::EndpointConfig",
     "name": "s-config-2", "details": ["ProductionVariants"], "replaces": "s-config-1"},
    {"action": "replace", "logical_id": "InvokeFunctionVersion", "type": "AWS::Lambda::Version",
     "name": "s-invoke:2", "details": [], "replaces": "s-invoke:1"},
    {"action": "delete", "logical_id": None, "type": "AWS::IAM::Role", "name": "s-old-role",
     "details": ["no longer in the stack"]},
    {"action": "no-change", "logical_id": "InvokeFunction", "type": "AWS::Lambda::Function", "name": "s-invoke"},
    {"action": "no-change", "logical_id": "Endpoint", "type": "AWS::SageMaker::Endpoint", "name": "s-endpoint"},
]


def _row(text: str, name: str) -> list[str]:
    line = next(line for line in text.splitlines() if f" {name} " in line and line.startswith("│"))
    return [cell.strip() for cell in line.strip("│").split("│")]


def test_print_changes_one_row_per_change_and_the_counts():
    console = _console()
    print_changes(console, CHANGES, live=True)
    text = console.export_text()
    assert "changes against live state" in text
    assert _row(text, "s-model-2") == ["create", "Model", "SageMaker::Model", "s-model-2", ""]
    assert _row(text, "endpoint/s-endpoint/variant/AllTraffic") == [
        "update", "ScalableTarget", "ApplicationAutoScaling::ScalableTarget", "endpoint/s-endpoint/variant/AllTraffic",
        "MaxCapacity, MinCapacity"]
    assert _row(text, "s-config-2")[0] == "replace"
    assert _row(text, "s-config-2")[4] == "replaces s-config-1; ProductionVariants"
    assert _row(text, "s-invoke:2")[4] == "replaces s-invoke:1"
    assert _row(text, "s-old-role") == ["delete", "", "IAM::Role", "s-old-role", "no longer in the stack"]
    assert _row(text, "s-endpoint")[0] == "no-change"
    assert text.splitlines()[-1] == "  1 to create, 1 to update, 2 to replace, 1 to delete, 2 unchanged"


def test_print_changes_on_a_fresh_emulator_says_so_and_counts_only_what_occurs():
    console = _console()
    print_changes(console, CHANGES[:1], live=False)
    text = console.export_text()
    assert "changes (the embedded emulator starts empty)" in text
    assert "against live state" not in text
    assert text.splitlines()[-1] == "  1 to create"
