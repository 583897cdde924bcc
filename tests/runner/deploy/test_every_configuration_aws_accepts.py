"""Every request of every preset and option is one AWS accepts: deployed on the emulator, where each
request is checked against the installed botocore model before it is sent (request_validation)
and against AWS's rules between members and requests (runner/core/aws_rules.py) when it arrives,
with the job requests sent as the training stage sends them, then updated and destroyed.

The request log shows what was checked: a test that passes here sent every request through both.
"""

from __future__ import annotations

import pytest
from botocore import xform_name
from runner_helpers import settings_for, with_network

from policies.gate import evaluate
from policies.rules.registry import all_rules
from runner.app.compose import CONF_DIR
from runner.deploy import apply, destroy
from runner.stack.build import build_stack
from runner.targets.request_log import RequestLog
from runner.targets.request_validation import validate_request

# Options that only make sense with another group's option; tuning needs SageMaker training.
COMPANIONS = {("hpo", "sagemaker_tuner"): ("training=sagemaker",)}
# Groups whose options do not change a request (values, prices, the policy) or need an account.
SKIPPED = {"pricing", "policy", "target", "data"}
OPTIONS = [(group.name, option.stem) for group in sorted(CONF_DIR.iterdir()) if group.is_dir()
           and group.name not in SKIPPED for option in sorted(group.glob("*.yaml"))]
# The shipped production preset asks for a volume key on instance storage, which the gate refuses
# (SG-SAN-008): it never reaches AWS, so it is checked with the key dropped.
EXTRA = {
    "production": ("experiment=production", "training.volume_kms_key_id=null"),
    "spot": ("training=sagemaker", "training.use_spot=true", "training.max_wait=7200", "training.volume_kms_key_id=null"),
    "multi-instance": ("training=sagemaker_multi",),
    "isolated-training": ("training=sagemaker", "training.network_isolation=true",
                          "training.volume_kms_key_id=null"),
    "notebook+ec2+serverless": ("notebook=t3_medium", "training=ec2", "endpoint=serverless", "autoscaling=none"),
    "kms+capture": ("endpoint.data_capture=true", "endpoint.kms_key_id=alias/sagegate",
                    "function.kms_key_arn=arn:aws:kms:us-east-1:123456789012:key/sagegate"),
}
CONFIGS = {f"{group}={option}": (f"{group}={option}", *COMPANIONS.get((group, option), ()))
           for group, option in OPTIONS if (group, option) != ("experiment", "production")} | EXTRA
AWS_RULES = [rule for rule in all_rules() if rule.id.startswith("SG-AWS-")]


def _sent(log: RequestLog) -> list[str]:
    """Every logged request, checked once more against the model (the log holds what was sent)."""
    for entry in log.entries:
        if "<" not in str(entry["params"]):  # redacted payloads are not the values that were sent
            assert validate_request(entry["service"], entry["operation"], entry["params"]) == [], entry
    return [entry["operation"] for entry in log.entries]


def _send_jobs(target, stack) -> list[str]:
    sent = []
    for job in stack.jobs:
        if job.api:
            service, _, operation = job.api.partition(":")
            getattr(target.client(service), xform_name(operation))(**job.request)
            sent.append(operation)
    return sent


@pytest.mark.parametrize("overrides", CONFIGS.values(), ids=CONFIGS.keys())
def test_every_request_of_a_configuration_is_one_aws_accepts(local_target, stack_name, overrides):
    settings = settings_for(stack_name, *with_network(local_target, *overrides))
    stack = build_stack(settings, account=local_target.account, run_id="t1")
    gate = evaluate(settings, stack, stack.cost(settings.pricing), rules=AWS_RULES)
    assert gate.findings == [], [f.message for f in gate.findings]

    log = RequestLog()
    log.attach(local_target)
    apply(stack, local_target)
    jobs = _send_jobs(local_target, stack)
    destroy(settings, local_target)
    operations = _sent(log)
    assert "CreateEndpoint" in operations and "CreateFunction" in operations
    assert set(jobs) <= set(operations)
    assert any(op.startswith("Delete") for op in operations)


def test_updates_of_instances_scaling_and_kind_are_requests_aws_accepts(local_target, stack_name):
    """Instance type and count, scaling bounds, concurrency, a second variant, serverless and back."""
    steps = [
        (),
        ("endpoint.variants.AllTraffic.instance_type=ml.c5.xlarge", "endpoint.variants.AllTraffic.initial_instance_count=2",
         "autoscaling.max_capacity=5"),
        ("function.reserved_concurrency=10", "function.provisioned_concurrency=3", "autoscaling.scale_in_cooldown=300"),
        ("endpoint=ab_test",),
        ("endpoint=serverless", "autoscaling=none", "function.provisioned_concurrency=0"),
        (),
    ]
    log = RequestLog()
    log.attach(local_target)
    for overrides in steps:
        apply(build_stack(settings_for(stack_name, *overrides), account=local_target.account), local_target)
    destroy(settings_for(stack_name), local_target)
    operations = _sent(log)
    for expected in ("UpdateEndpoint", "RegisterScalableTarget", "PutProvisionedConcurrencyConfig",
                     "DeleteProvisionedConcurrencyConfig", "DeleteEndpoint"):
        assert expected in operations, expected
