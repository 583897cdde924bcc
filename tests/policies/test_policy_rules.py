"""Every native rule: a configuration (or an exact request) that fails it and one that passes it.

Most cases are config overrides, as a user would write them. Where the schema cannot produce the
bad shape (the rules are defence in depth on the stack that will be sent), the case edits the
built stack's resource or job request directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from policy_helpers import FULL_ACCESS, HUGE_ENDPOINT, PROVISIONED_OVER_BUDGET, WILDCARD_SCOPES, make

from policies.gate import evaluate
from policies.rules import all_rules

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SM = ("training=sagemaker", "training.volume_kms_key_id=null")  # g4dn: no KMS key on local storage


@dataclass(frozen=True)
class Case:
    rule_id: str
    overrides: tuple[str, ...] = ()
    mutate: Callable | None = None
    severity: str | None = None
    note: str = ""
    resource: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.rule_id}-{self.note or '-'.join(self.overrides) or 'default'}"[:80]


# ---- stack edits for shapes the schema never produces ------------------------------------------------

def _role_policy(stack, logical_id: str) -> dict:
    return stack.resource(logical_id).properties["Policies"][0]["PolicyDocument"]


def add_not_action(stack):
    _role_policy(stack, "RoleLambdaInvoke")["Statement"].append(
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})


def widen_notebook_passrole(stack):
    for statement in _role_policy(stack, "RoleNotebook")["Statement"]:
        if "iam:PassRole" in statement["Action"]:
            statement["Resource"] = "*"
            statement.pop("Condition", None)


def job(stack, logical_id: str) -> dict:
    return next(j for j in stack.jobs if j.logical_id == logical_id).request


def add_variant(stack, instance_type: str):
    variants = stack.resource("EndpointConfig").properties["ProductionVariants"]
    variants.append({**variants[0], "VariantName": "Canary", "InstanceType": instance_type})


def drop_max_runtime(stack):
    del job(stack, "TrainingJob")["StoppingCondition"]["MaxRuntimeInSeconds"]


def drop_shutdown_timer(stack):
    request = job(stack, "Ec2TrainingRun")
    request["UserData"] = "\n".join(line for line in request["UserData"].splitlines() if "shutdown -h +" not in line)


def drop_provisioned_config(stack):
    del stack.resource("InvokeFunctionAlias").properties["ProvisionedConcurrencyConfig"]


def alias_on_latest(stack):
    stack.resource("InvokeFunctionAlias").properties["FunctionVersion"] = "$LATEST"


def invert_capacity(stack):
    stack.resource("ScalableTarget").properties.update(MinCapacity=5, MaxCapacity=2)


def provisioned_above_reserved(stack):
    stack.resource("InvokeFunctionAlias").properties["ProvisionedConcurrencyConfig"][
        "ProvisionedConcurrentExecutions"] = 10


def reserve_too_much(stack):
    stack.resource("InvokeFunction").properties["ReservedConcurrentExecutions"] = 950


def zero_target(stack):
    stack.resource("ScalingPolicy").properties["TargetTrackingScalingPolicyConfiguration"].update(
        TargetValue=0, ScaleInCooldown=-1)


def imds_optional(stack):
    job(stack, "Ec2TrainingRun")["MetadataOptions"]["HttpTokens"] = "optional"


def plain_ebs(stack):
    job(stack, "Ec2TrainingRun")["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] = False


def public_ip(stack):
    job(stack, "Ec2TrainingRun")["NetworkInterfaces"][0]["AssociatePublicIpAddress"] = True


def default_network(stack):
    del job(stack, "Ec2TrainingRun")["NetworkInterfaces"]


FAILING = [
    Case("SG-IAM-001", (WILDCARD_SCOPES,), severity="high", resource="RoleLambdaInvoke"),
    Case("SG-IAM-002", mutate=add_not_action, severity="high", note="NotAction"),
    Case("SG-IAM-003", ('iam.roles.lambda_invoke.scopes=[{service:s3,actions:[PutObject],resources:["*"]}]',),
         severity="high"),
    Case("SG-IAM-004", (FULL_ACCESS,), severity="high", resource="RoleSagemakerExecution"),
    Case("SG-IAM-005", ("notebook=t3_medium",), mutate=widen_notebook_passrole, severity="high", note="passrole-any"),
    Case("SG-IAM-006", ("notebook=t3_medium",), mutate=widen_notebook_passrole, severity="high", note="escalation"),
    Case("SG-IAM-007", ("iam.roles.lambda_invoke.trust=ec2.amazonaws.com",), severity="high"),
    Case("SG-IAM-008", ("iam.roles.lambda_invoke.scopes=[{service:sagemaker,actions:[InvokeEndpoints],"
                        "resources:[endpoint]}]",), severity="low"),
    Case("SG-COST-001", (*SM, "training.instance_type=ml.p3.16xlarge"), resource="TrainingJob"),
    Case("SG-COST-001", ("training=ec2", "training.instance_type=p3.2xlarge"), resource="Ec2TrainingRun"),
    Case("SG-COST-001", (HUGE_ENDPOINT,), resource="EndpointConfig"),
    Case("SG-COST-001", mutate=lambda stack: add_variant(stack, "ml.p3.2xlarge"), resource="EndpointConfig",
         note="second-variant"),
    Case("SG-COST-001", ("notebook=t3_medium", "notebook.instance_type=ml.t3.xlarge"), resource="NotebookInstance"),
    Case("SG-COST-002", (HUGE_ENDPOINT,), severity="high", resource="Endpoint"),
    Case("SG-COST-003", (*SM, "training.instance_type=ml.p4d.24xlarge", "training.max_runtime=7200",
                         "training.max_wait=7200")),
    Case("SG-COST-004", (*SM, "hpo=sagemaker_tuner", "hpo.max_jobs=300")),
    Case("SG-COST-005", PROVISIONED_OVER_BUDGET, resource="InvokeFunctionAlias"),
    Case("SG-COST-006", ("notebook=t3_medium", "notebook.instance_type=ml.g4dn.xlarge")),
    Case("SG-COST-007", (*SM, "training.checkpointing=false"), severity="medium"),
    Case("SG-COST-008", SM, mutate=drop_max_runtime, note="no-max-runtime"),
    Case("SG-COST-008", ("training=ec2",), mutate=drop_shutdown_timer, note="ec2-no-timer"),
    Case("SG-SAN-001", ("endpoint=serverless",), severity="medium"),
    Case("SG-SAN-002", mutate=drop_provisioned_config, note="no-alias-config"),
    Case("SG-SAN-002", mutate=alias_on_latest, note="latest"),
    Case("SG-SAN-003", (*SM, "hpo=sagemaker_tuner", "hpo.objective_regex='validation_loss: ([0-9.]+)'")),
    Case("SG-SAN-004", mutate=invert_capacity, note="min>max"),
    Case("SG-SAN-005", mutate=provisioned_above_reserved, note="provisioned>reserved"),
    Case("SG-SAN-006", mutate=reserve_too_much, note="reserved-floor"),
    Case("SG-SAN-006", ("function.reserved_concurrency=500",), note="policy-bound"),
    Case("SG-SAN-006", mutate=lambda stack: stack.resource("InvokeFunction").properties.update(
        ReservedConcurrentExecutions=0), note="zero"),
    Case("SG-SAN-007", mutate=zero_target, note="target-0"),
    Case("SG-SAN-008", ("training=sagemaker", "training.volume_kms_key_id=alias/aws/sagemaker"), severity="high",
         resource="TrainingJob"),
    Case("SG-SAN-008", ("endpoint.instance_type=ml.g4dn.xlarge",), resource="EndpointConfig"),
    Case("SG-HARD-001", ("endpoint.kms_key_id=null",), severity="low"),
    Case("SG-HARD-001", (), severity="low", note="aws-managed-alias"),
    Case("SG-HARD-002", ("notebook=t3_medium",), severity="low"),
    Case("SG-HARD-003", (*SM, "training.instance_type=ml.m5.xlarge"), severity="low"),
    Case("SG-HARD-004", ("notebook=t3_medium", "notebook.direct_internet_access=Enabled"), severity="high"),
    Case("SG-HARD-005", ("notebook=t3_medium", "notebook.root_access=Enabled"), severity="medium"),
    Case("SG-HARD-006", ("training=ec2",), mutate=imds_optional, severity="high", note="imdsv1"),
    Case("SG-HARD-007", ("training=ec2",), mutate=plain_ebs, severity="high", note="ebs"),
    Case("SG-HARD-008", ("training=ec2",), mutate=public_ip, severity="high", note="public-ip"),
    Case("SG-HARD-008", ("training=ec2",), mutate=default_network, severity="medium", note="default-network"),
    Case("SG-HARD-009", (*SM, "training.network_isolation=false"), severity="medium"),
    Case("SG-HARD-010", ("training=sagemaker_multi", "training.volume_kms_key_id=null",
                         "training.inter_container_encryption=false"), severity="medium"),
]

PASSING = [
    Case("SG-IAM-001"), Case("SG-IAM-002"), Case("SG-IAM-003"), Case("SG-IAM-004"),
    # The reference notebook role: CreateTrainingJob + PassRole to the named execution role, for SageMaker.
    Case("SG-IAM-005", ("notebook=t3_medium",)), Case("SG-IAM-006", ("notebook=t3_medium",)),
    Case("SG-IAM-007"), Case("SG-IAM-008"),
    Case("SG-COST-001", SM), Case("SG-COST-001", ("training=ec2",)), Case("SG-COST-001", ("notebook=t3_medium",)),
    Case("SG-COST-001", mutate=lambda stack: add_variant(stack, "ml.c5.xlarge"), note="two-allowed-variants"), Case("SG-COST-002"), Case("SG-COST-003", SM),
    Case("SG-COST-004", (*SM, "hpo=sagemaker_tuner")), Case("SG-COST-005"),
    Case("SG-COST-006", ("notebook=t3_medium",)), Case("SG-COST-007", SM), Case("SG-COST-008", SM),
    Case("SG-COST-008", ("training=ec2",)),
    Case("SG-SAN-001", ("endpoint=serverless", "autoscaling=none")), Case("SG-SAN-002"),
    Case("SG-SAN-003", (*SM, "hpo=sagemaker_tuner")), Case("SG-SAN-004"), Case("SG-SAN-005"), Case("SG-SAN-006"),
    Case("SG-SAN-007"), Case("SG-SAN-008", SM), Case("SG-SAN-008", ("training=sagemaker", "training.instance_type=ml.m5.xlarge",
                                                            "training.volume_kms_key_id=alias/aws/sagemaker")),
    Case("SG-HARD-001", (f"endpoint.kms_key_id={KEY_ARN}",)),
    Case("SG-HARD-001", ("endpoint.instance_type=ml.g4dn.xlarge", "endpoint.kms_key_id=null"), note="local-storage"),
    Case("SG-HARD-002", ("notebook=t3_medium", f"notebook.kms_key_id={KEY_ARN}")),
    Case("SG-HARD-003", SM, note="local-storage"),
    Case("SG-HARD-003", (*SM, "training.instance_type=ml.m5.xlarge", f"training.volume_kms_key_id={KEY_ARN}")),
    Case("SG-HARD-004", ("notebook=t3_medium",)), Case("SG-HARD-005", ("notebook=t3_medium",)),
    Case("SG-HARD-006", ("training=ec2",)), Case("SG-HARD-007", ("training=ec2",)), Case("SG-HARD-008", ("training=ec2",)),
    Case("SG-HARD-009", SM), Case("SG-HARD-010", ("training=sagemaker_multi", "training.volume_kms_key_id=null")),
    Case("SG-HARD-010", (*SM, "training.inter_container_encryption=false"), note="single-instance"),
]


def run(case: Case):
    inputs = make(*case.overrides)
    if case.mutate:
        case.mutate(inputs.stack)
    return evaluate(inputs.settings, inputs.stack, inputs.costs)


@pytest.mark.parametrize("case", FAILING, ids=lambda c: c.id)
def test_rule_fails(case: Case):
    result = run(case)
    mine = [f for f in result.active if f.rule_id == case.rule_id]
    assert mine, f"{case.rule_id} did not fire; got {[f.rule_id for f in result.active]}"
    if case.severity:
        assert {f.severity for f in mine} == {case.severity}
    if case.resource:
        assert {f.resource for f in mine} == {case.resource}
    assert all(f.message and f.remediation and f.config_key for f in mine)


@pytest.mark.parametrize("case", PASSING, ids=lambda c: c.id)
def test_rule_passes(case: Case):
    result = run(case)
    assert not [f for f in result.findings if f.rule_id == case.rule_id]
    # The rule looked at something: a pass is a checked resource, not a rule that never ran.
    assert any(e.rule_id == case.rule_id and e.passed for e in result.evaluations)


def test_every_rule_has_a_failing_and_a_passing_case():
    rule_ids = {rule.id for rule in all_rules()}
    assert rule_ids == {c.rule_id for c in FAILING} == {c.rule_id for c in PASSING}


def test_rule_ids_are_unique_and_declared():
    rules = all_rules()
    assert len({r.id for r in rules}) == len(rules)
    for rule in rules:
        assert rule.severity in ("info", "low", "medium", "high", "critical")
        assert rule.title and rule.remediation.endswith(".") and rule.config_key
