"""S3: the stack's bucket (private, encrypted, tagged), model artifacts and the function's code.

Artifacts and code are content-addressed, so the key is known before anything is uploaded (the
gate checks a template that names it) and an upload happens once.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any

from boto3.exceptions import S3UploadFailedError

from runner.core.errors import UserError
from runner.core.names import STACK_TAG, ResourceNames
from runner.deploy.drivers import ForeignResourceError
from runner.deploy.drivers.base import error_code
from runner.stack.function_package import build_function_package
from runner.stack.model import Stack
from runner.targets import Target


def bucket_owner(target: Target, names: ResourceNames) -> str | None:
    """None if the bucket does not exist; else the value of its stack tag ('' when untagged)."""
    s3 = target.client("s3")
    try:
        s3.head_bucket(Bucket=names.bucket)
    except s3.exceptions.ClientError as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return None
        if code in ("403", "AccessDenied", "Forbidden"):
            raise UserError(f"S3 bucket {names.bucket} exists but this account cannot use it "
                            "(bucket names are global): choose another stack name") from None
        raise
    try:
        tags = s3.get_bucket_tagging(Bucket=names.bucket).get("TagSet", [])
    except s3.exceptions.ClientError as exc:
        if error_code(exc) == "NoSuchTagSet":
            return ""
        raise
    return {t["Key"]: t["Value"] for t in tags}.get(STACK_TAG, "")


def ensure_bucket(target: Target, names: ResourceNames) -> None:
    """The stack's private, encrypted, tagged bucket (created once; a foreign one is refused)."""
    owner = bucket_owner(target, names)
    if owner is not None:
        if owner != names.stack:
            raise ForeignResourceError(f"S3 bucket {names.bucket} exists but is not tagged {STACK_TAG}={names.stack}: "
                                       "sagegate will not use it. Choose another stack name (name=...).")
        _make_private(target.client("s3"), names.bucket)  # a run killed right after creating it left it open
        return
    s3 = target.client("s3")
    tags = [{"Key": STACK_TAG, "Value": names.stack}]
    # The stack tag goes on the bucket in the creating call itself: CreateBucket takes
    # CreateBucketConfiguration.Tags (botocore's S3 model, API_CreateBucket: "An array of tags that
    # you can apply to the bucket that you're creating"; general purpose buckets need
    # s3:TagResource for it). A run killed between CreateBucket and a separate PutBucketTagging left
    # an untagged bucket that every later run refused as foreign; tagged at birth, the next run
    # recognises its own bucket by its tag (never by its name alone) and converges.
    configuration: dict[str, Any] = {"Tags": tags}
    if target.region != "us-east-1":
        configuration["LocationConstraint"] = target.region
    s3.create_bucket(Bucket=names.bucket, CreateBucketConfiguration=configuration)
    try:
        s3.put_public_access_block(Bucket=names.bucket, PublicAccessBlockConfiguration=_BLOCK_ALL)
        s3.put_bucket_encryption(Bucket=names.bucket, ServerSideEncryptionConfiguration=_ENCRYPTED)
    except BaseException:
        # Not yet private and encrypted: take it away again (the next run creates it afresh).
        with contextlib.suppress(Exception):
            s3.delete_bucket(Bucket=names.bucket)
        raise


_BLOCK_ALL = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
              "RestrictPublicBuckets": True}
_ENCRYPTED = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}


def _make_private(s3: Any, bucket: str) -> None:
    """The stack's own bucket blocks public access and is encrypted (put only where it is not)."""
    try:
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except s3.exceptions.ClientError as exc:
        if error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
            raise
        block = {}
    if any(block.get(k) is not True for k in _BLOCK_ALL):
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=_BLOCK_ALL)
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"].get("Rules", [])
    except s3.exceptions.ClientError as exc:
        if error_code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        rules = []
    if not rules:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=_ENCRYPTED)


def _object_exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except s3.exceptions.ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def artifact_key(path: str | Path) -> str:
    """The content-addressed S3 key of a model artifact: known before anything is uploaded."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"artifacts/model-{digest.hexdigest()[:16]}.tar.gz"


def artifact_uri(names: ResourceNames, path: str | Path) -> str:
    return names.s3_uri(artifact_key(path))


def upload_artifact(target: Target, names: ResourceNames, path: str | Path) -> str:
    """Upload a model artifact under a content-addressed key (once); returns its s3:// URI."""
    path = Path(path)
    key = artifact_key(path)
    s3 = target.client("s3")
    if not _object_exists(s3, names.bucket, key):
        try:
            s3.upload_file(str(path), names.bucket, key)
        except S3UploadFailedError as exc:
            # boto3's transfer manager wraps the service's error; its text is AWS's, verbatim.
            raise UserError(str(exc)) from exc
    return names.s3_uri(key)


def upload_function_code(target: Target, stack: Stack) -> None:
    """The Lambda package at the S3 key the stack's function names (uploaded once)."""
    functions = stack.find("AWS::Lambda::Function")
    if not functions:
        return
    code = functions[0].properties["Code"]
    package = build_function_package()
    if package.sha256_hex[:16] not in code["S3Key"]:
        raise UserError(f"handlers/lambda_function.py changed after the stack was built "
                        f"(package {package.sha256_hex[:16]}, stack expects {code['S3Key']}): build the stack again")
    s3 = target.client("s3")
    if not _object_exists(s3, code["S3Bucket"], code["S3Key"]):
        s3.put_object(Bucket=code["S3Bucket"], Key=code["S3Key"], Body=package.zip_bytes)
