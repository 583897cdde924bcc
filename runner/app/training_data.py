"""Where the training data is: the built-in digits, a local folder, or an s3:// prefix."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from botocore.exceptions import ClientError

from runner.core.errors import UserError
from runner.core.settings import Settings
from runner.targets import Target, open_target


def local_data_dir(settings: Settings, target: Target | None = None) -> Path:
    """The ImageFolder tree on this machine: the built-in digits, a local path, or S3 synced down."""
    source = settings.data.source
    if source == "builtin:digits":
        from training.datasets.digits import ensure_digits  # scikit-learn: only when it is used

        return ensure_digits(Path(settings.workdir) / "data", settings.data.image_size)
    if source.startswith("builtin:"):
        raise UserError(f"data.source: unknown built-in data set {source!r}; known: builtin:digits")
    if source.startswith("s3://"):
        from training.s3sync import sync_s3_prefix

        with _opened(settings, target) as opened, _child_aws_environment(opened.child_env()):
            require_s3_data(settings, opened)
            return sync_s3_prefix(source, Path(settings.workdir) / "data" / "s3")
    path = Path(source).expanduser()
    if not path.is_dir():
        raise UserError(f"data.source: {path} is not a folder (expected train/ valid/ test/ inside)")
    return path


def require_s3_data(settings: Settings, target: Target) -> None:
    """An s3:// data set must hold objects before a launcher creates roles and jobs for it."""
    source = settings.data.source
    if not source.startswith("s3://"):
        return
    bucket, _, prefix = source[len("s3://"):].partition("/")
    try:
        found = target.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix.strip("/") + "/", MaxKeys=1)
    except ClientError as exc:
        found = {"error": exc.response.get("Error", {}).get("Code", str(exc))}
    if not found.get("KeyCount"):
        where = "the local emulator's S3 starts empty: use data=digits or a local folder" \
            if target.jobs_run_here else "point data.source at your train/ valid/ test/ tree"
        reason = found.get("error", "no objects")
        raise UserError(f"data.source: {source} cannot be read ({reason}); {where}")


@contextlib.contextmanager
def _opened(settings: Settings, target: Target | None) -> Iterator[Target]:
    if target is not None:
        yield target
        return
    with open_target(settings) as opened:
        yield opened


@contextlib.contextmanager
def _child_aws_environment(env: dict[str, str]) -> Iterator[None]:
    """boto3 default clients (training's S3 sync) see the target for the duration of the block."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
