"""What the KMS hardening rules call a missing key: none, or the AWS-managed one."""

from __future__ import annotations


def aws_managed(key_id: object) -> bool:
    """``alias/aws/sagemaker`` (or its ARN): the AWS-managed key, no more control than none."""
    return isinstance(key_id, str) and (key_id.startswith("alias/aws/") or ":alias/aws/" in key_id)


def kms_problem(key_id: object, what: str) -> str | None:
    """The finding for ``what`` encrypted under ``key_id``, or None for a customer-managed key."""
    if not key_id:
        return f"no KMS key: {what} use an AWS-managed key"
    if aws_managed(key_id):
        return f"{key_id} is the AWS-managed key: {what} are encrypted, but not under a key you control"
    return None
