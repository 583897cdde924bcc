import os
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from training.config import DataLocation, Hyperparameters
from training.data import load_splits
from training.datasets.digits import ensure_digits
from training.errors import DataError

HP = Hyperparameters(image_size=16)


def load(root: Path, **overrides: object):
    hp = Hyperparameters(**{"image_size": 16, **overrides})
    return load_splits(DataLocation(root=str(root)), hp, root.parent / "cache", warn=lambda _m: None)


def test_digits_tree_is_stratified_70_15_15(digits16: Path) -> None:
    counts = {split: Counter(p.parent.name for p in (digits16 / split).rglob("*.png"))
              for split in ("train", "valid", "test")}
    totals = {split: sum(c.values()) for split, c in counts.items()}
    assert totals == {"train": 1257, "valid": 270, "test": 270}
    assert all(set(c) == {str(d) for d in range(10)} for c in counts.values())
    for digit in map(str, range(10)):  # every class keeps its share in every split
        share = counts["train"][digit] / sum(counts[s][digit] for s in counts)
        assert 0.65 < share < 0.75
    with Image.open(next((digits16 / "test" / "3").iterdir())) as img:
        assert img.size == (16, 16) and img.mode == "RGB"


def test_digits_tree_is_cached_by_content(digits16: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in (digits16 / "valid").rglob("*.png")}
    assert ensure_digits(digits16.parent, image_size=16) == digits16
    assert {p: p.stat().st_mtime_ns for p in (digits16 / "valid").rglob("*.png")} == before
    assert not [p for p in digits16.parent.iterdir() if p.name.startswith(".digits-staging")]


def test_splits_decode_to_uint8_tensors(tiny_digits: Path) -> None:
    splits = load(tiny_digits)
    assert splits.classes == tuple(str(d) for d in range(10))
    assert tuple(splits.train.images.shape) == (80, 3, 16, 16)
    assert (len(splits.valid), len(splits.test), splits.skipped) == (40, 40, 0)
    assert splits.train.labels.tolist() == sorted(splits.train.labels.tolist())  # ImageFolder order


def test_missing_split_names_the_path(make_tree: Callable[[], Path]) -> None:
    root = make_tree()
    shutil.rmtree(root / "valid")
    with pytest.raises(DataError, match=f"missing valid split: {root / 'valid'}"):
        load(root)


def test_empty_class_folder_names_the_folder(make_tree: Callable[[], Path]) -> None:
    root = make_tree()
    for image in (root / "test" / "7").iterdir():
        image.unlink()
    (root / "test" / "7" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=f"empty class folder: {root / 'test' / '7'}"):
        load(root)


def test_class_sets_that_differ_between_splits(make_tree: Callable[[], Path]) -> None:
    root = make_tree()
    os.rename(root / "test" / "9", root / "test" / "nine")
    with pytest.raises(DataError, match=r"class folders differ.*lacks \['9'\].*extra \['nine'\]"):
        load(root)


def _corrupt_one(root: Path) -> Path:
    bad = root / "train" / "4" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    return bad


def test_unreadable_image_is_skipped_and_counted(make_tree: Callable[[], Path]) -> None:
    root = make_tree()
    bad = _corrupt_one(root)
    warnings: list[str] = []
    splits = load_splits(DataLocation(root=str(root)), HP, root / "cache", warn=warnings.append)
    assert splits.skipped == 1 and splits.train.skipped == (bad,)
    assert len(splits.train) == 80
    assert any(str(bad) in w for w in warnings) and any("skipped 1" in w for w in warnings)


def test_unreadable_image_is_fatal_when_asked(make_tree: Callable[[], Path]) -> None:
    root = make_tree()
    bad = _corrupt_one(root)
    with pytest.raises(DataError, match=f"unreadable image {bad}"):
        load(root, on_bad_image="fail")


def test_parallel_decoding_gives_the_same_tensors(tiny_digits: Path) -> None:
    serial, parallel = load(tiny_digits), load(tiny_digits, num_workers=2)
    assert serial.train.images.equal(parallel.train.images)
    assert serial.test.labels.equal(parallel.test.labels)


def test_s3_dataset_is_synced_down(tiny_digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    moto = pytest.importorskip("moto")
    import boto3

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with moto.mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="data")
        for path in tiny_digits.rglob("*.png"):
            s3.upload_file(str(path), "data", f"digits/{path.relative_to(tiny_digits).as_posix()}")
        hp = Hyperparameters(image_size=16)
        splits = load_splits(DataLocation(root="s3://data/digits"), hp, tmp_path / "cache", warn=lambda _m: None)
        assert (len(splits.train), len(splits.valid), len(splits.test)) == (80, 40, 40)
        with pytest.raises(DataError, match="s3://data/nothing"):
            load_splits(DataLocation(root="s3://data/nothing"), hp, tmp_path / "cache", warn=lambda _m: None)
