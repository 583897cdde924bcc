"""scikit-learn's bundled handwritten digits as an ImageFolder tree (no download needed).

1797 real 8x8 grey images of 10 classes, upscaled to RGB PNGs and split 70/15/15 (stratified,
fixed seed). The tree is written once and cached under a name derived from a hash of everything
that determines its bytes, so a changed source or size never reuses a stale tree.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

SPLIT_SEED = 20230101
SPLIT_FRACTIONS = {"train": 0.70, "valid": 0.15, "test": 0.15}
# Bumped whenever the way the tree is written changes, so old caches are not reused.
TREE_FORMAT = 1


def ensure_digits(cache_root: Path, image_size: int = 64) -> Path:
    """Return the root of the digits tree (``train/ valid/ test/``), writing it if absent."""
    from sklearn.datasets import load_digits  # scikit-learn is needed here only

    if image_size < 8:
        raise ValueError(f"image_size: {image_size} is smaller than the digits' native 8 px")
    digits = load_digits()
    images = digits.images  # float, 0..16
    labels = digits.target
    key = hashlib.sha256()
    for part in (images.astype("float64").tobytes(), labels.astype("int64").tobytes(),
                 f"{image_size}:{SPLIT_SEED}:{TREE_FORMAT}".encode()):
        key.update(part)
    cache_root = Path(cache_root)
    root = cache_root / f"digits-{image_size}px-{key.hexdigest()[:16]}"
    if root.is_dir():
        return root
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".digits-staging-", dir=cache_root))
    try:
        _write_tree(staging, images, labels, image_size)
        try:
            # Atomic: a reader sees either no tree or a complete one.
            os.rename(staging, root)
        except OSError:
            if not root.is_dir():  # not a concurrent writer that won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def _write_tree(dest: Path, images, labels, image_size: int) -> None:
    import numpy as np
    from PIL import Image
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    train_idx, rest_idx = train_test_split(
        indices, train_size=SPLIT_FRACTIONS["train"], stratify=labels, random_state=SPLIT_SEED
    )
    valid_share = SPLIT_FRACTIONS["valid"] / (SPLIT_FRACTIONS["valid"] + SPLIT_FRACTIONS["test"])
    valid_idx, test_idx = train_test_split(
        rest_idx, train_size=valid_share, stratify=labels[rest_idx], random_state=SPLIT_SEED
    )
    for split, idx in (("train", train_idx), ("valid", valid_idx), ("test", test_idx)):
        for i in sorted(idx):
            folder = dest / split / str(labels[i])
            folder.mkdir(parents=True, exist_ok=True)
            grey = np.clip(images[i] * (255.0 / 16.0), 0, 255).astype(np.uint8)
            picture = Image.fromarray(grey).resize((image_size, image_size), Image.BICUBIC)
            picture.convert("RGB").save(folder / f"{i:04d}.png", optimize=False)
