"""The one cost model: hand-checked figures, and the same numbers whether a stack is desired
(plan, gate, sweep rows) or read back from a live account (the plan's "live" side)."""

from __future__ import annotations

import pytest
from runner_helpers import settings_for

from runner import deploy
from runner.core import cost
from runner.stack.build import build_stack


def test_default_stack_costs_what_the_price_list_says(stack_name):
    settings = settings_for(stack_name)
    p = settings.pricing
    costs = build_stack(settings).cost(p)
    rate, hours = p.hosting["ml.m5.large"], p.hours_per_month
    # Provisioned concurrency 2 of a 256 MB function, all month.
    provisioned = 2 * 256 / 1024 * hours * 3600 * p.lambda_.provisioned_gb_second
    assert costs.endpoint_hourly_min == pytest.approx(rate * 1)
    assert costs.endpoint_hourly_max == pytest.approx(rate * 3)
    assert costs.provisioned_concurrency_monthly == pytest.approx(provisioned, abs=0.01)
    assert costs.monthly_min == pytest.approx(rate * hours + provisioned, abs=0.01)
    assert costs.monthly_max == pytest.approx(3 * rate * hours + provisioned, abs=0.01)
    assert costs.training_job == 0.0 and costs.tuning_job == 0.0  # local training


def test_jobs_are_priced_at_their_bound_and_spot_beside_it(stack_name):
    settings = settings_for(stack_name, "training=sagemaker", "hpo=sagemaker_tuner", "training.use_spot=true",
                            "training.max_wait=7200")
    t, p = settings.training, settings.pricing
    costs = build_stack(settings).cost(p)
    bound = p.training[t.instance_type] * t.instance_count * t.max_runtime / 3600
    assert costs.training_job == pytest.approx(bound, abs=0.01)
    assert costs.training_job_spot == pytest.approx(bound * (1 - p.spot_discount), abs=0.01)
    assert costs.tuning_job == pytest.approx(bound * settings.hpo.max_jobs, abs=0.01)


def test_ec2_training_uses_the_ec2_price_and_max_runtime(stack_name):
    settings = settings_for(stack_name, "training=ec2")
    t, p = settings.training, settings.pricing
    assert build_stack(settings).cost(p).training_job == pytest.approx(
        p.ec2[t.instance_type] * t.max_runtime / 3600, abs=0.01)


def test_serverless_costs_nothing_idle(stack_name):
    settings = settings_for(stack_name, "endpoint=serverless")
    costs = build_stack(settings).cost(settings.pricing)
    e, p = settings.endpoint, settings.pricing
    assert costs.endpoint_monthly_min == 0.0
    assert costs.endpoint_hourly_max == pytest.approx(
        e.serverless_max_concurrency * e.serverless_memory_mb / 1024 * 3600 * p.serverless.gb_second, abs=1e-4)


def test_live_state_read_back_costs_what_the_plan_said(local_target, stack_name, tmp_path):
    """The plan prices both sides of a change with the same function: once deployed, the live
    resources (as the drivers read them) cost exactly what the desired stack did."""
    settings = settings_for(stack_name)
    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(b"not really a model, but content-addressed all the same")
    names = build_stack(settings, account=local_target.account).names
    stack = build_stack(settings, account=local_target.account, model_data_url=deploy.artifact_uri(names, artifact))
    deploy.deploy(stack, local_target, artifact)
    changes = deploy.plan_changes(stack, local_target)
    assert {c.action for c in changes} == {"no-change"}
    live = [(c.type, {**c.live.key, **c.live.state}) for c in changes if c.live is not None]
    planned = stack.cost(settings.pricing)
    current = cost.estimate(live, [], settings.pricing)
    assert (current.monthly_min, current.monthly_max) == (planned.monthly_min, planned.monthly_max)
    deploy.destroy(settings, local_target)
