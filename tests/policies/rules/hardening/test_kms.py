"""What the KMS hardening rules call a missing key (policies/rules/hardening/_kms.py)."""

from __future__ import annotations

import pytest

from policies.rules.hardening._kms import aws_managed, kms_problem

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize("key, managed", [
    ("alias/aws/sagemaker", True), ("arn:aws:kms:us-east-1:123456789012:alias/aws/sagemaker", True),
    ("alias/mine", False), (KEY_ARN, False), (None, False),
])
def test_aws_managed(key, managed):
    assert aws_managed(key) is managed


def test_kms_problem():
    assert kms_problem(None, "the volumes") == "no KMS key: the volumes use an AWS-managed key"
    assert "not under a key you control" in kms_problem("alias/aws/sagemaker", "the volumes")
    assert kms_problem(KEY_ARN, "the volumes") is None
