"""ImageFolder splits, checked and decoded once into memory.

Every image is decoded and resized a single time (in ``num_workers`` processes when asked) and
kept as uint8; epochs then index tensors instead of decoding files again, which is where the
original loop spent much of its time. Normalisation happens per batch (see ``to_model_input``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import functional as TF

from training.config import DataLocation, Hyperparameters
from training.errors import DataError
from training.s3sync import is_s3_uri, sync_s3_prefix

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# PIL's errors for unreadable, truncated or hostile files.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


@dataclass(frozen=True)
class SplitListing:
    role: str  # train | valid | test
    root: Path
    classes: tuple[str, ...]
    samples: tuple[tuple[Path, int], ...]


@dataclass
class ImageSet:
    """One decoded split: ``images`` uint8 N×3×S×S, ``labels`` int64 N."""

    role: str
    root: Path
    classes: tuple[str, ...]
    images: torch.Tensor
    labels: torch.Tensor
    skipped: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Splits:
    train: ImageSet
    valid: ImageSet
    test: ImageSet

    @property
    def classes(self) -> tuple[str, ...]:
        return self.train.classes

    @property
    def skipped(self) -> int:
        return len(self.train.skipped) + len(self.valid.skipped) + len(self.test.skipped)


def split_folders(location: DataLocation, hp: Hyperparameters, cache_dir: Path) -> dict[str, Path]:
    """Local folders of the three splits; an s3:// location is synced down first."""
    if location.root is not None:
        root = sync_s3_prefix(location.root, cache_dir) if is_s3_uri(location.root) else Path(location.root)
        if not root.is_dir():
            raise DataError(f"dataset folder {root} does not exist")
        return {"train": root / hp.train_split, "valid": root / hp.valid_split, "test": root / hp.test_split}
    given = {"train": location.train, "valid": location.valid, "test": location.test}
    return {
        role: sync_s3_prefix(where, cache_dir / role) if is_s3_uri(where) else Path(where)
        for role, where in given.items()
        if where is not None
    }


def list_split(root: Path, role: str) -> SplitListing:
    """The class folders of one split and their image files (ImageFolder's order: sorted)."""
    if not root.is_dir():
        raise DataError(f"missing {role} split: {root} is not a folder (expected one sub-folder per class)")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise DataError(f"{role} split {root} has no class folders")
    classes = tuple(d.name for d in class_dirs)
    samples: list[tuple[Path, int]] = []
    for index, folder in enumerate(class_dirs):
        files = sorted(
            f for f in folder.rglob("*")
            if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith(".")
        )
        if not files:
            raise DataError(f"empty class folder: {folder} holds no images ({' '.join(IMAGE_EXTENSIONS)})")
        samples.extend((f, index) for f in files)
    return SplitListing(role, root, classes, tuple(samples))


def check_same_classes(listings: list[SplitListing]) -> None:
    reference = listings[0]
    for other in listings[1:]:
        if other.classes != reference.classes:
            missing = sorted(set(reference.classes) - set(other.classes))
            extra = sorted(set(other.classes) - set(reference.classes))
            raise DataError(
                f"class folders differ between splits: {other.root} lacks {missing} and has extra {extra} "
                f"compared with {reference.root}"
            )


def decode_image(path: Path, image_size: int) -> torch.Tensor:
    """RGB convert -> resize to image_size×image_size -> uint8 tensor (docs/contracts.md)."""
    with Image.open(path) as img:
        rgb = img.convert("RGB")
    return TF.pil_to_tensor(TF.resize(rgb, [image_size, image_size]))


class _DecodeFiles(Dataset):
    """Decodes files for a DataLoader, reporting failures instead of raising in a worker."""

    def __init__(self, samples: tuple[tuple[Path, int], ...], image_size: int) -> None:
        self.samples = samples
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str]:
        path = self.samples[index][0]
        try:
            return index, decode_image(path, self.image_size), ""
        except DECODE_ERRORS as exc:
            return index, None, f"{type(exc).__name__}: {exc}"


def _keep_list(batch: list) -> list:
    return batch


def decode_split(listing: SplitListing, hp: Hyperparameters, warn: Callable[[str], None]) -> ImageSet:
    loader = DataLoader(
        _DecodeFiles(listing.samples, hp.image_size),
        batch_size=64,
        num_workers=hp.num_workers,
        collate_fn=_keep_list,
    )
    size = hp.image_size
    images = torch.empty((len(listing.samples), 3, size, size), dtype=torch.uint8)
    keep = torch.zeros(len(listing.samples), dtype=torch.bool)
    skipped: list[Path] = []
    for batch in loader:
        for index, tensor, error in batch:
            if tensor is None:
                path = listing.samples[index][0]
                if hp.on_bad_image == "fail":
                    raise DataError(f"unreadable image {path}: {error} (on_bad_image=fail)")
                skipped.append(path)
                warn(f"skipping unreadable image {path}: {error}")
                continue
            images[index] = tensor
            keep[index] = True
    labels = torch.tensor([label for _, label in listing.samples], dtype=torch.int64)
    if not bool(keep.any()):
        raise DataError(f"{listing.role} split {listing.root}: no readable image")
    if skipped:
        warn(f"{listing.role} split {listing.root}: skipped {len(skipped)} unreadable image(s)")
    return ImageSet(listing.role, listing.root, listing.classes, images[keep], labels[keep], tuple(skipped))


def load_splits(
    location: DataLocation, hp: Hyperparameters, cache_dir: Path, warn: Callable[[str], None] = print
) -> Splits:
    """Check the three splits (all present, same classes, no empty class) and decode them."""
    folders = split_folders(location, hp, cache_dir)
    listings = [list_split(folders[role], role) for role in ("train", "valid", "test")]
    check_same_classes(listings)
    train, valid, test = (decode_split(listing, hp, warn) for listing in listings)
    return Splits(train, valid, test)


def normalizer(mean: tuple[float, ...], std: tuple[float, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 batch -> float batch, equal to ToTensor() then Normalize(mean, std)."""
    scale = torch.tensor(std).view(1, 3, 1, 1) * 255.0
    shift = torch.tensor(mean).view(1, 3, 1, 1) * 255.0

    def to_model_input(batch: torch.Tensor) -> torch.Tensor:
        return (batch.float() - shift) / scale

    return to_model_input


def augment_batch(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and shifts of up to 1/8 of the size (uint8 in, uint8 out)."""
    n, _, height, width = batch.shape
    flip = torch.rand(n, generator=generator) < 0.5
    batch = torch.where(flip.view(n, 1, 1, 1), batch.flip(3), batch)
    pad = max(1, height // 8)
    padded = torch.nn.functional.pad(batch.float(), (pad, pad, pad, pad), mode="reflect").to(torch.uint8)
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator).tolist()
    return torch.stack([padded[i, :, dy:dy + height, dx:dx + width] for i, (dy, dx) in enumerate(offsets)])
