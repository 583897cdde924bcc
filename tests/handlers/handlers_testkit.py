"""Helpers for the handlers tests: a tiny real artifact, images, AWS event fixtures."""

from __future__ import annotations

import copy
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
CLASSES = ["cat", "dog", "bird"]
IMAGE_SIZE = 32
FIXTURES = Path(__file__).parent / "fixtures"


def write_artifact(root: Path, *, seed: int = 0, poison: bool = False) -> Path:
    """The docs/contracts.md layout: model.pth, model.json, code/ (inference + training.model)."""
    from training.model import IMAGENET_MEAN, IMAGENET_STD, build_model

    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    net = build_model("resnet18", len(CLASSES), 16)
    state = net.state_dict()
    if poison:  # a diverged training run: NaN weights in the head
        state["fc.2.weight"] = torch.full_like(state["fc.2.weight"], float("nan"))
    torch.save(state, root / "model.pth")
    meta = {
        "format_version": 1,
        "arch": "resnet18",
        "head_hidden": 16,
        "num_classes": len(CLASSES),
        "classes": CLASSES,
        "image_size": IMAGE_SIZE,
        "normalize": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "metrics": {"test_loss": 1.1, "test_accuracy": 0.33, "best_epoch": 1},
        "hyperparameters": {"learning_rate": 0.002, "batch_size": 8, "epochs": 1},
        "versions": {"torch": torch.__version__},
    }
    (root / "model.json").write_text(json.dumps(meta, indent=2))
    code = root / "code"
    (code / "training").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "handlers" / "inference.py", code / "inference.py")
    shutil.copy(REPO / "training" / "__init__.py", code / "training" / "__init__.py")
    shutil.copy(REPO / "training" / "model.py", code / "training" / "model.py")
    (code / "requirements.txt").write_text("")
    return root


def write_tarball(artifact_dir: Path, target: Path) -> Path:
    with tarfile.open(target, "w:gz") as archive:
        for path in sorted(artifact_dir.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(artifact_dir)), recursive=False)
    return target


def image_bytes(
    fmt: str = "PNG", size: tuple[int, int] = (40, 30), color: tuple[int, int, int] = (200, 30, 60)
) -> bytes:
    image = Image.new("RGB", size, color)
    for x in range(0, size[0], 3):  # some structure, so different images give different scores
        image.putpixel((x, x % size[1]), (x * 5 % 256, 255 - x % 256, 90))
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


ENDPOINT_NAME = "sagegate-test-endpoint"


def load_event(name: str) -> dict:
    """A copy of an AWS event fixture (tests mutate it)."""
    return copy.deepcopy(json.loads((FIXTURES / name).read_text()))


def set_function_env(mp: pytest.MonkeyPatch, url: str, **extra: str) -> None:
    """What the stack sets on the function, plus the local target's endpoint URL and test keys."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "TOP_K", "CONTENT_TYPE", "READ_TIMEOUT_S"):
        mp.delenv(name, raising=False)
    mp.setenv("AWS_CONFIG_FILE", "/nonexistent/sagegate-aws-config")
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/sagegate-aws-credentials")
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    mp.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", url)
    mp.setenv("ENDPOINT_NAME", ENDPOINT_NAME)
    mp.setenv("MAX_ATTEMPTS", "1")
    for name, value in extra.items():
        mp.setenv(name, value)
    from handlers import lambda_function

    mp.setattr(lambda_function, "_client", None)  # a new container
