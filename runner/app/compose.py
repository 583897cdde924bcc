"""Compose sagegate's config outside ``@hydra.main`` (tests, sweep pre-computation, scripts)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from runner.core.settings import Settings, load_settings

if TYPE_CHECKING:
    from hydra.core.override_parser.types import Override

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """The config ``python main.py OVERRIDES`` would see."""
    if GlobalHydra.instance().is_initialized():
        # Inside a running Hydra app (e.g. a callback): reuse its config search path.
        return compose(config_name="config", overrides=list(overrides))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return compose(config_name="config", overrides=list(overrides))


def _is_group(key: str) -> bool:
    return (CONF_DIR / key.split("@")[0]).is_dir()


class ComposeFailure(Exception):
    """One job's overrides cannot be composed (an unknown group option or key, an interpolation
    that does not resolve); ``key`` is the override at fault when it can be told."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


def compose_jobs(jobs: Sequence[Sequence[str]]) -> list[dict]:
    """The configs of many jobs (a sweep) as plain containers; raises the first job's
    ``ComposeFailure`` (see ``compose_each``)."""
    configs = []
    for config in compose_each(jobs):
        if isinstance(config, ComposeFailure):
            raise config
        configs.append(config)
    return configs


def compose_each(jobs: Sequence[Sequence[str]]) -> list[dict | ComposeFailure]:
    """The configs of many jobs (a sweep) as plain containers, at a fraction of Hydra's cost;
    a job that cannot be composed is its ``ComposeFailure`` instead, the other jobs still are.

    A full compose reads every YAML file (≈0.1 s); here it happens once per distinct set of group
    choices, and each job's value overrides are applied to a copy with Hydra's semantics (``key=``
    must exist, ``+key=`` adds, ``++key=`` adds or replaces, ``~key`` deletes); an override Hydra
    would refuse is a ``ComposeFailure`` naming it. Overrides of Hydra's own settings
    (``hydra.*``) do not reach sagegate's config and are skipped.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    parser = OverridesParser.create()
    bases: dict[tuple[str, ...], dict | ComposeFailure] = {}
    configs: list[dict | ComposeFailure] = []
    for overrides in jobs:
        parsed = [o for o in parser.parse_overrides(list(overrides)) if not o.key_or_group.startswith("hydra")]
        group_overrides = [o for o in parsed if _is_group(o.key_or_group)]
        groups = tuple(str(o.input_line) for o in group_overrides)
        if groups not in bases:
            try:
                container = OmegaConf.to_container(compose_config(groups), resolve=True)
                assert isinstance(container, dict)  # a composed config is a mapping
                bases[groups] = container
            except (HydraException, OmegaConfBaseException) as exc:
                bases[groups] = ComposeFailure(_group_at_fault(str(exc), group_overrides), _one_line(str(exc)))
        base = bases[groups]
        if isinstance(base, ComposeFailure):
            configs.append(base)
            continue
        config = copy.deepcopy(base)
        try:
            for override in parsed:
                if not _is_group(override.key_or_group):
                    _apply_override(config, override)
        except HydraException as exc:
            configs.append(ComposeFailure("", _one_line(str(exc))))
            continue
        configs.append(config)
    return configs


def _one_line(message: str) -> str:
    """Hydra's multi-line composition errors as one line, without the config search path."""
    return " ".join(message.split("Config search path")[0].split())


def _group_at_fault(message: str, group_overrides: Sequence[Override]) -> str:
    keys = [str(o.key_or_group) for o in group_overrides]
    named = [key for key in keys if f"'{key.split('@')[0]}/" in message or f"'{key}'" in message]
    return (named or keys or [""])[0] if len(named) == 1 or len(keys) == 1 else ", ".join(named or keys)


def _apply_override(config: dict, override: Override) -> None:
    from hydra.errors import ConfigCompositionException

    *path, last = override.key_or_group.split(".")
    node = config
    for part in path:
        if not isinstance(node.get(part), dict):
            raise ConfigCompositionException(f"Could not override '{override.key_or_group}': "
                                             f"'{part}' is not in the config")
        node = node[part]
    if override.is_delete():
        node.pop(last, None)
    elif last in node or override.is_add() or override.is_force_add():
        node[last] = override.value()
    else:
        raise ConfigCompositionException(f"Could not override '{override.key_or_group}'. "
                                         f"To append to your config use +{override.input_line}")


def compose_settings(overrides: Sequence[str] = ()) -> Settings:
    return load_settings(compose_config(overrides))
