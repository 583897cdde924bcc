"""Issue 13, validation that is complete and strict: the classes of bad values that used to get
through (strict types, tuning ranges, names, references) and the valid ones that were refused."""

from __future__ import annotations

import re

import pytest
from omegaconf import OmegaConf
from runner_helpers import assert_refused

from runner.app.compose import compose_config, compose_settings
from runner.core.errors import ConfigError
from runner.core.settings import lambda_python_runtimes, load_settings, s3_bucket_problem

TUNER = ["hpo=sagemaker_tuner", "training=sagemaker"]
ROLE = "{trust: lambda.amazonaws.com, used_by: [function], scopes: []}"


def _scope(service: str, actions: str, resources: str = "[endpoint]") -> str:
    return f"iam.roles.lambda_invoke.scopes=[{{service: {service}, actions: {actions}, resources: {resources}}}]"




@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        (["training.epochs=true"], "training.epochs", "True is not an integer"),
        (["training.epochs='5'"], "training.epochs", "'5' is not an integer"),
        (["training.epochs=5.0"], "training.epochs", "5.0 is not an integer"),
        (["function.memory_size=false"], "function.memory_size", "is not an integer"),
        (["training.learning_rate=true"], "training.learning_rate", "True is not a number"),
        (["training.learning_rate='0.01'"], "training.learning_rate", "'0.01' is not a number"),
        (["autoscaling.target_value=true"], "autoscaling.target_value", "is not a number"),
        (["training.use_spot=1"], "training.use_spot", "1 is not a boolean"),
        (["model.freeze_backbone='true'"], "model.freeze_backbone", "is not a boolean"),
        (["hpo.batch_size=[32,true]"], "hpo.batch_size[1]", "True is not an integer"),
    ],
)
def test_strict_types(overrides: list[str], key: str, fragment: str) -> None:
    assert_refused(overrides, key, fragment)


def test_a_yaml_integer_is_still_a_float() -> None:
    s = compose_settings(["autoscaling.target_value=20", "training.learning_rate=1", "training.weight_decay=0"])
    assert (s.autoscaling.target_value, s.training.learning_rate, s.training.weight_decay) == (20, 1, 0)


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        # SageMaker API reference, ContinuousParameterRange ScalingType.
        ([*TUNER, "hpo.learning_rate.scaling=ReverseLogarithmic", "hpo.learning_rate.max=1.0"],
         "hpo.learning_rate.max", "must be < 1 with scaling ReverseLogarithmic"),
        # HyperParameterTuningJobConfig Strategy: Grid takes categorical parameters only.
        ([*TUNER, "hpo.strategy=Grid"], "hpo.strategy", "Grid search supports only categorical parameters"),
        (["hpo.objective_metric=''"], "hpo.objective_metric", "at least 1 character"),
        (["hpo.learning_rate.max=inf"], "hpo.learning_rate.max", "inf is not a finite number"),
        (["hpo.learning_rate.min=nan"], "hpo.learning_rate.min", "nan is not a finite number"),
        (["autoscaling.target_value=inf"], "autoscaling.target_value", "not a finite number"),
        (["endpoint.variants.AllTraffic.weight=inf"], "endpoint.variants.AllTraffic.weight", "not a finite number"),
        (["policy.budgets_usd.endpoint_monthly=nan"], "policy.budgets_usd.endpoint_monthly", "not a finite number"),
        (["pricing.lambda.requests_per_million=inf"], "pricing.lambda.requests_per_million", "not a finite number"),
        (["training.learning_rate=5"], "training.learning_rate", "allowed: 1e-06 to 1.0"),
        (["training.learning_rate=1e-9"], "training.learning_rate", "allowed: 1e-06 to 1.0"),
        (["hpo.learning_rate.max=50"], "hpo.learning_rate.max", "allowed: 1e-06 to 1.0"),
        (["training.batch_size=100000"], "training.batch_size", "allowed: 1 to 4096"),
        (["hpo.batch_size=[32,1000000]"], "hpo.batch_size[1]", "allowed: 1 to 4096"),
    ],
)
def test_tuning_ranges(overrides: list[str], key: str, fragment: str) -> None:
    assert_refused(overrides, key, fragment)


def test_a_reverse_logarithmic_range_below_one_is_taken() -> None:
    s = compose_settings([*TUNER, "hpo.learning_rate.scaling=ReverseLogarithmic"])
    assert (s.hpo.learning_rate.min, s.hpo.learning_rate.max) == (0.001, 0.1)


@pytest.mark.parametrize(
    ("key", "value"),
    [("name", "sagegate-demo\n"), ("target.region", "us-east-1\n"), ("function.alias", "live\n"),
     ("training.ec2_subnet_id", "subnet-0123abcd\n"), ("iam.roles.lambda_invoke.trust", "lambda.amazonaws.com\n"),
     ("policy.suppress", [{"id": "SG-IAM-001\n"}]), ("tags.project", "sagegate\n"), ("data.source", "s3://bucket/x\n")],
)
def test_no_pattern_lets_a_trailing_newline_through(key: str, value: object) -> None:
    cfg = compose_config()
    OmegaConf.update(cfg, key, value)
    with pytest.raises(ConfigError, match=f"^{re.escape(key)}"):
        load_settings(cfg)


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        (["name=xn--stack"], "name", "starts with 'xn--', a prefix S3 reserves"),
        (["name=sthree-stack"], "name", "starts with 'sthree-'"),
        (["name=amzn-s3-demo-x"], "name", "starts with 'amzn-s3-demo-'"),
        (["data.source=s3://data-s3alias/x"], "data.source", "ends with '-s3alias', a suffix S3 reserves"),
        (["data.source=s3://data--ol-s3/x"], "data.source", "ends with '--ol-s3'"),
        (["data.source=s3://data.mrap/x"], "data.source", "ends with '.mrap'"),
        (["data.source=s3://data--x-s3/x"], "data.source", "ends with '--x-s3'"),
        (["data.source=s3://xn--data/x"], "data.source", "starts with 'xn--'"),
        (["name=abcdefghijklmnopqrstuvwx", f"+iam.roles.a_long_role_key_of_forty_characters_xxxx={ROLE}"],
         "iam.roles.a_long_role_key_of_forty_characters_xxxx", "IAM allows at most 64"),
        (["+tags.k='a#b'"], "tags.k", "'#' is not allowed in a tag value"),
        ([f"+tags.k={'v' * 257}"], "tags.k", "a tag value of 257 characters; allowed: at most 256"),
    ],
)
def test_names(overrides: list[str], key: str, fragment: str) -> None:
    assert_refused(overrides, key, fragment)


@pytest.mark.parametrize(
    ("tags", "key", "fragment"),
    [
        ({"aws:owner": "me"}, "tags.aws:owner", "reserved for AWS"),
        ({"AWS:owner": "me"}, "tags.AWS:owner", "reserved for AWS"),
        ({"k" * 129: "v"}, f"tags.{'k' * 129}", "a tag key of 129 characters; allowed: at most 128"),
        ({"a;b": "v"}, "tags.a;b", "';' is not allowed in a tag key"),
        ({"": "v"}, "tags.", "needs at least 1 character"),
        ({f"k{i}": "v" for i in range(50)}, "tags", "allowed: at most 49"),
    ],
)
def test_tags(tags: dict[str, str], key: str, fragment: str) -> None:
    cfg = compose_config()
    cfg.tags = tags
    with pytest.raises(ConfigError) as caught:
        load_settings(cfg)
    assert str(caught.value).startswith(f"{key}: ") and fragment in str(caught.value), str(caught.value)


def test_tags_take_unicode_letters_spaces_and_aws_punctuation() -> None:
    cfg = compose_config()
    cfg.tags = {"Équipe Données": "ML/vision=1+2@a.b:c_d-e", "empty": ""}
    assert load_settings(cfg).tags["empty"] == ""


def test_bucket_rules() -> None:
    assert s3_bucket_problem("sagegate-demo-123456789012-us-east-1") is None
    assert s3_bucket_problem("192.168.5.4") is not None
    assert s3_bucket_problem("a..b") is not None
    assert s3_bucket_problem("Upper") is not None
    assert s3_bucket_problem("CHANGE-ME", affixes_only=True) is None


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        ([_scope("sagemaker-runtime", "[InvokeEndpoint]")], "iam.roles.lambda_invoke.scopes[0].service",
         "'sagemaker-runtime' is not an IAM service prefix"),
        ([_scope("sagemaker", "[InvokeEndpoints]")], "iam.roles.lambda_invoke.scopes[0].actions[0]",
         "'InvokeEndpoints' is not an action of IAM service 'sagemaker'"),
        ([_scope("sagemaker", "['sagemaker:InvokeEndpoint']")], "iam.roles.lambda_invoke.scopes[0].actions[0]",
         "without its service prefix"),
        ([_scope("iam", "[PassRole]", "['role:no_such_role']")], "iam.roles.lambda_invoke.scopes[0].resources[0]",
         "'role:no_such_role' names no role of iam.roles"),
        (["iam.roles.lambda_invoke.used_by=[]"], "iam.roles.lambda_invoke.used_by", "needs at least one value"),
    ],
)
def test_references(overrides: list[str], key: str, fragment: str) -> None:
    assert_refused(overrides, key, fragment)


def test_an_action_pattern_that_grants_an_action_is_taken() -> None:
    s = compose_settings([_scope("sagemaker", "['Invoke*']")])
    assert s.iam.roles["lambda_invoke"].scopes[0].actions == ["Invoke*"]


@pytest.mark.parametrize("alias", ["1live", "2024-06", "live_1", "L" * 128])
def test_lambda_alias_names_as_lambda_takes_them(alias: str) -> None:
    assert compose_settings([f"function.alias={alias}"]).function.alias == alias


@pytest.mark.parametrize(("alias", "fragment"), [("123", "not only digits"), ("L" * 129, "1-128"), ("a.b", "1-128")])
def test_lambda_alias_names_lambda_refuses(alias: str, fragment: str) -> None:
    assert_refused([f"function.alias={alias}"], "function.alias", fragment)


def test_lambda_runtimes_come_from_botocore() -> None:
    import botocore.session

    enum = botocore.session.get_session().get_service_model("lambda").shape_for("Runtime").enum
    runtimes = lambda_python_runtimes()
    assert set(runtimes) <= set(enum) and "python3.11" in runtimes and "python3.9" not in runtimes
    newest = runtimes[-1]
    assert compose_settings([f"function.runtime={newest}"]).function.runtime == newest
    assert_refused(["function.runtime=nodejs20.x"], "function.runtime", "'nodejs20.x' is not allowed; allowed: python3.10")
    assert_refused(["function.runtime=python3.9"], "function.runtime", "is not allowed")
