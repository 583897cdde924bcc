"""Declared scopes expand to exact ARNs: no wildcard the user did not write."""

from __future__ import annotations

import pytest
from runner_helpers import NOTEBOOK

from runner.app.compose import compose_settings
from runner.core.errors import ConfigError
from runner.core.names import ResourceNames
from runner.core.settings import RoleSettings, Scope
from runner.stack.iam_policies import role_policy

ACCOUNT = "210987654321"


def _statements(overrides: list[str], role_key: str) -> list[dict]:
    settings = compose_settings(overrides)
    names = ResourceNames.for_settings(settings, ACCOUNT)
    repos = ("pytorch-inference", "pytorch-training")
    return role_policy(role_key, settings.iam.roles[role_key], names, repos)["Statement"]


def _resources(statement: dict) -> list[str]:
    resource = statement["Resource"]
    return [resource] if isinstance(resource, str) else resource


def test_lambda_role_can_invoke_only_this_endpoint() -> None:
    statements = _statements([], "lambda_invoke")
    invoke = next(s for s in statements if s["Action"] == ["sagemaker:InvokeEndpoint"])
    assert invoke["Resource"] == f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/sagegate-demo-endpoint"
    logs = next(s for s in statements if s["Action"][0].startswith("logs:"))
    assert logs["Resource"] == f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/sagegate-demo-invoke:*"


def test_execution_role_s3_scopes_are_the_stack_prefixes() -> None:
    statements = _statements(["name=team-a"], "sagemaker_execution")
    bucket = f"team-a-{ACCOUNT}-us-east-1"
    get = next(s for s in statements if s["Action"] == ["s3:GetObject"])
    assert _resources(get) == [f"arn:aws:s3:::{bucket}/data/digits/*", f"arn:aws:s3:::{bucket}/code/*",
                               f"arn:aws:s3:::{bucket}/artifacts/*", f"arn:aws:s3:::{bucket}/checkpoints/*"]
    listing = next(s for s in statements if s["Action"] == ["s3:ListBucket"])
    assert listing["Resource"] == f"arn:aws:s3:::{bucket}"


def test_user_data_bucket_is_scoped_to_its_prefix() -> None:
    statements = _statements(["data=dog_images", "data.source=s3://shared-data/dogImages/"], "sagemaker_execution")
    get = next(s for s in statements if s["Action"] == ["s3:GetObject"])
    assert "arn:aws:s3:::shared-data/dogImages/*" in _resources(get)
    listing = next(s for s in statements if s["Action"] == ["s3:ListBucket"])
    assert sorted(_resources(listing)) == sorted(["arn:aws:s3:::shared-data", f"arn:aws:s3:::sagegate-demo-{ACCOUNT}-us-east-1"])


def test_pass_role_names_the_execution_role_with_its_service() -> None:
    statements = _statements([*NOTEBOOK], "notebook")
    pass_role = next(s for s in statements if s["Action"] == ["iam:PassRole"])
    assert pass_role["Resource"] == f"arn:aws:iam::{ACCOUNT}:role/sagegate-demo-sagemaker-execution"
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


@pytest.mark.parametrize("role_key", ["sagemaker_execution", "lambda_invoke", "ec2_training", "notebook"])
def test_no_wildcard_is_produced(role_key: str) -> None:
    for statement in _statements([*NOTEBOOK, "training=ec2"], role_key):
        assert all("*" not in action for action in statement["Action"])
        for resource in _resources(statement):
            if resource == "*":
                # Written literally in conf for actions without resource-level permissions.
                assert statement["Action"] in (["ecr:GetAuthorizationToken"], ["cloudwatch:PutMetricData"],
                                               ["xray:PutTraceSegments", "xray:PutTelemetryRecords"])
                continue
            assert resource.startswith("arn:aws:")
            assert ACCOUNT in resource or resource.startswith(("arn:aws:s3:::", "arn:aws:ecr:"))
            # Only S3 object prefixes, log streams, this stack's job names end in a wildcard.
            if "*" in resource:
                assert resource.endswith(("/*", ":*", "-*")), resource


def test_unknown_reference_is_a_config_error() -> None:
    settings = compose_settings()
    names = ResourceNames.for_settings(settings, ACCOUNT)
    role = RoleSettings(trust="lambda.amazonaws.com", used_by=["function"],
                        scopes=[Scope(service="s3", actions=["GetObject"], resources=["everything"])])
    with pytest.raises(ConfigError, match="unknown resource reference 'everything'"):
        role_policy("x", role, names, ())
