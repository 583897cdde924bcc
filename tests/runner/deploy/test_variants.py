"""Two production variants (endpoint=ab_test) through plan, gate, cost, deploy, update and destroy
on the local target: each variant with its own instance type, weight and autoscaling bounds."""

from __future__ import annotations

from runner_helpers import inventory, scalable_targets, scaling_policies, settings_for, watch

from policies.gate import evaluate
from runner.deploy import apply, destroy, plan_changes
from runner.stack.build import build_stack


def _live_variants(target, stack) -> dict[str, dict]:
    sm, aas = target.client("sagemaker"), target.client("application-autoscaling")
    config = sm.describe_endpoint(EndpointName=stack.names.endpoint_name)["EndpointConfigName"]
    variants = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    targets = {t["ResourceId"].rpartition("/")[2]: t for t in scalable_targets(aas)
               if t["ResourceId"].startswith(f"endpoint/{stack.names.endpoint_name}/")}
    policies = {p["ResourceId"].rpartition("/")[2] for p in scaling_policies(aas)
                if p["ResourceId"].startswith(f"endpoint/{stack.names.endpoint_name}/")}
    return {v["VariantName"]: {"instance_type": v["InstanceType"], "weight": v["InitialVariantWeight"],
                               "bounds": (targets[v["VariantName"]]["MinCapacity"],
                                          targets[v["VariantName"]]["MaxCapacity"]),
                               "policy": v["VariantName"] in policies}
            for v in variants}


def test_two_variants_deploy_update_and_destroy(local_target, stack_name):
    stack = build_stack(settings_for(stack_name, "endpoint=ab_test"))
    apply(stack, local_target)
    assert _live_variants(local_target, stack) == {
        "AllTraffic": {"instance_type": "ml.m5.large", "weight": 0.8, "bounds": (1, 3), "policy": True},
        "Candidate": {"instance_type": "ml.c5.large", "weight": 0.2, "bounds": (1, 2), "policy": True},
    }
    assert {c.action for c in plan_changes(stack, local_target)} == {"no-change"}

    # Update one variant: a new endpoint config, both variants' scaling re-registered around the
    # endpoint update (AWS requires it), the old config swept.
    old_config = stack.resource("EndpointConfig").properties["EndpointConfigName"]
    resized = build_stack(settings_for(stack_name, "endpoint=ab_test",
                                       "endpoint.variants.Candidate.instance_type=ml.c5.xlarge"))
    changed = {c.logical_id: c.action for c in plan_changes(resized, local_target) if c.action != "no-change"}
    assert changed == {"EndpointConfig": "replace", "Endpoint": "update",
                       "ScalableTargetAllTraffic": "replace", "ScalingPolicyAllTraffic": "replace",
                       "ScalableTargetCandidate": "replace", "ScalingPolicyCandidate": "replace"}
    apply(resized, local_target)
    assert _live_variants(local_target, resized)["Candidate"]["instance_type"] == "ml.c5.xlarge"
    assert f"endpoint-config:{old_config}" not in inventory(local_target, stack_name)

    # Back to one variant: the candidate's scaling is no longer declared and is swept.
    single = build_stack(settings_for(stack_name))
    apply(single, local_target)
    live = _live_variants(local_target, single)
    assert set(live) == {"AllTraffic"} and live["AllTraffic"]["weight"] == 1.0
    assert not any("variant/Candidate" in item for item in inventory(local_target, stack_name))
    log, _ = watch(local_target)
    apply(single, local_target)
    assert log.mutating == []

    destroy(settings_for(stack_name), local_target)
    assert inventory(local_target, stack_name) <= {f"bucket:{single.names.bucket}"}


def test_two_variants_are_gated_and_priced_each(stack_name):
    settings = settings_for(stack_name, "endpoint=ab_test", "policy=strict",
                            "policy.allowed_instance_types.hosting=[ml.m5.large]")
    stack = build_stack(settings)
    costs = stack.cost(settings.pricing)
    hosting, hours = settings.pricing.hosting, settings.pricing.hours_per_month
    # Each variant at its own bounds: AllTraffic 1..3 x m5.large, Candidate 1..2 x c5.large.
    assert costs.endpoint_monthly_min == round((hosting["ml.m5.large"] + hosting["ml.c5.large"]) * hours, 2)
    assert costs.endpoint_monthly_max == round((3 * hosting["ml.m5.large"] + 2 * hosting["ml.c5.large"]) * hours, 2)
    result = evaluate(settings, stack, costs)
    (finding,) = [f for f in result.active if f.rule_id == "SG-COST-001"]
    assert "ml.c5.large" in finding.message and "ml.m5.large" not in finding.message.split(" is not in")[0]
    assert finding.config_key == "endpoint.variants"
