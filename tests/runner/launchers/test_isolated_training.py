"""A network-isolated job on the local target runs isolated: its code comes from the `code` channel (the
bytes in S3), its inputs from the channel folders, and it has no endpoint, credentials or proxy, so
code that needs the network fails here as it fails in SageMaker's isolated container."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from runner_helpers import settings_for

from runner import deploy
from runner.launchers import LaunchError, TrainingRun, launcher_for
from runner.launchers.local import (
    TrainingFailed,
    isolated_environment,
    network_namespace_command,
    run_local_training,
)
from runner.stack.build import build_stack
from runner.stack.jobs import CODE_CHANNEL_SOURCEDIR
from training.archive import write_tar_gz
from training.bundle import build_source_bundle

# Torch-free stand-ins for the bundle's train.py: write a model.json (what the launcher needs), and
# record what the container saw.
QUIET_TRAIN = '''\
import json, os, sys
seen = {"env": dict(os.environ), "cwd": os.getcwd(), "argv": sys.argv[1:],
        "channels": {c: sorted(os.listdir(os.environ["SM_CHANNEL_" + c.upper()]))
                     for c in json.loads(os.environ["SM_CHANNELS"])}}
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as out:
    json.dump({"metrics": {"test_accuracy": 0.5}, "seen": seen}, out)
print("Testing Accuracy: 0.5")
'''
REACHES_S3 = '''\
import json, os
import boto3
buckets = boto3.client("s3", region_name="us-east-1").list_buckets()["Buckets"]
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as out:
    json.dump({"metrics": {"buckets": len(buckets)}}, out)
'''

# Needs no AWS variable at all: a socket to the emulator's address, as code with a hard-coded URL would.
OPENS_A_SOCKET = '''\
import json, os, socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[sys.argv.index("--port") + 1])), timeout=5):
    pass
with socket.socket() as server:  # the container's own loopback works
    server.bind(("127.0.0.1", 0))
    server.listen()
    socket.create_connection(server.getsockname(), timeout=5).close()
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as out:
    json.dump({"metrics": {}}, out)
'''


def _bundle(dest: Path, train_py: str) -> Path:
    return write_tar_gz(dest / "sourcedir.tar.gz", [("train.py", train_py.encode())])


def _seen(artifact: Path) -> dict:
    with tarfile.open(artifact) as archive:
        member = archive.extractfile("model.json")
        assert member is not None
        return json.load(member)["seen"]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    for split in ("train", "valid", "test"):
        (tmp_path / "data" / split / "0").mkdir(parents=True)
        (tmp_path / "data" / split / "0" / "a.png").write_bytes(b"png")
    return tmp_path / "data"


@pytest.fixture
def emulator_environment(local_target, monkeypatch) -> dict[str, str]:
    """This process's environment points boto3 at the emulator, with credentials (as a developer's
    shell might): a job that inherits it reaches S3."""
    env = local_target.child_env()
    for key, value in {**env, "HTTPS_PROXY": env["AWS_ENDPOINT_URL"], "SAGEGATE_SEEN_URL": env["AWS_ENDPOINT_URL"]
                       }.items():
        monkeypatch.setenv(key, value)
    return env


def test_the_isolated_environment_has_no_way_out() -> None:
    env = {"PATH": "/usr/bin", "HOME": "/home/me", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
           "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:5001", "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "x",
           "AWS_SESSION_TOKEN": "t", "AWS_PROFILE": "dev", "https_proxy": "http://proxy:3128", "NO_PROXY": "x",
           "OTHER_URL": "http://127.0.0.1:5000/"}
    isolated = isolated_environment(env)
    assert isolated == {"PATH": "/usr/bin", "HOME": "/home/me", "AWS_EC2_METADATA_DISABLED": "true",
                        "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}


def test_an_isolated_job_whose_code_reaches_s3_fails(emulator_environment, tmp_path: Path, data_dir: Path) -> None:
    code = tmp_path / "code"
    _bundle(code, REACHES_S3)
    kwargs = {"hyperparameters": {}, "data_dir": data_dir, "channels": {"code": code},
              "submit_directory": CODE_CHANNEL_SOURCEDIR, "quiet": True, "timeout_s": 120}
    # The same code, not isolated, reaches the emulator's S3 with the AWS settings the job is given
    # (as a SageMaker container gets its role's)...
    connected = run_local_training(run_dir=tmp_path / "open", network_isolation=False,
                                   aws_environment=emulator_environment, **kwargs)
    assert connected.metrics["buckets"] >= 0
    # ...and never with this machine's own (the developer's shell points at an account here).
    with pytest.raises(TrainingFailed):
        run_local_training(run_dir=tmp_path / "inherited", network_isolation=False, **kwargs)
    assert "NoCredentialsError" in (tmp_path / "inherited" / "train.log").read_text()
    with pytest.raises(TrainingFailed) as failed:
        run_local_training(run_dir=tmp_path / "isolated", network_isolation=True, **kwargs)
    assert "NoCredentialsError" in (tmp_path / "isolated" / "train.log").read_text()
    assert not (tmp_path / "isolated" / "model.tar.gz").exists() and failed.value.returncode != 0


@pytest.mark.skipif(not network_namespace_command(), reason="this machine allows no user network namespace")
def test_an_isolated_job_reaches_no_address_but_its_own_loopback(emulator_url: str, tmp_path: Path,
                                                                  data_dir: Path) -> None:
    code = tmp_path / "code"
    _bundle(code, OPENS_A_SOCKET)
    kwargs = {"hyperparameters": {"port": emulator_url.rsplit(":", 1)[1]}, "data_dir": data_dir,
              "channels": {"code": code}, "submit_directory": CODE_CHANNEL_SOURCEDIR, "quiet": True, "timeout_s": 120}
    run_local_training(run_dir=tmp_path / "open", network_isolation=False, **kwargs)
    with pytest.raises(TrainingFailed):
        run_local_training(run_dir=tmp_path / "isolated", network_isolation=True, **kwargs)
    # The emulator listens on the host's loopback; the job's namespace has a loopback of its own.
    assert "ConnectionRefusedError" in (tmp_path / "isolated" / "train.log").read_text()


def test_the_code_comes_from_the_channel_tarball(emulator_environment, tmp_path: Path, data_dir: Path) -> None:
    code = tmp_path / "code"
    _bundle(code, QUIET_TRAIN)
    result = run_local_training(hyperparameters={"epochs": 1}, data_dir=data_dir, run_dir=tmp_path / "run",
                                channels={"code": code}, submit_directory=CODE_CHANNEL_SOURCEDIR,
                                network_isolation=True, job_name="job-0001", quiet=True, timeout_s=120)
    seen = _seen(result.artifact)
    assert seen["channels"] == {"training": ["test", "train", "valid"], "code": ["sourcedir.tar.gz"]}
    assert seen["cwd"].endswith("/opt/ml/code") and seen["argv"] == ["--epochs", "1"]
    env = seen["env"]
    assert env["TRAINING_JOB_NAME"] == "job-0001" and json.loads(env["SM_TRAINING_ENV"])["job_name"] == "job-0001"
    assert env["SM_MODULE_DIR"].endswith("/opt/ml/input/data/code/sourcedir.tar.gz")
    leaks = {k: v for k, v in env.items() if (k.startswith("AWS_") and k not in isolated_environment({}))
             or "proxy" in k.lower() or emulator_environment["AWS_ENDPOINT_URL"] in v}
    assert leaks == {}


def test_a_submit_directory_with_no_tarball_fails_the_job(tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(LaunchError, match="no source tarball"):
        run_local_training(hyperparameters={}, data_dir=data_dir, run_dir=tmp_path / "run", channels={},
                           submit_directory=CODE_CHANNEL_SOURCEDIR, network_isolation=True, quiet=True)


def _plant_bundle(target, stack, train_py: str, tmp_path: Path) -> bytes:
    """Put a stand-in bundle where the job's code channel points, marked with the real bundle's
    digest: the launcher finds it current and leaves it, so the job runs exactly these bytes."""
    digest = hashlib.sha256(build_source_bundle(tmp_path / "real").read_bytes()).hexdigest()
    planted = _bundle(tmp_path / "planted", train_py).read_bytes()
    bucket, key = stack.names.s3_uri("code/sourcedir.tar.gz")[5:].split("/", 1)
    target.client("s3").upload_fileobj(io.BytesIO(planted), bucket, key, ExtraArgs={"Metadata": {"sha256": digest}})
    return planted


@pytest.mark.parametrize("hpo", ["hpo=none", "hpo=sagemaker_tuner"])
def test_the_sagemaker_launcher_runs_an_isolated_job_from_its_code_channel(
        local_target, emulator_environment, stack_name, tmp_path: Path, data_dir: Path, hpo: str) -> None:
    settings = settings_for(stack_name, "training=sagemaker", "training.network_isolation=true", hpo)
    stack = build_stack(settings, run_id="iso1")
    deploy.ensure_bucket(local_target, stack.names)
    deploy.apply_only(stack, local_target, stack.job_role_ids())
    planted = _plant_bundle(local_target, stack, QUIET_TRAIN, tmp_path)

    result = launcher_for("sagemaker")(TrainingRun(settings, stack, tmp_path / "run", data_dir, local_target))
    assert (tmp_path / "run" / "channels" / "code" / "sourcedir.tar.gz").read_bytes() == planted
    seen = _seen(result.artifact)
    assert seen["channels"]["code"] == ["sourcedir.tar.gz"]
    assert seen["env"]["TRAINING_JOB_NAME"] == result.job_name
    assert not any(k.startswith("AWS_ENDPOINT_URL") or k == "AWS_ACCESS_KEY_ID" for k in seen["env"])


def test_the_sagemaker_launcher_fails_an_isolated_job_that_needs_the_network(
        local_target, emulator_environment, stack_name, tmp_path: Path, data_dir: Path) -> None:
    settings = settings_for(stack_name, "training=sagemaker", "training.network_isolation=true")
    stack = build_stack(settings, run_id="iso2")
    deploy.ensure_bucket(local_target, stack.names)
    deploy.apply_only(stack, local_target, stack.job_role_ids())
    _plant_bundle(local_target, stack, REACHES_S3, tmp_path)
    with pytest.raises(TrainingFailed, match="local training exited"):
        launcher_for("sagemaker")(TrainingRun(settings, stack, tmp_path / "run", data_dir, local_target))
