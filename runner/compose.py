"""Compose sagegate's config outside ``@hydra.main`` (tests, sweep pre-computation, scripts)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from runner.settings import Settings, load_settings

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """The config ``python main.py OVERRIDES`` would see."""
    if GlobalHydra.instance().is_initialized():
        # Inside a running Hydra app (e.g. a callback): reuse its config search path.
        return compose(config_name="config", overrides=list(overrides))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return compose(config_name="config", overrides=list(overrides))


def compose_settings(overrides: Sequence[str] = ()) -> Settings:
    return load_settings(compose_config(overrides))
