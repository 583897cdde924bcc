"""The endpoint server's settings (one field per ``python -m handlers.serve`` flag), validated."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

# SageMaker's pattern for endpoint and production variant names alike.
NAME_PATTERN = r"[A-Za-z0-9](?:-*[A-Za-z0-9]){0,62}"
_NAME = re.compile(f"^{NAME_PATTERN}$")
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")

DEFAULT_VARIANTS: tuple[tuple[str, float], ...] = (("AllTraffic", 1.0),)  # what the stack deploys


def default_region() -> str:
    """The region the AWS SDKs would use in a Lambda or container: ``AWS_REGION``, else us-east-1."""
    return os.environ.get("AWS_REGION") or "us-east-1"


def parse_variant(text: str) -> tuple[str, float]:
    """``NAME=WEIGHT`` (the ``--variant`` flag) as ``(name, weight)``; ValueError if malformed."""
    name, sep, weight = text.partition("=")
    if not sep:
        raise ValueError(f"a variant is NAME=WEIGHT, got {text!r}")
    return name.strip(), float(weight)


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server needs; the CLI flags map one to one."""

    model_dir: str
    host: str = "127.0.0.1"
    port: int = 0
    endpoint_name: str | None = None  # None: answer any name on the runtime path
    region: str = field(default_factory=default_region)  # shown in ModelError's LogStreamArn
    # (name, weight) pairs; the runtime path picks one by weight, as SageMaker routes traffic.
    variants: tuple[tuple[str, float], ...] = DEFAULT_VARIANTS
    workers: int = 1
    max_body_bytes: int = 6 * 1024 * 1024  # SageMaker real-time payload limit
    max_connections: int = 64
    max_queued_images: int = 256
    max_batch: int = 32
    # The longest a batch waits for requests about to arrive (handlers/batching.py says which).
    max_batch_delay_ms: float = 5.0
    request_timeout_s: float = 60.0  # SageMaker's model response limit
    idle_timeout_s: float = 30.0  # a silent connection is closed after this (slow clients)
    torch_threads: int | None = None  # per worker; None: the usable cores // workers

    def __post_init__(self) -> None:
        # Callers pass lists (CLI, JSON, spawn_server); a tuple keeps the config hashable and frozen.
        variants = tuple((str(name), float(weight)) for name, weight in self.variants)
        object.__setattr__(self, "variants", variants)

    def validate(self) -> ServerConfig:
        for name in ("workers", "max_body_bytes", "max_connections", "max_queued_images", "max_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError(f"torch_threads must be at least 1, got {self.torch_threads}")
        if self.max_batch_delay_ms < 0 or self.request_timeout_s <= 0 or self.idle_timeout_s <= 0:
            raise ValueError("max_batch_delay_ms must be >= 0 and the timeouts > 0")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")
        if self.endpoint_name is not None and not _NAME.match(self.endpoint_name):
            raise ValueError(f"endpoint_name {self.endpoint_name!r} is not a valid SageMaker endpoint name")
        if not _REGION.match(self.region):
            raise ValueError(f"region {self.region!r} is not an AWS region name such as us-east-1")
        self._validate_variants()
        return self

    def _validate_variants(self) -> None:
        names = [name for name, _ in self.variants]
        if not names:
            raise ValueError("variants: at least one production variant is needed")
        if len(set(names)) != len(names):
            raise ValueError(f"variants: names must be unique, got {names}")
        for name, weight in self.variants:
            if not _NAME.match(name):
                raise ValueError(f"variants: {name!r} is not a valid SageMaker variant name")
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"variants: the weight of {name} must be a finite number >= 0, got {weight}")
        if sum(weight for _, weight in self.variants) <= 0:
            raise ValueError("variants: at least one weight must be above 0, or no request could be routed")
