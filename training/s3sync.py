"""Sync an s3:// prefix down to a local folder (boto3; endpoint from the environment).

botocore reads AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL itself, so the local target's emulator
needs no special path here.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from training.errors import DataError


def is_s3_uri(location: str) -> bool:
    return str(location).startswith("s3://")


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    if not bucket:
        raise DataError(f"{uri!r} is not an s3://bucket/prefix URI")
    return bucket, prefix.strip("/")


def sync_s3_prefix(uri: str, dest: Path) -> Path:
    """Download every object under ``uri`` to ``dest`` (files already there with the same size stay)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split_s3_uri(uri)
    dest = Path(dest) / bucket / prefix
    client = boto3.client("s3")
    count = 0
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/" if prefix else ""):
            for obj in page.get("Contents", []):
                relative = PurePosixPath(obj["Key"][len(prefix):].lstrip("/")) if prefix else PurePosixPath(obj["Key"])
                if obj["Key"].endswith("/") or not relative.parts:
                    continue
                if ".." in relative.parts:
                    raise DataError(f"refusing object key {obj['Key']!r} in {uri}: it escapes the prefix")
                target = dest.joinpath(*relative.parts)
                count += 1
                if target.is_file() and target.stat().st_size == obj["Size"]:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + ".partial")
                client.download_file(bucket, obj["Key"], str(partial))
                partial.replace(target)
    except (BotoCoreError, ClientError) as exc:
        raise DataError(f"cannot read dataset {uri}: {exc}") from exc
    if count == 0:
        raise DataError(f"dataset {uri} is empty (no objects under that prefix)")
    return dest
