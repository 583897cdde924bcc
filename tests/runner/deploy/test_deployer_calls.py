"""The deployer's declared calls (runner/stack/deployer_calls.py) are the calls it makes: each
configuration is deployed (artifact upload and bucket setup included), deployed again with a change
(update paths), and destroyed with its artifacts on the emulator, and every request the request
log recorded must be declared by some grant of the stack's deployer policy. A new call in the
applier without a declaration fails here. The policy itself passes the IAM catalogue's check."""

from __future__ import annotations

import pytest
from runner_helpers import settings_for, with_network

from policies.deployer_policy import deployer_policy, problems
from runner.core.names import ResourceNames
from runner.deploy import artifact_uri, deploy, destroy
from runner.stack.build import build_stack
from runner.stack.deployer_calls import declared_operations, deployer_grants
from runner.targets.request_log import RequestLog

CONFIGS = {
    "default": (),
    "serverless": ("endpoint=serverless", "autoscaling=none"),
    "ab_test": ("endpoint=ab_test",),
    "notebook+ec2": ("notebook=t3_medium", "training=ec2"),
    "tuning": ("hpo=sagemaker_tuner", "training=sagemaker"),
    "kms+capture": ("endpoint.data_capture=true", "endpoint.kms_key_id=alias/sagegate",
                    "function.kms_key_arn=arn:aws:kms:us-east-1:123456789012:key/sagegate"),
}
# The second deploy changes what the update paths of the drivers touch.
CHANGES = ("function.memory_size=1024", "+tags.team=ml")


def _artifact(tmp_path, content: bytes):
    path = tmp_path / f"model-{len(content)}.tar.gz"
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("overrides", CONFIGS.values(), ids=CONFIGS.keys())
def test_every_call_of_deploy_update_and_destroy_is_declared(local_target, stack_name, tmp_path, overrides):
    overrides = (*with_network(local_target, *overrides), "destroy.delete_artifacts=true")
    log = RequestLog()
    log.attach(local_target)
    declared: set[str] = set()
    for i, changes in enumerate(((), CHANGES)):
        settings = settings_for(stack_name, *overrides, *changes)
        artifact = _artifact(tmp_path, b"x" * (100 + i))  # a new artifact: a new model and config
        names = ResourceNames.for_settings(settings, local_target.account)
        stack = build_stack(settings, account=local_target.account,
                            model_data_url=artifact_uri(names, artifact))
        declared |= declared_operations(deployer_grants(stack, delete_artifacts=True))
        deploy(stack, local_target, artifact)
    destroy(settings, local_target, delete_artifacts=True)
    sent = {f"{e['service']}:{e['operation']}" for e in log.entries}
    assert sent - declared == set(), "calls the deployer made that no grant declares"
    assert {"s3:PutObject", "sagemaker:CreateEndpoint", "lambda:CreateFunction", "iam:DeleteRole"} <= sent


@pytest.mark.parametrize("overrides", CONFIGS.values(), ids=CONFIGS.keys())
@pytest.mark.parametrize("delete_artifacts", [False, True])
def test_the_deployer_policy_passes_the_iam_catalogue(overrides, delete_artifacts):
    settings = settings_for("catalogue", *overrides, "notebook.subnet_id=subnet-0123abcd",
                            "notebook.security_group_ids=[sg-0123abcd]") if "notebook=t3_medium" in overrides \
        else settings_for("catalogue", *overrides)
    policy = deployer_policy(build_stack(settings), delete_artifacts=delete_artifacts)
    assert problems(policy) == []
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids))


def test_pass_role_is_limited_to_the_stacks_roles_and_their_services():
    settings = settings_for("passing", "notebook=t3_medium", "notebook.subnet_id=subnet-0123abcd",
                            "notebook.security_group_ids=[sg-0123abcd]")
    policy = deployer_policy(build_stack(settings))
    passes = [s for s in policy["Statement"] if "iam:PassRole" in s["Action"]]
    assert {s["Condition"]["StringEquals"]["iam:PassedToService"] for s in passes} == {
        "sagemaker.amazonaws.com", "lambda.amazonaws.com"}
    for s in passes:
        assert s["Action"] == ["iam:PassRole"]
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        assert all(r.startswith("arn:aws:iam::123456789012:role/passing-") and "*" not in r for r in resources)


def test_wildcards_only_where_declared_with_a_reason():
    stack = build_stack(settings_for("wild", "destroy.delete_artifacts=true"))
    for grant in deployer_grants(stack, delete_artifacts=True):
        if any("*" in r for r in grant.resources):
            assert grant.why, grant.sid
        for resource in grant.resources:
            # Else this stack's names, or a name AWS assigns bounded by the grant's condition.
            assert resource == "*" or "wild" in resource or grant.condition, (grant.sid, resource)
