"""`python main.py` end to end on the embedded local target, with a tiny training budget."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_the_whole_job_predicts_through_the_function(run_main, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_main("training.epochs=1", "invoke.samples=3", "quiet=true",
                      f"hydra.run.dir={run_dir}", f"workdir={tmp_path / 'work'}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    for name in ("plan.json", "template.json", "policy/report.json", "policy/report.sarif", "policy/junit.xml",
                 "train.log", "metrics.json", "model.tar.gz", "run.json", "requests.jsonl"):
        assert (run_dir / name).is_file(), name
    sent = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    assert ("sagemaker", "CreateEndpoint") in {(r["service"], r["operation"]) for r in sent}
    with tarfile.open(run_dir / "model.tar.gz") as archive:
        assert {"model.pth", "model.json", "code/inference.py", "code/training/model.py"} <= set(archive.getnames())
    assert "Testing Accuracy: " in (run_dir / "train.log").read_text()

    record = json.loads((run_dir / "run.json").read_text())
    assert record["exit_code"] == 0 and record["gate"]["verdict"] == "pass"
    assert record["training"]["metrics"]["test_accuracy"] > 0.5  # one epoch on digits: well above chance (0.1)
    deployed = record["deploy"]
    assert deployed["variants"] == [{"VariantName": "AllTraffic", "InstanceType": "ml.m5.large",
                                     "InitialInstanceCount": 1, "InitialVariantWeight": 1.0,
                                     "autoscaling": {"min": 1, "max": 3}}]

    # What was gated is what was deployed: the template on disk names this run's artifact, the
    # report holds that file's sha256, and the model created is the template's (its name hashes
    # its container, ModelDataUrl included).
    template_bytes = (run_dir / "template.json").read_bytes()
    template = json.loads(template_bytes)
    report = json.loads((run_dir / "policy" / "report.json").read_text())
    assert report["template_sha256"] == hashlib.sha256(template_bytes).hexdigest()
    assert record["gate"]["template_sha256"] == report["template_sha256"]
    artifact_digest = hashlib.sha256((run_dir / "model.tar.gz").read_bytes()).hexdigest()[:16]
    model = template["Resources"]["Model"]["Properties"]
    assert model["PrimaryContainer"]["ModelDataUrl"].endswith(f"/artifacts/model-{artifact_digest}.tar.gz")
    assert f"AWS::SageMaker::Model {model['ModelName']}" in deployed["created"]
    assert deployed["concurrency"] == {"reserved": 5, "provisioned": 2, "alias": "live"}
    predictions = record["predictions"]
    assert len(predictions) == 3
    for prediction in predictions:
        assert prediction["status"] == 200
        assert prediction["true_label"] in {str(d) for d in range(10)}
        assert prediction["label"] in {str(d) for d in range(10)}
        assert len(prediction["predictions"]) == 3  # endpoint.top_k

    # The predictions came through the function: its handler logged one request per image,
    # each with the time it spent calling the endpoint server, which logged its own start.
    function_log = [json.loads(line) for line in (run_dir / "function.log").read_text().splitlines()
                    if line.startswith("{")]
    answered = [entry for entry in function_log if entry.get("status") == 200 and "endpoint_ms" in entry]
    assert len(answered) == 3
    assert '"event": "ready"' in (run_dir / "endpoint.log").read_text()
    assert "sagegate run: sagegate-demo" in result.stdout


def test_a_gate_failure_creates_nothing(run_main, tmp_path: Path) -> None:
    """A huge endpoint fails the gate: exit 1 before training, nothing trained or deployed."""
    run_dir = tmp_path / "run"
    result = run_main("endpoint.variants.AllTraffic.instance_type=ml.p4d.24xlarge", f"hydra.run.dir={run_dir}",
                      f"workdir={tmp_path / 'work'}")
    assert result.returncode == 1, result.stdout[-2000:]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["gate"]["verdict"] == "fail"
    assert "training" not in record and "deploy" not in record
    assert not (run_dir / "model.tar.gz").exists() and not (run_dir / "train.log").exists()
    assert "SG-COST-001" in result.stdout


def test_aws_without_credentials_fails_at_once(run_main, tmp_path: Path) -> None:
    from e2e_helpers import clean_env

    env = clean_env(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
                    AWS_EC2_METADATA_DISABLED="true")
    result = run_main("stage=check", "target=aws", f"hydra.run.dir={tmp_path}", env=env, timeout=120)
    assert result.returncode == 2
    assert "target=aws" in result.stdout and "credential" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_unreadable_s3_data_stops_before_the_launcher_creates_anything(run_main, tmp_path: Path) -> None:
    """The reference preset's data.source is a placeholder: on the local target the emulator's S3 is
    empty, so training stops with one line naming the key, before any role or job is created.
    (stage=all: with stage=train the settings refuse it before the gate, tests/runner/core/test_settings_strict.py.)"""
    run_dir = tmp_path / "run"
    result = run_main("stage=all", "experiment=reference_2023",
                            "notebook.subnet_id=subnet-0123456789abcdef0",
                            "notebook.security_group_ids=[sg-0123456789abcdef0]", f"hydra.run.dir={run_dir}",
                      f"workdir={tmp_path / 'work'}", timeout=300)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "data.source: s3://CHANGE-ME/dogImages cannot be read" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "create AWS::IAM::Role" not in result.stdout  # the launcher creates its roles first
    record = json.loads((run_dir / "run.json").read_text())
    assert record["gate"]["verdict"] == "pass" and "training" not in record
