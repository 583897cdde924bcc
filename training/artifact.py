"""The model directory SageMaker packs into model.tar.gz (docs/contracts.md).

``model.pth`` (state dict, CPU tensors) + ``model.json`` (metadata) + ``code/`` (the inference
module and what it imports), laid out as the SageMaker PyTorch serving container expects.
"""

from __future__ import annotations

import json
import platform
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

FORMAT_VERSION = 1
PACKAGE_ROOT = Path(__file__).resolve().parent
# handlers/ sits beside training/ in the repository and in the source bundle.
INFERENCE_MODULE = PACKAGE_ROOT.parent / "handlers" / "inference.py"
REQUIREMENTS_NOTE = "# torch and torchvision come with the SageMaker PyTorch serving container.\n"


@dataclass(frozen=True)
class ModelMetadata:
    arch: str
    head_hidden: int
    num_classes: int
    classes: list[str]
    image_size: int
    normalize: dict[str, list[float]]
    metrics: dict[str, float | int | bool]
    hyperparameters: dict[str, object]
    versions: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        ordered = {"format_version": self.format_version, **{k: v for k, v in asdict(self).items() if k != "format_version"}}
        return json.dumps(ordered, indent=2, sort_keys=False) + "\n"


def runtime_versions() -> dict[str, str]:
    import torch
    import torchvision

    return {"torch": torch.__version__.split("+")[0], "torchvision": torchvision.__version__.split("+")[0],
            "python": platform.python_version()}


def write_model_dir(model_dir: Path, state_dict: Mapping[str, object], metadata: ModelMetadata,
                    inference_module: Path = INFERENCE_MODULE) -> list[str]:
    """Write the artifact's files into ``model_dir``; returns warnings (e.g. no inference module yet)."""
    import torch

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, model_dir / "model.pth")
    (model_dir / "model.json").write_text(metadata.to_json())
    code = model_dir / "code"
    (code / "training").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PACKAGE_ROOT / "__init__.py", code / "training" / "__init__.py")
    shutil.copyfile(PACKAGE_ROOT / "model.py", code / "training" / "model.py")
    (code / "requirements.txt").write_text(REQUIREMENTS_NOTE)
    warnings = []
    if inference_module.is_file():
        shutil.copyfile(inference_module, code / "inference.py")
    else:
        warnings.append(f"no inference module at {inference_module}: the artifact has no code/inference.py")
    return warnings


def read_model_metadata(model_dir: Path) -> dict[str, object]:
    return json.loads((Path(model_dir) / "model.json").read_text())
