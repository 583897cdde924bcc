"""Shared fixtures: the embedded AWS emulator and targets on it (loopback only)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import pytest

_names = itertools.count(1)

# Fuzz and fault tests (issue 13) run a fixed sample by default, so `make test` keeps its budget;
# `pytest --exhaustive` (or SAGEGATE_EXHAUSTIVE=1) runs every case and every generated example.
EXHAUSTIVE_ENV = "SAGEGATE_EXHAUSTIVE"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--exhaustive", action="store_true",
                     help="run every case of the fuzz and fault tests (default: a fixed sample)")


def pytest_configure(config: pytest.Config) -> None:
    import os

    if config.getoption("--exhaustive"):
        os.environ[EXHAUSTIVE_ENV] = "1"
    config.addinivalue_line("markers", "sampled: runs a fixed sample of its cases unless --exhaustive")


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    """One in-process moto server (with sagegate's gap filler) for the whole session.

    Tests share it: give each test its own stack name (``stack_name``) instead of resetting.
    """
    from runner.targets.emulator import Emulator

    emulator = Emulator().start()
    try:
        yield emulator.url
    finally:
        emulator.stop()


@pytest.fixture
def local_target(emulator_url: str) -> Iterator:
    """A fresh ``Target`` on the shared emulator (own clients, so event hooks stay in the test)."""
    from runner.targets import local_target as make_target

    target = make_target(emulator_url)
    try:
        yield target
    finally:
        target.close()


@pytest.fixture
def stack_name(request: pytest.FixtureRequest) -> str:
    """A stack name unique in this session (3-24 characters)."""
    words = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_"))[:12]
    return f"t{next(_names):03d}-{words}".rstrip("-")
