"""Every option of every config group, and every experiment preset, composes and validates; a bad
value in any group is rejected with its key; and each option states only what it changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from omegaconf import OmegaConf
from runner_helpers import NOTEBOOK

from runner.app.compose import CONF_DIR, compose_config, compose_settings
from runner.core.errors import ConfigError
from runner.core.settings import Settings

GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir())
OPTIONS = [(group, f.stem) for group in GROUPS for f in sorted((CONF_DIR / group).glob("*.yaml"))]
DEFAULT_OPTIONS = {group: option for entry in yaml.safe_load((CONF_DIR / "config.yaml").read_text())["defaults"]
                   if isinstance(entry, dict) for group, option in entry.items() if "/" not in group}

# Options that only validate together with another group's option.
COMPANIONS: dict[tuple[str, str], list[str]] = {
    ("hpo", "sagemaker_tuner"): ["training=sagemaker"],
    # No direct internet access: SageMaker needs the notebook in a subnet (SG-AWS-001/002).
    ("notebook", "t3_medium"): list(NOTEBOOK[1:]),
    ("experiment", "reference_2023"): list(NOTEBOOK[1:]),
}


def _read(group: str, option: str) -> dict[str, Any]:
    return yaml.safe_load((CONF_DIR / group / f"{option}.yaml").read_text()) or {}


def _ids(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{group}={option}" for group, option in pairs]


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=_ids(OPTIONS))
def test_every_option_loads(group: str, option: str) -> None:
    assert isinstance(compose_settings([f"{group}={option}", *COMPANIONS.get((group, option), [])]), Settings)


def test_the_companions_are_needed() -> None:
    for (group, option), companions in COMPANIONS.items():
        with pytest.raises(ConfigError):
            compose_settings([f"{group}={option}"])
        compose_settings([f"{group}={option}", *companions])


def test_every_group_is_in_the_defaults_list() -> None:
    assert sorted(DEFAULT_OPTIONS) == GROUPS
    assert DEFAULT_OPTIONS["experiment"] is None


# One value per group that the schema refuses, and the key the message must start with.
BAD_VALUES: dict[str, tuple[list[str], str]] = {
    "target": (["target.kind=moon"], "target.kind"),
    "data": (["data.image_size=8"], "data.image_size"),
    "model": (["model.arch=vgg16"], "model.arch"),
    "training": (["training.epochs=0"], "training.epochs"),
    "hpo": (["hpo.strategy=Genetic"], "hpo.strategy"),
    "endpoint": (["endpoint.kind=batch"], "endpoint.kind"),
    "autoscaling": (["autoscaling.max_capacity=1001"], "autoscaling.max_capacity"),
    "function": (["function.architecture=sparc"], "function.architecture"),
    "iam": (["iam.roles.lambda_invoke.used_by=[everything]"], "iam.roles.lambda_invoke.used_by[0]"),
    "notebook": (["notebook.root_access=Sometimes"], "notebook.root_access"),
    "policy": (["policy.fail_on=severe"], "policy.fail_on"),
    "pricing": (["pricing.spot_discount=1.5"], "pricing.spot_discount"),
    "traffic": (["traffic.minutes=0"], "traffic.minutes"),
    "experiment": (["experiment=production", "endpoint.variants.AllTraffic.initial_instance_count=1"], "endpoint.variants.AllTraffic.initial_instance_count"),
}


def test_every_group_has_a_bad_value_case() -> None:
    assert sorted(BAD_VALUES) == GROUPS


@pytest.mark.parametrize("group", sorted(BAD_VALUES))
def test_a_bad_value_in_each_group_names_its_key(group: str) -> None:
    overrides, key = BAD_VALUES[group]
    with pytest.raises(ConfigError) as caught:
        compose_settings(overrides)
    assert str(caught.value).startswith(f"{key}: "), caught.value


# Traffic profiles share only profile, minutes and seed: each states its own keys, and a key of
# another profile is refused (runner/capacity/traffic.py), so none inherits from another.
STANDALONE_GROUPS = {"traffic"}
INHERITING = [(g, o) for g, o in OPTIONS if DEFAULT_OPTIONS.get(g) not in (None, o) and g not in STANDALONE_GROUPS]
NOT_DEFAULT = [(g, o) for g, o in OPTIONS if DEFAULT_OPTIONS.get(g) != o and g not in STANDALONE_GROUPS]


@pytest.mark.parametrize(("group", "option"), INHERITING, ids=_ids(INHERITING))
def test_an_option_starts_from_its_group_default(group: str, option: str) -> None:
    """Inheritance leads back to the group's default option, which alone sets every key."""
    seen = [option]
    while (parents := _read(group, seen[-1]).get("defaults")) is not None:
        assert isinstance(parents, list) and len(parents) == 1 and isinstance(parents[0], str), parents
        assert parents[0] not in seen, f"{group}: a cycle through {seen}"
        seen.append(parents[0])
    assert seen[-1] == DEFAULT_OPTIONS[group], f"conf/{group}/{option}.yaml: {' -> '.join(seen)}"


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, node


def _value(config: dict, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return KeyError
        node = node[part]
    return node


@pytest.mark.parametrize(("group", "option"), NOT_DEFAULT, ids=_ids(NOT_DEFAULT))
def test_an_option_states_only_what_it_changes(group: str, option: str) -> None:
    body = _read(group, option)
    defaults = body.pop("defaults", [])
    if group == "experiment":
        # A preset's values are global; they differ from what the options it picks give.
        picks = [f"{key.removeprefix('override /')}={value}" for entry in defaults for key, value in entry.items()]
        base = OmegaConf.to_container(compose_config(picks), resolve=True)
        assert not [p for p in picks if p in (f"{g}={o}" for g, o in DEFAULT_OPTIONS.items())], \
            f"conf/experiment/{option}.yaml picks a group's default option: {picks}"
    else:
        base = {group: OmegaConf.to_container(compose_config([f"{group}={defaults[0]}"])[group], resolve=True)}
        body = {group: body}
    restated = [key for key, value in _leaves(body) if _value(base, key) == value]
    assert not restated, f"conf/{group}/{option}.yaml restates what it inherits: {restated}"
