"""Shared by the target tests: a small real model artifact, made once per session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
# A small real artifact (random weights): model.pth, model.json, code/ as training writes them.
MAKE_ARTIFACT = """
import json, shutil, sys, tarfile
from pathlib import Path
import torch
from training.model import IMAGENET_MEAN, IMAGENET_STD, build_model
root, out = Path(sys.argv[1]), Path(sys.argv[2])
root.mkdir(parents=True)
torch.manual_seed(0)
torch.save(build_model("resnet18", 3, 16).state_dict(), root / "model.pth")
(root / "model.json").write_text(json.dumps({
    "format_version": 1, "arch": "resnet18", "head_hidden": 16, "num_classes": 3,
    "classes": ["cat", "dog", "bird"], "image_size": 32,
    "normalize": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
    "metrics": {}, "hyperparameters": {}, "versions": {"torch": torch.__version__}}))
code = root / "code"
(code / "training").mkdir(parents=True)
shutil.copy("handlers/inference.py", code / "inference.py")
shutil.copy("training/__init__.py", code / "training" / "__init__.py")
shutil.copy("training/model.py", code / "training" / "model.py")
with tarfile.open(out, "w:gz") as archive:
    for path in sorted(root.rglob("*")):
        archive.add(path, arcname=str(path.relative_to(root)), recursive=False)
"""


@pytest.fixture(scope="session")
def artifact(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("artifact")
    out = root / "model.tar.gz"
    subprocess.run([sys.executable, "-c", MAKE_ARTIFACT, str(root / "model"), str(out)], cwd=REPO, check=True,
                   timeout=300)
    return out
