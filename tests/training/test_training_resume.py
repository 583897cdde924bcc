"""Managed spot: a run killed mid-training resumes from its checkpoint to the same end."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from training_helpers import REPO_ROOT, TINY_SIZE, run_python, wait_for

from training.checkpoint import checkpoint_path, load_checkpoint
from training.config import Hyperparameters, ProcessPlace
from training.entry import main
from training.loop import fingerprint

# One thread everywhere: the same numbers in every process, and no OpenMP stalls on a busy machine.
ONE_CPU = {"SM_NUM_CPUS": "1"}
KEYS = ("test_loss", "test_accuracy", "best_epoch", "best_valid_loss", "final_train_loss", "epochs_run")


def args(data: Path, out: Path, epochs: int = 4) -> list[str]:
    return ["-m", "training", "--data_dir", str(data), "--model_dir", str(out / "model"),
            "--checkpoint_dir", str(out / "checkpoints"), "--image_size", str(TINY_SIZE),
            "--epochs", str(epochs), "--batch_size", "32", "--patience", "0"]


def metrics_of(out: Path) -> dict:
    meta = json.loads((out / "model" / "model.json").read_text())["metrics"]
    return {k: meta[k] for k in KEYS}


def test_killed_run_resumes_to_the_same_metrics(small_digits: Path, tmp_path: Path, capsys) -> None:
    # The uninterrupted reference runs in this process: same threads, same numbers.
    assert main(args(small_digits, tmp_path / "whole")[2:], env=ONE_CPU) == 0
    capsys.readouterr()
    env = {**os.environ, **ONE_CPU, "PYTHONUNBUFFERED": "1"}

    out = tmp_path / "spot"
    process = subprocess.Popen([sys.executable, *args(small_digits, out)], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: checkpoint_path(out / "checkpoints").exists() or process.poll() is not None, 180)
        process.send_signal(signal.SIGKILL)  # a spot interruption gives no time to clean up
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL, "training finished before it could be interrupted"
    assert not (out / "model" / "model.json").exists()

    resumed = run_python(args(small_digits, out), env=env)
    assert resumed.returncode == 0, resumed.stderr
    done = int(resumed.stdout.split("resuming from ")[1].split(": ")[1].split(" of ")[0])
    assert 1 <= done < 4
    assert resumed.stdout.count("Train Loss:") == 4 - done  # finished epochs are not trained again
    assert metrics_of(out) == pytest.approx(metrics_of(tmp_path / "whole"), rel=1e-6)


def test_finished_checkpoint_is_not_trained_again(tiny_digits: Path, tmp_path: Path, capsys) -> None:
    argv = [*args(tiny_digits, tmp_path, epochs=2)[2:], "--batch_size", "16"]
    assert main(argv, env=ONE_CPU) == 0
    first = metrics_of(tmp_path)
    assert main(argv, env=ONE_CPU) == 0
    out = capsys.readouterr().out
    assert "2 of 2 epochs done" in out and out.count("Train Loss:") == 2  # 2 from the first run only
    assert metrics_of(tmp_path) == pytest.approx(first)


def test_checkpoint_of_another_run_is_refused(tiny_digits: Path, tmp_path: Path, capsys) -> None:
    argv = [*args(tiny_digits, tmp_path, epochs=1)[2:], "--batch_size", "16"]
    assert main(argv, env=ONE_CPU) == 0
    assert main([*argv, "--learning_rate", "0.5"], env=ONE_CPU) == 2
    err = capsys.readouterr().err
    assert str(checkpoint_path(tmp_path / "checkpoints")) in err and "learning_rate" in err
    hp = Hyperparameters(image_size=TINY_SIZE, epochs=1, batch_size=16, patience=0)
    marks = fingerprint(hp, tuple(str(d) for d in range(10)), ProcessPlace())
    # Speed-only switches keep the checkpoint valid.
    assert load_checkpoint(tmp_path / "checkpoints", marks) is not None
    assert fingerprint(Hyperparameters(num_workers=2, channels_last=False), (), ProcessPlace()) == \
        fingerprint(Hyperparameters(), (), ProcessPlace())
