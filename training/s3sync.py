"""Sync an s3:// prefix down to a local folder, and put one file (boto3; endpoint from the environment).

``python -m training.s3sync put FILE s3://bucket/key`` uploads one file (the EC2 instance's user
data uploads model.tar.gz with it, on the instance profile's credentials).

botocore reads AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL itself, so the local target's emulator
needs no special path here.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from training.errors import DataError

SYNC_WORKERS = 16


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
    pending: list[tuple[str, Path]] = []
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
                pending.append((obj["Key"], target))

        def fetch(item: tuple[str, Path]) -> None:
            key, target = item
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            with partial.open("wb") as out:
                shutil.copyfileobj(client.get_object(Bucket=bucket, Key=key)["Body"], out)
            partial.replace(target)

        # Many small objects (an image data set): fetched side by side, each a single GET.
        with ThreadPoolExecutor(max_workers=SYNC_WORKERS) as pool:
            for _ in pool.map(fetch, pending):
                pass
    except (BotoCoreError, ClientError) as exc:
        raise DataError(f"cannot read dataset {uri}: {exc}") from exc
    if count == 0:
        raise DataError(f"dataset {uri} is empty (no objects under that prefix)")
    return dest


def put_file(path: Path, uri: str) -> str:
    """Upload ``path`` to the object ``uri`` (s3://bucket/key); returns the URI."""
    import boto3

    bucket, key = split_s3_uri(uri)
    if not key:
        raise DataError(f"{uri!r} names no object key")
    boto3.client("s3").upload_file(str(path), bucket, key)
    return uri


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or args[0] != "put" or not is_s3_uri(args[2]):
        print("usage: python -m training.s3sync put FILE s3://bucket/key", file=sys.stderr)
        return 2
    if not Path(args[1]).is_file():
        print(f"error: {args[1]} is not a file", file=sys.stderr)
        return 2
    print(f"uploaded {args[1]} to {put_file(Path(args[1]), args[2])}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
