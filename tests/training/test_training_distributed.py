"""DistributedDataParallel: two CPU processes under torchrun (gloo), from the source bundle."""

import json
import os
from pathlib import Path

from training_helpers import TINY_SIZE, free_port, run_python

from training.archive import safe_extract
from training.bundle import build_source_bundle


def test_torchrun_two_processes(tiny_digits: Path, tmp_path: Path) -> None:
    code = tmp_path / "code"
    safe_extract(build_source_bundle(tmp_path / "bundle"), code)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
    result = run_python(
        ["-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
         "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
         "train.py", "--data_dir", str(tiny_digits), "--model_dir", str(out / "model"),
         "--checkpoint_dir", str(out / "checkpoints"), "--output_dir", str(out / "output"),
         "--image_size", str(TINY_SIZE), "--epochs", "2", "--batch_size", "8"],
        cwd=code, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Only rank 0 prints metrics and writes: one line per epoch, not one per process.
    assert result.stdout.count("Train Loss:") == 2
    assert result.stdout.count("Testing Loss:") == 1
    assert "2 process(es), 1 thread(s) each" in result.stdout
    meta = json.loads((out / "model" / "model.json").read_text())
    assert meta["metrics"]["epochs_run"] == 2 and 0.0 <= meta["metrics"]["test_accuracy"] <= 1.0
    # Accuracy over the whole test split (40 images), summed over both ranks' shards.
    assert round(meta["metrics"]["test_accuracy"] * 40, 6).is_integer()
    assert (out / "checkpoints" / "checkpoint.pt").exists()
    assert sorted(p.name for p in (out / "model").iterdir()) == ["code", "model.json", "model.pth"]
