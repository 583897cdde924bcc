"""checkov's answer per resource (policies/checkov/resources.py): a sweep scans each distinct
resource view once and every template gets its resources' results, the same as a whole scan."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from policy_helpers import INSECURE, NOTEBOOK, PRODUCTION, SM, make

from policies.checkov.resources import Unsupported, plan_batch, references, views
from policies.checkov.runner import render_template, scan_by_resource, scan_templates
from policies.gate import evaluate

PAIRS = [["AWS::Lambda::Function", "AWS::Lambda::Url"], ["AWS::SageMaker::NotebookInstance", "AWS::IAM::Role"]]


def _template(**resources: dict[str, Any]) -> dict[str, Any]:
    return {"AWSTemplateFormatVersion": "2010-09-09", "Metadata": {"sagegate": {"checkov_params": {}}},
            "Resources": resources}


def _small() -> dict[str, Any]:
    return _template(
        Role={"Type": "AWS::IAM::Role", "Properties": {"RoleName": "r"}},
        Function={"Type": "AWS::Lambda::Function", "Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]}}},
        Url={"Type": "AWS::Lambda::Url", "Properties": {"TargetFunctionArn": {"Ref": "Function"}}},
        Topic={"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": {"Fn::Sub": "${Function}-${Suffix}"}}},
        Other={"Type": "AWS::SNS::Topic", "DependsOn": ["Topic"], "Properties": {}},
        Alone={"Type": "AWS::SNS::Topic", "Properties": {}},
    )


def test_references_are_checkovs_edges():
    ids = ["Role", "Function", "Topic", "Suffix"]
    assert references({"a": {"Ref": "Role"}, "b": [{"Fn::GetAtt": "Function.Arn"}]}, ids) == {"Role", "Function"}
    assert references({"Fn::Sub": ["${Role.Arn}/${Suffix}", {"Suffix": "x"}]}, ids) == {"Role"}
    assert references({"DependsOn": "Topic", "Tag": "Role"}, ids) == {"Topic"}  # a plain string is no edge


def test_a_change_reaches_the_resources_that_depend_on_it_and_no_other():
    base = _small()
    changed = copy.deepcopy(base)
    changed["Resources"]["Role"]["Properties"]["RoleName"] = "other"
    before, after = views(base, PAIRS), views(changed, PAIRS)
    # Function references Role, Url references Function, Topic's Sub references Function, Other
    # depends on Topic; Alone references nothing and nothing pairs with it.
    assert {rid for rid in before if before[rid] != after[rid]} == {"Role", "Function", "Url", "Topic", "Other"}


def test_a_resource_connected_through_a_paired_type_is_part_of_its_view():
    """CKV2_AWS_75 judges a function by the Lambda URL that points at it: the URL is in the
    function's view (a change to the URL re-scans the function); an unpaired referrer is not."""
    base = _small()
    url = copy.deepcopy(base)
    url["Resources"]["Url"]["Properties"]["Cors"] = {"AllowOrigins": ["*"]}
    assert views(base, PAIRS)["Function"] != views(url, PAIRS)["Function"]
    assert views(base, [])["Function"] == views(url, [])["Function"]
    topic = copy.deepcopy(base)
    topic["Resources"]["Topic"]["Properties"]["DisplayName"] = {"Fn::Sub": "${Function}-other"}
    assert views(base, PAIRS)["Function"] == views(topic, PAIRS)["Function"]
    assert views(base, "*")["Function"] != views(topic, "*")["Function"]  # every type paired


def test_the_batch_holds_each_view_once_and_covers_every_template():
    templates = {}
    for i in range(6):
        t = _small()
        t["Resources"]["Alone"]["Properties"]["DisplayName"] = f"n{i % 3}"
        templates[f"t{i}"] = t
    batch = plan_batch(templates, PAIRS)
    distinct = {v for vs in batch.template_views.values() for v in vs.values()}
    assert distinct <= set(batch.covered_by)
    assert batch.resources_scanned == 6 + 2  # one whole template, then the two other Alones
    for name, part in batch.synthetic.items():
        for rid, view in views(part, PAIRS).items():
            assert batch.covered_by.get(view, (name, rid))[1] == rid


def test_sections_it_does_not_model_are_unsupported():
    with pytest.raises(Unsupported):
        views({**_small(), "Outputs": {"Arn": {"Value": {"Ref": "Role"}}}}, PAIRS)


# ---- with checkov ------------------------------------------------------------------------------------

CASES = {"default": (), "production": PRODUCTION, "insecure": INSECURE, "notebook": NOTEBOOK, "sagemaker": SM,
         "ab_test": ("endpoint=ab_test",), "serverless": ("endpoint=serverless",)}


def _norm(scan):
    return (sorted((f.rule_id, f.resource, f.severity, f.message, f.remediation, f.title) for f in scan.findings),
            sorted(scan.passed))


@pytest.fixture(scope="module")
def rendered():
    cases = {name: make(*overrides) for name, overrides in CASES.items()}
    return cases, {name: render_template(i.settings, i.stack) for name, i in cases.items()}


def test_per_resource_scan_gives_the_whole_scan_answers(rendered):
    """The default stack and the presets, scanned as parts holding each distinct resource once,
    get the same findings and passes as each template scanned whole."""
    _, templates = rendered
    stats: dict[str, int] = {}
    per_resource = scan_by_resource(templates, timeout_s=300, stats=stats)
    whole = scan_templates(templates, timeout_s=300)
    for name in templates:
        assert _norm(per_resource[name]) == _norm(whole[name]), name
    assert stats["resources"] < stats["template_resources"]  # the shared roles/model/function once


def test_one_changed_property_changes_only_its_jobs_verdict(rendered):
    """A sweep of jobs sharing their resources; one job's function gets a reserved concurrency over
    the policy's maximum in its template: that job's checkov finding (CKV_SG_001) and verdict
    change, and no other job's."""
    cases, templates = rendered
    inputs = cases["default"]
    jobs = {f"job{i}": copy.deepcopy(templates["default"]) for i in range(4)}
    jobs["job2"]["Resources"]["InvokeFunction"]["Properties"]["ReservedConcurrentExecutions"] = 900
    scans = scan_by_resource(jobs, timeout_s=300)
    verdicts = {}
    for key, scan in scans.items():
        result = evaluate(inputs.settings, inputs.stack, inputs.costs, scan.findings, checkov_passed=scan.passed)
        verdicts[key] = result.verdict
    assert verdicts == {"job0": "pass", "job1": "pass", "job2": "fail", "job3": "pass"}
    assert {f.rule_id for f in scans["job2"].findings} - {f.rule_id for f in scans["job0"].findings} == {"CKV_SG_001"}
    assert _norm(scans["job0"]) == _norm(scans["job1"]) == _norm(scans["job3"])


def test_per_resource_scan_fails_closed(rendered, tmp_path):
    from policies.model import GateError

    _, templates = rendered
    with pytest.raises(GateError, match="timed out"):
        scan_by_resource({"default": templates["default"]}, timeout_s=0.05)
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "__init__.py").write_text("")
    (checks / "broken.py").write_text("raise RuntimeError('broken check')\n")
    with pytest.raises(GateError, match="did not load"):
        scan_by_resource({"default": templates["default"]}, timeout_s=300, checks_dir=checks)
