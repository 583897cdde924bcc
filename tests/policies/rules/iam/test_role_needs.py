"""SG-IAM-009: a role lacks a permission a configured feature needs (runner/stack/needs.py)."""

from __future__ import annotations

import copy

import pytest
from policy_helpers import NOTEBOOK, Case, assert_fails, assert_passes, evaluate_case, make, role_policy

from policies.gate import evaluate
from runner.core import iam_eval
from runner.stack.model import Stack
from runner.stack.parts import active_parts

RULE = "SG-IAM-009"
# The example: the function's role without sagemaker:InvokeEndpoint.
NO_INVOKE = ("iam.roles.lambda_invoke.scopes=[{service:logs,actions:[CreateLogGroup,CreateLogStream,PutLogEvents],"
             "resources:[function_log_group]},{service:xray,actions:[PutTraceSegments,PutTelemetryRecords],"
             "resources:['*']}]")


def _notebook_without_logs(stack: Stack) -> None:
    document = role_policy(stack, "RoleNotebook")
    document["Statement"] = [s for s in document["Statement"] if not s["Action"][0].startswith("logs:")]


FAILING = [
    Case((NO_INVOKE,), severity="high", resource="RoleLambdaInvoke", config_key="iam.roles.lambda_invoke.scopes"),
    Case(NOTEBOOK, mutate=_notebook_without_logs, resource="RoleNotebook", note="notebook-without-logs"),
    Case(("function.subnet_ids=[subnet-0123456789abcdef0]", "function.security_group_ids=[sg-0123456789abcdef0]"),
         resource="RoleLambdaInvoke", note="function-in-a-vpc"),
]
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
FUNCTION_KEY = f"function.kms_key_arn={KEY}"
FUNCTION_SCOPES_WITH_KEY = (
    "iam.roles.lambda_invoke.scopes=[{service:sagemaker,actions:[InvokeEndpoint],resources:[endpoint]},"
    "{service:logs,actions:[CreateLogGroup,CreateLogStream,PutLogEvents],resources:[function_log_group]},"
    "{service:xray,actions:[PutTraceSegments,PutTelemetryRecords],resources:['*']},"
    "{service:kms,actions:[Decrypt],resources:['kms_key:function']}]")
FAILING += [Case((FUNCTION_KEY,), resource="RoleLambdaInvoke", note="function-key-without-kms-decrypt")]
PASSING = [Case(), Case(NOTEBOOK), Case(("training=ec2",)), Case(("training=sagemaker", "hpo=sagemaker_tuner")),
           Case((FUNCTION_KEY, FUNCTION_SCOPES_WITH_KEY), note="function-key-with-kms-decrypt-on-it")]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)


def test_the_finding_names_role_action_resource_and_feature() -> None:
    [finding] = [f for f in evaluate_case(RULE, FAILING[0]).findings if f.rule_id == RULE]
    assert finding.message.startswith("role lambda_invoke lacks sagemaker:InvokeEndpoint on "
                                      "arn:aws:sagemaker:us-east-1:123456789012:endpoint/")
    assert "function needs to invoke the endpoint (https://docs.aws.amazon.com/" in finding.message


def _needed_grants() -> list[tuple[tuple[str, ...], str, int, str]]:
    """(overrides, role logical id, statement index, action) of every permission the default roles
    grant that a configured feature needs (training=local needs no training permissions)."""
    grants = []
    for overrides in ((), NOTEBOOK, ("training=ec2",), ("training=sagemaker",)):
        inputs = make(*overrides)
        active = active_parts(inputs.settings)
        for role in inputs.stack.find("AWS::IAM::Role"):
            served = set(inputs.settings.iam.roles[role.config_key.rsplit(".", 1)[-1]].used_by) & active
            needs = [n for n in inputs.stack.needs if n.part in served]
            for i, statement in enumerate(role.properties["Policies"][0]["PolicyDocument"]["Statement"]):
                grants += [(overrides, role.logical_id, i, action) for action in statement["Action"]
                           if any(iam_eval.statement_matches({**statement, "Action": action}, n.action, n.resource,
                                                             n.context) for n in needs)]
    return list(dict.fromkeys(grants))


@pytest.mark.parametrize(("overrides", "role", "index", "action"), _needed_grants(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_removing_any_granted_permission_of_the_default_roles_fails_with_the_need_named(overrides, role, index,
                                                                                      action) -> None:
    inputs = make(*overrides)
    stack = copy.deepcopy(inputs.stack)
    statement = stack.resource(role).properties["Policies"][0]["PolicyDocument"]["Statement"][index]
    statement["Action"] = [a for a in statement["Action"] if a != action]
    if not statement["Action"]:
        stack.resource(role).properties["Policies"][0]["PolicyDocument"]["Statement"].pop(index)
    result = evaluate(inputs.settings, stack, inputs.costs)
    named = [f for f in result.findings if f.rule_id == RULE and f" lacks {action} on " in f.message]
    assert named and result.exit_code == 1, (role, action)


def test_a_training_key_needs_kms_encrypt_on_that_key() -> None:
    """OutputDataConfig.KmsKeyId (API reference): the execution role must be allowed kms:Encrypt."""
    case = Case(("training=sagemaker", "training.instance_type=ml.m5.xlarge",
                 "training.volume_kms_key_id=1234abcd-12ab-34cd-56ef-1234567890ab"), resource="RoleSagemakerExecution")
    [finding] = [f for f in assert_fails(RULE, case) if "kms:" in f.message]
    assert finding.message.startswith(f"role sagemaker_execution lacks kms:Encrypt on {KEY}")
