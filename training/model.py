"""The network: a torchvision ResNet with a small classification head.

This module is shipped inside every model artifact (``code/training/model.py``) so that the
inference module rebuilds exactly the architecture that was trained. It imports torch and
torchvision only.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision import models

ARCHITECTURES = {"resnet18": models.resnet18, "resnet50": models.resnet50}

# torchvision's ImageNet statistics; recorded in model.json so inference normalises the same way.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_model(
    arch: str,
    num_classes: int,
    head_hidden: int = 256,
    weights: str | None = None,
    freeze_backbone: bool = False,
) -> nn.Module:
    """ResNet backbone with head ``Linear -> ReLU -> Linear(num_classes)``.

    ``weights`` is a torchvision weights name (e.g. ``"IMAGENET1K_V1"``) or ``None`` (random
    init; the only choice offline).
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"model.arch: unknown architecture {arch!r}; allowed: {sorted(ARCHITECTURES)}")
    net = ARCHITECTURES[arch](weights=weights)
    if freeze_backbone:
        for param in net.parameters():
            param.requires_grad_(False)
    in_features = net.fc.in_features
    net.fc = nn.Sequential(
        nn.Linear(in_features, head_hidden),
        nn.ReLU(inplace=True),
        nn.Linear(head_hidden, num_classes),
    )
    return net


def load_state(net: nn.Module, state_path: str) -> nn.Module:
    """Load a state dict saved by the trainer (CPU tensors, ``weights_only``)."""
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return net
