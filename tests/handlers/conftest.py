"""Fixtures for the handlers: a tiny real model artifact, images, a running local endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from handlers_testkit import ENDPOINT_NAME, image_bytes, write_artifact, write_tarball


@dataclass(frozen=True)
class Artifact:
    directory: Path
    tarball: Path


@pytest.fixture(scope="session")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    root = tmp_path_factory.mktemp("artifact")
    directory = write_artifact(root / "model")
    return Artifact(directory, write_tarball(directory, root / "model.tar.gz"))


@pytest.fixture(scope="session")
def poisoned_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_artifact(tmp_path_factory.mktemp("poisoned") / "model", poison=True)


@pytest.fixture(scope="session")
def loaded_model(artifact: Artifact):
    from handlers import inference

    return inference.model_fn(str(artifact.directory))


@pytest.fixture(scope="session")
def png() -> bytes:
    return image_bytes("PNG")


@pytest.fixture(scope="session")
def jpeg() -> bytes:
    return image_bytes("JPEG", color=(10, 120, 240))


@pytest.fixture(scope="session")
def server(artifact: Artifact):
    """The local endpoint, in this process, for the whole session."""
    from handlers.serve import start_server

    handle = start_server(str(artifact.directory), endpoint_name=ENDPOINT_NAME)
    yield handle
    handle.stop()
