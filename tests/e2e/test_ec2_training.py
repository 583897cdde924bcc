"""training=ec2 on the local target: the RunInstances request's own user data trains, packs and
uploads model.tar.gz on a stand-in instance, and that artifact is what deploys and answers."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_the_ec2_user_data_produces_the_artifact_that_deploys_and_answers(run_main, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_main("training=ec2", "training.epochs=1", "invoke.samples=1", "quiet=true",
                      f"hydra.run.dir={run_dir}", f"workdir={tmp_path / 'work'}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["training"]["launcher"] == "ec2"
    assert record["training"]["metrics"]["test_accuracy"] > 0.5  # one epoch on digits: well above chance

    # The script that ran is the request's UserData, byte for byte, and it ran to its shutdown.
    (job,) = [j for j in json.loads((run_dir / "plan.json").read_text())["jobs"] if j["kind"] == "ec2_run"]
    instance = run_dir / "instance"
    assert (instance / "user-data").read_text() == job["request"]["UserData"]
    assert (instance / "shutdown-requests").read_text().splitlines() == ["-h +120", "-h now"]
    log = (run_dir / "train.log").read_text()
    assert "+ shutdown -h +120" in log and "Testing Accuracy: " in log
    assert "uploaded " in log and "/model.tar.gz to s3://" in log

    # What the script packed is what came back from S3, and what the deployed model serves.
    packed = (instance / "opt" / "sagegate" / "model.tar.gz").read_bytes()
    assert (run_dir / "model.tar.gz").read_bytes() == packed
    with tarfile.open(run_dir / "model.tar.gz") as archive:
        assert {"model.pth", "model.json", "code/inference.py"} <= set(archive.getnames())
    model = json.loads((run_dir / "template.json").read_text())["Resources"]["Model"]["Properties"]
    digest = hashlib.sha256(packed).hexdigest()[:16]
    assert model["PrimaryContainer"]["ModelDataUrl"].endswith(f"/artifacts/model-{digest}.tar.gz")
    (prediction,) = record["predictions"]
    assert prediction["status"] == 200 and prediction["label"] in {str(d) for d in range(10)}
