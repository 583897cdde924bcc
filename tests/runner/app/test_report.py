"""The run report (runner/app/report.py): one line per part of run.json, and the panel."""

from __future__ import annotations

import copy
from pathlib import Path

from rich.console import Console
from runner_helpers import settings_for

from runner.app.context import RunContext
from runner.app.report import print_run_report, report_lines

ONE_VARIANT = [{"VariantName": "AllTraffic", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
                "InitialVariantWeight": 1.0, "autoscaling": {"min": 1, "max": 3}}]
TWO_VARIANTS = [
    {"VariantName": "Blue", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2, "InitialVariantWeight": 0.75,
     "autoscaling": {"min": 2, "max": 4}},
    {"VariantName": "Green", "InitialVariantWeight": 0.25},
]

# Shaped like a whole job's run.json (runner/app/cli.py and stages.py).
RESULT = {
    "stage": "all",
    "gate": {"verdict": "pass", "fail_on": "high", "counts": {"critical": 0, "high": 0, "medium": 0, "low": 1, "info": 0},
             "top_finding": "SG-HARD-001 EndpointConfig: the AWS-managed key", "template_sha256": "ab" * 32},
    "cost": {"monthly_min": 89.43, "monthly_max": 257.33, "price_snapshot": "us-east-1 2026-10-01"},
    "training": {"launcher": "local", "metrics": {"test_accuracy": 0.98888, "test_loss": 0.0609123},
                 "artifact": "outputs/run/model.tar.gz", "log": "outputs/run/train.log"},
    "deploy": {"created": ["a"] * 10, "updated": [], "deleted": [],
               "endpoint": "demo-endpoint", "function": "demo-invoke", "variants": ONE_VARIANT,
               "concurrency": {"reserved": 5, "provisioned": 2, "alias": "live"}},
    "predictions": [
        {"image": "0/0000.png", "true_label": "0", "label": "0", "score": 0.99},
        {"image": "3/0003.png", "true_label": "3", "label": "8", "score": 0.51},
        {"image": "6/0065.png", "true_label": "6", "label": "6", "score": 0.97},
    ],
}


def _result(**parts) -> dict:
    result = copy.deepcopy(RESULT)
    result.update(parts)
    return result


def test_a_whole_job_has_one_line_per_part_in_order():
    assert report_lines(RESULT) == [
        "gate       PASS (fail_on=high): 0 critical, 0 high, 0 medium, 1 low",
        "cost       $89.43 to $257.33 per month (endpoint at min..max capacity + provisioned concurrency; "
        "prices us-east-1 2026-10-01)",
        "training   local: test accuracy 0.9889, test loss 0.0609, artifact outputs/run/model.tar.gz",
        "endpoint   demo-endpoint: ml.m5.large x 1, autoscaling 1..3",
        "function   demo-invoke:live: reserved concurrency 5, provisioned 2",
        "apply      10 created, 0 updated, 0 deleted",
        "invoke     0/0000.png → 0, 3/0003.png → 8, 6/0065.png → 6 (2/3 correct)",
    ]


def test_two_variants_are_named_with_their_weights():
    deployed = {**RESULT["deploy"], "variants": TWO_VARIANTS}
    [line] = [line for line in report_lines(_result(deploy=deployed)) if line.startswith("endpoint ")]
    assert line == ("endpoint   demo-endpoint: Blue (weight 0.75) ml.m5.large x 2, autoscaling 2..4; "
                    "Green (weight 0.25) serverless")


def test_one_variant_without_autoscaling_has_no_bounds_and_no_name():
    variant = {k: v for k, v in ONE_VARIANT[0].items() if k != "autoscaling"}
    deployed = {**RESULT["deploy"], "variants": [variant]}
    assert "endpoint   demo-endpoint: ml.m5.large x 1" in report_lines(_result(deploy=deployed))


def test_a_failing_gate_and_missing_counts():
    gate = {"verdict": "fail", "fail_on": "medium", "counts": {"high": 2}}
    lines = report_lines({"gate": gate})
    assert lines == ["gate       FAIL (fail_on=medium): 0 critical, 2 high, 0 medium, 0 low"]


def test_costs_over_a_thousand_have_separators():
    cost = {"monthly_min": 1234.5, "monthly_max": 10000, "price_snapshot": "eu-west-1 2026-01-01"}
    assert report_lines({"cost": cost}) == [
        "cost       $1,234.50 to $10,000.00 per month (endpoint at min..max capacity + provisioned concurrency; "
        "prices eu-west-1 2026-01-01)"]


def test_missing_or_non_numeric_metrics_are_not_available():
    training = {"launcher": "sagemaker", "metrics": {"test_accuracy": "high", "test_loss": 1}, "artifact": "s3://b/k"}
    assert report_lines({"training": training}) == [
        "training   sagemaker: test accuracy n/a, test loss 1.0000, artifact s3://b/k"]
    assert report_lines({"training": {"launcher": "ec2", "artifact": "a"}}) == [
        "training   ec2: test accuracy n/a, test loss n/a, artifact a"]


def test_predictions_without_true_labels_have_no_score():
    predictions = [{"image": "digit.png", "true_label": None, "label": "7", "score": 0.9}]
    assert report_lines({"predictions": predictions}) == ["invoke     digit.png → 7"]


def test_a_prediction_without_a_label_is_not_correct():
    predictions = [{"image": "0/a.png", "true_label": "0", "label": None},
                   {"image": "1/b.png", "true_label": "1", "label": "1"}]
    assert report_lines({"predictions": predictions}) == ["invoke     0/a.png → None, 1/b.png → 1 (1/2 correct)"]


def test_parts_that_did_not_run_are_left_out():
    assert report_lines({}) == []
    assert report_lines({"gate": None, "cost": {}, "training": None, "deploy": {}, "predictions": []}) == []
    lines = report_lines({"gate": RESULT["gate"], "cost": RESULT["cost"]})
    assert [line.split()[0] for line in lines] == ["gate", "cost"]


def test_print_run_report_is_a_panel_titled_with_the_stack_and_ending_with_the_run_dir(tmp_path: Path):
    settings = settings_for("report-demo")
    console = Console(record=True, width=200, highlight=False)
    context = RunContext(settings, tmp_path / "run", console, result=copy.deepcopy(RESULT))
    print_run_report(context)
    text = console.export_text()
    lines = [line.strip("│ ") for line in text.splitlines()]
    assert "sagegate run: report-demo" in lines[0]
    assert lines[1:-1] == [*report_lines(RESULT), f"files      {tmp_path / 'run'}"]
    # The report is computed from the run record, which it does not change.
    assert context.result == RESULT
