"""`training=sagemaker training.network_isolation=true` on the local target: the job's request carries the
`code` channel, and the isolated run trains from that channel's bytes to a servable artifact."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from training.bundle import build_source_bundle

pytestmark = pytest.mark.e2e


def test_an_isolated_sagemaker_job_trains_from_its_code_channel(run_main, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_main("stage=train", "training=sagemaker", "training.network_isolation=true", "data=digits",
                      "training.epochs=1", "data.image_size=32", "quiet=true", f"workdir={tmp_path / 'work'}",
                      f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    sent = [json.loads(line) for line in (run_dir / "requests.jsonl").read_text().splitlines()]
    (job,) = [r["params"] for r in sent if r["operation"] == "CreateTrainingJob"]
    assert job["EnableNetworkIsolation"] is True
    assert job["HyperParameters"]["sagemaker_submit_directory"] == "/opt/ml/input/data/code/sourcedir.tar.gz"
    (code,) = [c for c in job["InputDataConfig"] if c["ChannelName"] == "code"]
    assert code["DataSource"]["S3DataSource"]["S3Uri"].endswith("/code/sourcedir.tar.gz")

    # The run's code channel holds the object the request points at: the bundle, byte for byte.
    channel = run_dir / "channels" / "code" / "sourcedir.tar.gz"
    assert channel.read_bytes() == build_source_bundle(tmp_path / "bundle").read_bytes()
    log = (run_dir / "train.log").read_text()
    assert "/opt/ml/input/data/training" in log and "Testing Accuracy: " in log
    with tarfile.open(run_dir / "model.tar.gz") as archive:
        assert {"model.pth", "model.json", "code/inference.py", "code/training/model.py"} <= set(archive.getnames())
    record = json.loads((run_dir / "run.json").read_text())
    assert record["exit_code"] == 0 and record["training"]["launcher"] == "sagemaker"
