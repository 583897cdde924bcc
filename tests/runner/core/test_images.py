"""The image lookup's answers on disk (runner/core/images.py): the SDK's answer, remembered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.core import images


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(images.CACHE_ENV, str(tmp_path))
    images.image_uri.cache_clear()
    images._answers.cache_clear()
    yield tmp_path
    images.image_uri.cache_clear()
    images._answers.cache_clear()


def test_answers_are_remembered_and_give_the_same_uri_and_error(fresh: Path):
    uri = images.image_uri("2.5.1", "py311", "us-east-1", "ml.m5.xlarge", "training")
    with pytest.raises(ValueError) as refused:
        images.image_uri("1.0.0", "py311", "us-east-1", "ml.m5.xlarge", "training")
    (stored,) = fresh.glob("image-uris-*.json")
    answers = json.loads(stored.read_text())
    assert {"uri": uri} in answers.values() and {"error": str(refused.value)} in answers.values()

    images.image_uri.cache_clear()
    images._answers.cache_clear()
    assert images.image_uri("2.5.1", "py311", "us-east-1", "ml.m5.xlarge", "training") == uri
    with pytest.raises(ValueError, match="^" + __import__("re").escape(str(refused.value)) + "$"):
        images.image_uri("1.0.0", "py311", "us-east-1", "ml.m5.xlarge", "training")


def test_the_file_is_per_sdk_version_and_database(fresh: Path):
    from importlib import metadata

    path = images._cache_file()
    assert path is not None and path.parent == fresh
    assert metadata.version("sagemaker-core") in path.name


def test_an_unreadable_file_is_ignored(fresh: Path):
    path = images._cache_file()
    assert path is not None
    path.write_text("{not json")
    assert images.image_uri("2.5.1", "py311", "us-east-1", "ml.m5.xlarge", "training").endswith(":2.5.1-cpu-py311")
