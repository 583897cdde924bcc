"""The PyTorch Deep Learning Container for a framework and Python version, region, instance type
and scope: one lookup, used by the settings' validation (a version with no image is refused
with the key named) and by the stack's builders, so the two cannot disagree.

sagemaker-core's lookup is offline but importing the SDK costs 0.1-1.4 s, paid by every run that
validates a config. Its answers (an image URI, or the SDK's ValueError message) are kept on disk
(``$SAGEGATE_CACHE_DIR``, else ``$XDG_CACHE_HOME/sagegate`` or ``~/.cache/sagegate``) keyed by
the installed sagemaker-core version and its PyTorch image database's size and mtime, so another
SDK or an edited database is looked up afresh; a cache that cannot be read or written is ignored.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

CACHE_ENV = "SAGEGATE_CACHE_DIR"


def _cache_file() -> Path | None:
    """This SDK's answers file; None when sagemaker-core is not installed as a distribution."""
    from importlib import metadata

    try:
        dist = metadata.distribution("sagemaker-core")
        database = Path(str(dist.locate_file("sagemaker/core/image_uri_config/pytorch.json")))
        stat = database.stat()
    except (metadata.PackageNotFoundError, OSError):
        return None
    root = os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sagegate"
    return Path(root) / f"image-uris-{dist.version}-{stat.st_size}-{stat.st_mtime_ns}.json"


@lru_cache(maxsize=1)
def _answers() -> tuple[Path | None, dict[str, Any]]:
    path = _cache_file()
    try:
        answers = json.loads(path.read_text()) if path is not None else {}
    except (OSError, ValueError):
        answers = {}
    return path, answers if isinstance(answers, dict) else {}


def _remember(key: str, answer: dict[str, str]) -> None:
    path, answers = _answers()
    answers[key] = answer
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(answers, sort_keys=True))
        partial.replace(path)  # atomic; a concurrent writer's answers may be lost, never mixed
    except OSError:
        pass


@lru_cache(maxsize=32)
def image_uri(framework_version: str, py_version: str, region: str, instance_type: str, scope: str) -> str:
    """The image URI, from sagemaker-core's offline image database (or its remembered answer).
    Raises the SDK's ValueError for a combination it has no image for."""
    key = json.dumps([framework_version, py_version, region, instance_type, scope])
    answer = _answers()[1].get(key)
    if isinstance(answer, dict) and isinstance(answer.get("uri"), str):
        return answer["uri"]
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        raise ValueError(answer["error"])
    from sagemaker.core import image_uris  # ≈0.1-1.4 s; only when an answer is not on disk yet

    try:
        uri = image_uris.retrieve(
            "pytorch", region=region, version=framework_version, py_version=py_version,
            instance_type=instance_type, image_scope=scope,
        )
    except ValueError as exc:  # the SDK's "Unsupported ..." answer: the same message next time
        _remember(key, {"error": str(exc)})
        raise
    _remember(key, {"uri": uri})
    return uri
