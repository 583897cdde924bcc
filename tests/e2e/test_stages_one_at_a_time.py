"""Stages run one after another against `python -m runner.local`, as the README shows."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_helpers import REPO, clean_env

from runner.targets.dataplane import registered_runtimes

pytestmark = pytest.mark.e2e


@pytest.fixture
def emulator_url():
    process = subprocess.Popen([sys.executable, "-m", "runner.local", "--port", "0"], cwd=REPO, env=clean_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = None
        for line in process.stdout:  # the first line names the address
            if "emulator on " in line:
                url = line.split("emulator on ", 1)[1].strip()
                break
        assert url, "python -m runner.local did not say where it listens"
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _record(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def test_train_deploy_plan_invoke_destroy(run_main, emulator_url: str, tmp_path: Path) -> None:
    work = f"workdir={tmp_path / 'work'}"
    attach = f"target.endpoint_url={emulator_url}"

    trained = run_main("stage=train", "training.epochs=1", "quiet=true", work, f"hydra.run.dir={tmp_path / 'train'}")
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-2000:]

    deployed = run_main("stage=deploy", attach, work, f"hydra.run.dir={tmp_path / 'deploy'}")
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
    assert len(_record(tmp_path / "deploy")["deploy"]["created"]) == 10

    planned = run_main("stage=plan", attach, work, f"hydra.run.dir={tmp_path / 'plan'}")
    assert planned.returncode == 0, planned.stdout[-2000:]
    changes = json.loads((tmp_path / "plan" / "plan.json").read_text())["changes"]
    assert {c["action"] for c in changes} == {"no-change"}
    delta = json.loads((tmp_path / "plan" / "plan.json").read_text())["cost_delta"]
    assert delta["live"] == delta["planned"] and delta["delta"] == [0.0, 0.0]

    resized = run_main("stage=plan", attach, work, "endpoint.variants.AllTraffic.instance_type=ml.c5.xlarge",
                       f"hydra.run.dir={tmp_path / 'resize'}")
    assert resized.returncode == 0, resized.stdout[-2000:]
    plan = json.loads((tmp_path / "resize" / "plan.json").read_text())
    actions = {c["logical_id"]: c["action"] for c in plan["changes"] if c["logical_id"]}
    assert actions["EndpointConfig"] == "replace" and actions["Endpoint"] == "update"
    assert actions["Model"] == "no-change" and actions["InvokeFunction"] == "no-change"
    # ml.m5.large -> ml.c5.xlarge at up to 3 instances for 730 hours.
    assert plan["cost_delta"]["delta"][1] == pytest.approx((0.204 - 0.115) * 3 * 730, abs=0.02)

    # runner.local notices the deployment and starts its endpoint server and function runtime.
    deadline = time.monotonic() + 120
    while "sagegate-demo-invoke" not in registered_runtimes(emulator_url):
        assert time.monotonic() < deadline, "runner.local did not start the function runtime"
        time.sleep(0.5)
    image = next((tmp_path / "work" / "data").glob("digits-*/test/7/*.png"))
    invoked = run_main("stage=invoke", f"image={image}", attach, work, f"hydra.run.dir={tmp_path / 'invoke'}")
    assert invoked.returncode == 0, invoked.stdout[-2000:] + invoked.stderr[-2000:]
    (prediction,) = _record(tmp_path / "invoke")["predictions"]
    assert prediction["status"] == 200 and prediction["label"] in {str(d) for d in range(10)}

    destroyed = run_main("stage=destroy", attach, work, f"hydra.run.dir={tmp_path / 'destroy'}")
    assert destroyed.returncode == 0, destroyed.stdout[-2000:]
    deleted = {entry.split(" ")[0] for entry in _record(tmp_path / "destroy")["destroy"]["deleted"]}
    # Versions, the alias and the scaling policy go with their function and scalable target.
    assert deleted == {"AWS::Lambda::Function", "AWS::ApplicationAutoScaling::ScalableTarget", "AWS::SageMaker::Model",
                       "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint", "AWS::IAM::Role"}
    again = run_main("stage=destroy", attach, work, f"hydra.run.dir={tmp_path / 'destroy2'}")
    assert again.returncode == 0 and _record(tmp_path / "destroy2")["destroy"]["deleted"] == []

    replanned = run_main("stage=plan", attach, work, f"hydra.run.dir={tmp_path / 'plan2'}")
    assert replanned.returncode == 0, replanned.stdout[-2000:]
    changes = json.loads((tmp_path / "plan2" / "plan.json").read_text())["changes"]
    assert {c["action"] for c in changes} == {"create"}
