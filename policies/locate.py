"""Where a config key is set: the conf file (and line) a report points at.

A key like ``endpoint.variants.AllTraffic.instance_type`` comes from the experiment preset when it sets it, else from
the chosen option of its group (``conf/endpoint/serverless.yaml``) or the option it inherits from
(its ``defaults: [realtime]``), else from ``conf/config.yaml``.
The chosen options are Hydra's runtime choices, or the defaults list when there are none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
_KEY_LINE = re.compile(r"^(\s*)(?:-\s+)?([A-Za-z0-9_$][A-Za-z0-9_.$-]*)\s*:(?:\s|$)")
_INDEX = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class ConfLocation:
    path: str  # relative to the repository, e.g. "conf/endpoint/realtime.yaml"
    line: int | None


def default_choices(conf_dir: Path = CONF_DIR) -> dict[str, str]:
    """group -> option from ``conf/config.yaml``'s defaults list."""
    config = yaml.safe_load((conf_dir / "config.yaml").read_text()) or {}
    choices: dict[str, str] = {}
    for entry in config.get("defaults", []):
        if isinstance(entry, dict):
            for group, option in entry.items():
                if option is not None and "/" not in str(group):
                    choices[str(group).removeprefix("override ")] = str(option)
    return choices


@lru_cache(maxsize=64)
def _key_lines(path: Path) -> tuple[dict[tuple[str, ...], int], bool]:
    """Every mapping key's dotted path -> its line (1-based); and whether the file is _global_."""
    lines = path.read_text().splitlines()
    global_package = any(line.strip() == "# @package _global_" for line in lines[:5])
    found: dict[tuple[str, ...], int] = {}
    stack: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _KEY_LINE.match(line)
        if not match:
            continue
        indent = len(match.group(1)) + (2 if line.lstrip().startswith("- ") else 0)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(2)))
        found.setdefault(tuple(key for _, key in stack), number)
    return found, global_package


def _find(path: Path, key: tuple[str, ...], exact: bool) -> int | None:
    """The line of ``key`` in ``path``; unless ``exact``, of its longest prefix written there."""
    if not path.is_file():
        return None
    lines, _ = _key_lines(path)
    if exact:
        return lines.get(key)
    for length in range(len(key), 0, -1):
        if key[:length] in lines:
            return lines[key[:length]]
    return None


@lru_cache(maxsize=64)
def _option_chain(group_dir: Path, option: str) -> tuple[Path, ...]:
    """An option's file, then the options it inherits from (``defaults: [parent]`` in its group).
    Remembered, as ``_key_lines`` is: a gate locates every finding's key, a sweep's jobs the same ones."""
    chain: list[Path] = []
    path = group_dir / f"{option}.yaml"
    while path.is_file() and path not in chain:
        chain.append(path)
        defaults = (yaml.safe_load(path.read_text()) or {}).get("defaults") or []
        parents = [d for d in defaults if isinstance(d, str) and d != "_self_"]
        if not parents:
            break
        path = group_dir / f"{parents[0]}.yaml"
    return tuple(chain)


def locate(config_key: str, choices: Mapping[str, str] | None = None, conf_dir: Path = CONF_DIR) -> ConfLocation:
    """The conf file (and line, when the key is written there) that sets ``config_key``."""
    choices = dict(choices) if choices is not None else default_choices(conf_dir)
    parts = tuple(p for p in _INDEX.sub("", config_key).split(".") if p and not p.startswith("<"))
    root = conf_dir.parent
    experiment = choices.get("experiment")
    if parts and experiment and experiment not in ("null", "None"):
        path = conf_dir / "experiment" / f"{experiment}.yaml"
        line = _find(path, parts, exact=True)
        if line is not None:
            return ConfLocation(str(path.relative_to(root)), line)
    if parts and parts[0] in choices and choices[parts[0]] not in ("null", "None"):
        chain = _option_chain(conf_dir / parts[0], choices[parts[0]])
        if chain:
            _, global_package = _key_lines(chain[0])
            key = parts if global_package else parts[1:]
            if not key:
                return ConfLocation(str(chain[0].relative_to(root)), 1)
            # The option that writes the key, else the nearest one that writes part of it.
            for exact in (True, False):
                for path in chain:
                    line = _find(path, key, exact=exact)
                    if line is not None:
                        return ConfLocation(str(path.relative_to(root)), line)
            return ConfLocation(str(chain[0].relative_to(root)), None)
    path = conf_dir / "config.yaml"
    return ConfLocation(str(path.relative_to(root)), _find(path, parts, exact=False) if parts else None)
