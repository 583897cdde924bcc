"""The training package's own S3 transfers and packing, as the EC2 user data calls them."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from training.archive import pack_directory
from training.s3sync import put_file, sync_s3_prefix


@pytest.fixture
def s3(emulator_url: str, monkeypatch: pytest.MonkeyPatch):
    import boto3

    env = {"AWS_ENDPOINT_URL": emulator_url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket="s3sync-test")
    return client, env


def test_put_then_sync_brings_every_object_back(s3, tmp_path: Path) -> None:
    client, _ = s3
    for i in range(40):
        path = tmp_path / "src" / f"{i % 3}" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * i)
        put_file(path, f"s3://s3sync-test/data/train/{i % 3}/{i}.png")
    local = sync_s3_prefix("s3://s3sync-test/data", tmp_path / "cache")
    got = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file())
    assert got == sorted(f"train/{i % 3}/{i}.png" for i in range(40))
    assert (local / "train" / "1" / "7.png").read_bytes() == b"x" * 7
    assert not list(local.rglob("*.partial"))


def test_the_command_lines_pack_as_sagemaker_and_put(s3, tmp_path: Path) -> None:
    client, env = s3
    model = tmp_path / "model"
    (model / "code").mkdir(parents=True)
    (model / "model.json").write_text("{}")
    (model / "code" / "inference.py").write_text("")
    dest = tmp_path / "model.tar.gz"
    repo = Path(__file__).resolve().parents[2]
    run_env = {"PATH": "/usr/bin:/bin", **env}
    packed = subprocess.run([sys.executable, "-m", "training.archive", "pack", str(model), str(dest)], cwd=repo,
                            env=run_env, capture_output=True, text=True)
    assert packed.returncode == 0, packed.stderr
    assert dest.read_bytes() == pack_directory(model, tmp_path / "again.tar.gz").read_bytes()
    with tarfile.open(dest) as archive:
        assert sorted(archive.getnames()) == ["code/inference.py", "model.json"]
    put = subprocess.run([sys.executable, "-m", "training.s3sync", "put", str(dest), "s3://s3sync-test/a/model.tar.gz"],
                         cwd=repo, env=run_env, capture_output=True, text=True)
    assert put.returncode == 0, put.stderr
    assert client.get_object(Bucket="s3sync-test", Key="a/model.tar.gz")["Body"].read() == dest.read_bytes()
    not_a_model = subprocess.run([sys.executable, "-m", "training.archive", "pack", str(tmp_path), str(dest)],
                                 cwd=repo, env=run_env, capture_output=True, text=True)
    assert not_a_model.returncode == 2 and "no model.json" in not_a_model.stderr
