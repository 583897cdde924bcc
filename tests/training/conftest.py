"""Fixtures for the training package's tests: tiny real datasets, made once per session."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from training_helpers import TINY_SIZE, copy_subset

from training.datasets.digits import ensure_digits


@pytest.fixture(scope="session")
def digits16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full digits tree at 16 px (1257/270/270 images)."""
    return ensure_digits(tmp_path_factory.mktemp("digits-cache"), image_size=TINY_SIZE)


@pytest.fixture(scope="session")
def tiny_digits(digits16: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 classes x (8 train, 4 valid, 4 test) images of 16 px: a run takes well under a second."""
    return copy_subset(digits16, tmp_path_factory.mktemp("tiny") / "digits",
                       {"train": 8, "valid": 4, "test": 4})


@pytest.fixture(scope="session")
def small_digits(digits16: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 classes x (20 train, 5 valid, 5 test) images of 16 px: epochs of a fraction of a second."""
    return copy_subset(digits16, tmp_path_factory.mktemp("small") / "digits",
                       {"train": 20, "valid": 5, "test": 5})


@pytest.fixture
def make_tree(tiny_digits: Path, tmp_path: Path) -> Callable[[], Path]:
    """A fresh, writable copy of the tiny tree (for tests that break it)."""
    def make() -> Path:
        dest = tmp_path / "data"
        shutil.copytree(tiny_digits, dest)
        return dest
    return make
