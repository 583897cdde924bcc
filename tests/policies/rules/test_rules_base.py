"""What rules are built on (policies/rules/base.py): declarations checked when a rule class is
created, the outcome helper, the context's job helpers, and the base classes' scan logic."""

from __future__ import annotations

import pytest
from policy_helpers import SM, make

from policies.rules.base import (
    Context,
    JobRule,
    Outcome,
    ResourceRule,
    Rule,
    TrainingDefinitionRule,
    job_definition,
)


def context(*overrides: str) -> Context:
    i = make(*overrides)
    return Context(i.settings, i.stack, i.costs)


def declare(base: type[Rule] = Rule, **attributes) -> type[Rule]:
    """A rule class declared on ``base`` with valid metadata, updated by ``attributes``."""
    body = {"id": "SG-TEST-001", "severity": "low", "title": "A test rule", "config_key": "endpoint",
            "remediation": "Do it.", **attributes}
    if base is Rule:
        body.setdefault("check", lambda self, ctx: [])
    return type("TestRule", (base,), body)


# ---- declarations ---------------------------------------------------------------------------------------

def test_a_valid_declaration_makes_a_rule():
    rule = declare()()
    assert (rule.id, rule.area, repr(rule)) == ("SG-TEST-001", "TEST", "<TestRule SG-TEST-001>")


@pytest.mark.parametrize("attributes, problem", [
    ({"id": "SG-1"}, "is not SG-<AREA>-<NNN>"),
    ({"id": "sg-test-001"}, "is not SG-<AREA>-<NNN>"),
    ({"severity": "severe"}, "is not one of info, low, medium, high, critical"),
    ({"title": ""}, "declares no title"),
    ({"config_key": ""}, "declares no config_key"),
    ({"remediation": "Do it"}, "ending with '.'"),
])
def test_a_malformed_declaration_fails_when_the_class_is_created(attributes, problem):
    with pytest.raises(TypeError, match=problem.replace("(", r"\(").replace(".", r"\.")):
        declare(**attributes)


def test_a_base_class_without_an_id_is_not_checked():
    class Intermediate(Rule):  # e.g. a shared base inside an area
        severity = "severe"

    assert "id" not in vars(Intermediate)


def test_scan_logic_attributes_are_required():
    with pytest.raises(TypeError, match="declares no resource_type"):
        declare(ResourceRule, problem=lambda self, ctx, resource: None)
    with pytest.raises(TypeError, match="declares no job_kinds"):
        declare(JobRule, problem=lambda self, ctx, job: None)


def test_outcome_defaults_to_the_rule_config_key():
    rule = declare()()
    assert rule.outcome("Endpoint") == Outcome("Endpoint", "endpoint")
    assert rule.outcome("Endpoint").passed
    finding = rule.outcome("Endpoint", "too big", config_key="endpoint.variants.AllTraffic.instance_type", severity="high")
    assert finding == Outcome("Endpoint", "endpoint.variants.AllTraffic.instance_type", "too big", "high") and not finding.passed


# ---- the context ------------------------------------------------------------------------------------------

def test_job_definition_reads_through_a_tuning_job():
    ctx = context(*SM, "hpo=sagemaker_tuner")
    [tuning] = ctx.jobs("tuning_job")
    assert job_definition(tuning) is tuning.request["TrainingJobDefinition"]
    [(job, definition)] = ctx.training_definitions()
    assert job is tuning and "ResourceConfig" in definition


def test_jobs_by_kind():
    ctx = context("training=ec2")
    assert [j.logical_id for j in ctx.jobs("ec2_run")] == ["Ec2TrainingRun"]
    assert ctx.jobs("training_job", "tuning_job") == [] and ctx.training_definitions() == []


# ---- the base classes' scan logic ---------------------------------------------------------------------------

def test_resource_rule_looks_at_every_resource_of_its_type():
    rule = declare(ResourceRule, resource_type="AWS::IAM::Role",
                   problem=lambda self, ctx, r: "no tags" if r.logical_id == "RoleLambdaInvoke" else None)()
    ctx = context()
    outcomes = list(rule.check(ctx))
    assert [o.resource for o in outcomes] == [r.logical_id for r in ctx.stack.find("AWS::IAM::Role")]
    assert [o.resource for o in outcomes if not o.passed] == ["RoleLambdaInvoke"]


def test_job_rule_looks_at_the_jobs_of_its_kinds():
    rule = declare(JobRule, job_kinds=("training_job", "ec2_run"), problem=lambda self, ctx, job: job.kind)()
    assert [(o.resource, o.message) for o in rule.check(context(*SM))] == [("TrainingJob", "training_job")]
    assert list(rule.check(context())) == []  # local training: no remote job


def test_training_definition_rule_gets_each_definition():
    seen = []
    rule = declare(TrainingDefinitionRule, problem=lambda self, ctx, d: seen.append(d) or None)()
    outcomes = list(rule.check(context(*SM, "hpo=sagemaker_tuner")))
    assert [o.resource for o in outcomes] == ["TuningJob"] and all(o.passed for o in outcomes)
    assert "ResourceConfig" in seen[0]
