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


# ---- KMS key forms per API (botocore's models and the API reference pages cited in settings.py) ----

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:us-east-1:123456789012:key/{KEY_ID}"
ALIAS_ARN = "arn:aws:kms:us-east-1:123456789012:alias/sagegate"
SAGEMAKER_TRAINING = ["training=sagemaker", "training.instance_type=ml.m5.xlarge"]
EC2_TRAINING = ["training=ec2", "training.ec2_image_id=ami-0123456789abcdef0"]


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        # Lambda CreateFunction KMSKeyArn: a key ARN only.
        ([f"function.kms_key_arn={KEY_ID}"], "function.kms_key_arn", "is a KMS key id; Lambda CreateFunction KMSKeyArn takes a key ARN only"),
        (["function.kms_key_arn=alias/sagegate"], "function.kms_key_arn", "is a KMS alias name"),
        ([f"function.kms_key_arn={ALIAS_ARN}"], "function.kms_key_arn", "is a KMS alias ARN"),
        # SageMaker ResourceConfig VolumeKmsKeyId: a key id or key ARN.
        ([*SAGEMAKER_TRAINING, "training.volume_kms_key_id=alias/aws/sagemaker"], "training.volume_kms_key_id",
         "takes a key id or key ARN only"),
        ([*SAGEMAKER_TRAINING, f"training.volume_kms_key_id={ALIAS_ARN}"], "training.volume_kms_key_id", "alias ARN"),
        # Not a KMS key identifier at all.
        (["endpoint.kms_key_id='my key'"], "endpoint.kms_key_id",
         "is not a KMS key identifier; CreateEndpointConfig KmsKeyId takes a key id, key ARN, alias name or alias ARN"),
        (["endpoint.kms_key_id=arn:aws:kms:us-east-1:123456789012:grant/x"], "endpoint.kms_key_id", "not a KMS key identifier"),
        (["endpoint.kms_key_id=arn:aws:s3:::bucket"], "endpoint.kms_key_id", "not a KMS key identifier"),
        (["notebook.kms_key_id=alias/"], "notebook.kms_key_id", "not a KMS key identifier"),
        (["notebook.kms_key_id='alias/a b'"], "notebook.kms_key_id", "not a KMS key identifier"),
        # KMS keys are regional: the target's region and its partition.
        ([f"function.kms_key_arn=arn:aws:kms:eu-west-1:123456789012:key/{KEY_ID}"], "function.kms_key_arn",
         "is a key of eu-west-1; the target is in us-east-1"),
        ([f"endpoint.kms_key_id=arn:aws-cn:kms:us-east-1:123456789012:key/{KEY_ID}"], "endpoint.kms_key_id",
         "is in partition 'aws-cn'; us-east-1 is in 'aws'"),
        (["notebook.kms_key_id=arn:aws:kms:us-west-2:123456789012:alias/x"], "notebook.kms_key_id", "is a key of us-west-2"),
        ([f"endpoint.kms_key_id=arn:aws:kms:us-east-1:12345:key/{KEY_ID}"], "endpoint.kms_key_id", "not a KMS key identifier"),
    ],
)
def test_kms_key_forms_refused(overrides: list[str], key: str, fragment: str) -> None:
    assert_refused(overrides, key, fragment)


@pytest.mark.parametrize(
    "overrides",
    [
        [f"function.kms_key_arn={KEY_ARN}"],
        *([f"endpoint.kms_key_id={k}"] for k in (KEY_ID, KEY_ARN, "alias/sagegate", ALIAS_ARN, "alias/aws/sagemaker")),
        *([f"notebook.kms_key_id={k}"] for k in (KEY_ID, KEY_ARN, "alias/sagegate", ALIAS_ARN)),
        [*SAGEMAKER_TRAINING, f"training.volume_kms_key_id={KEY_ID}"],
        [*SAGEMAKER_TRAINING, f"training.volume_kms_key_id={KEY_ARN}"],
        # EC2 EbsBlockDevice KmsKeyId takes all four forms.
        [*EC2_TRAINING, "training.volume_kms_key_id=alias/sagegate-training"],
        [*EC2_TRAINING, f"training.volume_kms_key_id={ALIAS_ARN}"],
        ["endpoint.kms_key_id=mrk-1234abcd12ab34cd56ef1234567890ab"],
    ],
)
def test_kms_key_forms_taken(overrides: list[str]) -> None:
    compose_settings(overrides)


# ---- s3:// data on the local target ---------------------------------------------------------------

@pytest.mark.parametrize("stage", ["train", "invoke"])
def test_s3_data_on_the_local_target_is_refused_for_a_stage_that_reads_it(stage: str) -> None:
    assert_refused([f"stage={stage}", "data=dog_images"], "data.source",
                   "s3://CHANGE-ME/dogImages cannot be read on target=local with stage=" + stage)


@pytest.mark.parametrize("overrides", [
    ["stage=check", "data=dog_images"], ["stage=plan", "data=dog_images"], ["stage=deploy", "data=dog_images"],
    # stage=all is the composed default of the presets; the train step's check stops it (tests/e2e).
    ["data=dog_images"], ["stage=invoke", "data=dog_images", "image=dog.jpg"],
    ["stage=train", "data=dog_images", "target=aws"],
    ["stage=train", "data=dog_images", "target.endpoint_url=http://127.0.0.1:5000"],
])
def test_s3_data_is_taken_where_it_is_not_read_or_can_be(overrides: list[str]) -> None:
    assert compose_settings(overrides).data.source == "s3://CHANGE-ME/dogImages"


# ---- framework and Python versions with no SageMaker image -----------------------------------------

@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        (["training.framework_version='9.9'"], "training.framework_version",
         "'9.9' has no SageMaker PyTorch training image in sagemaker-core's image database"),
        (["training.framework_version='9.9'"], "training.framework_version", "versions: 0.4.0, "),
        # Inference images stop before training's (sagemaker-core's database).
        (["endpoint.framework_version='2.10'"], "endpoint.framework_version", "no SageMaker PyTorch inference image"),
        (["endpoint.framework_version='2.6'"], "endpoint.py_version", "Python versions: py312"),
        (["training.py_version=py27"], "training.py_version", "'py27' has no SageMaker PyTorch 2.5 training image"),
        (["training.framework_version=''"], "training.framework_version", "is not a PyTorch version"),
        (["training.framework_version=latest"], "training.framework_version", "is not a PyTorch version"),
        (["endpoint.py_version='py311\n'"], "endpoint.py_version", "is not a Python version tag"),
        (["target.region=xx-nowhere-1", "pricing.region=xx-nowhere-1"], "target.region",
         "'xx-nowhere-1' has no SageMaker PyTorch training image"),
    ],
)
def test_image_versions_the_sdk_cannot_resolve(overrides: list[str], key: str, fragment: str) -> None:
    assert_refused(overrides, key, fragment)


def test_image_versions_validation_takes_what_the_stack_uses() -> None:
    from runner.core.images import image_uri

    s = compose_settings(["training.framework_version=2.5.1", "endpoint.framework_version=2.4"])
    assert image_uri("2.5.1", s.training.py_version, "us-east-1", "ml.m5.xlarge", "training").endswith(":2.5.1-cpu-py311")


# ---- interpolations that do not resolve -----------------------------------------------------------

@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        (["name=${nope}"], "name", "'${nope}' does not resolve (Interpolation key 'nope' not found)"),
        (["+tags.x=${missing.key}"], "tags.x", "'${missing.key}' does not resolve"),
        (["hpo.batch_size=[32,'${nope}']"], "hpo.batch_size[1]", "does not resolve"),
        (["tags.project=${oc.env:SAGEGATE_SURELY_UNSET}"], "tags.project", "Environment variable 'SAGEGATE_SURELY_UNSET' not found"),
        (["name=${nosuchresolver:x}"], "name", "Unsupported interpolation type nosuchresolver"),
    ],
)
def test_unresolvable_interpolations(overrides: list[str], key: str, fragment: str) -> None:
    assert_refused(overrides, key, fragment)


def test_a_resolvable_interpolation_is_taken() -> None:
    assert compose_settings(["+tags.stage=${stage}"]).tags["stage"] == "all"


# ---- found by the fuzz test (tests/runner/core/test_settings_fuzz.py) -------------------------------

@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        # A negative price hid a cost from the budgets; a month has 1 to 744 hours.
        (["pricing.lambda.requests_per_million=-1"], "pricing.lambda.requests_per_million", "-1 must be >= 0"),
        (["pricing.serverless.gb_second=-0.5"], "pricing.serverless.gb_second", "must be >= 0"),
        (["pricing.hosting={ml.m5.large: -1}"], "pricing.hosting.ml.m5.large", "must be >= 0"),
        (["pricing.hours_per_month=-1"], "pricing.hours_per_month", "allowed: 1 to 744"),
        (["pricing.hours_per_month=0"], "pricing.hours_per_month", "allowed: 1 to 744"),
        # IAM AttachRolePolicy PolicyArn.
        (["iam.roles.lambda_invoke.managed_policy_arns=['not-an-arn']"], "iam.roles.lambda_invoke.managed_policy_arns[0]",
         "'not-an-arn' is not a managed policy ARN"),
        # Only builtin:digits is built in (it failed at the train stage).
        (["data.source=builtin:cifar"], "data.source", "must be builtin:digits, a local path or an s3:// URI"),
        # A part the stack runs without a role: a ValueError traceback from build_stack.
        (["iam.roles.lambda_invoke.used_by=[training]"], "iam.roles", "no role has used_by: [function]"),
        (["iam.roles.sagemaker_execution.used_by=[training]"], "iam.roles", "no role has used_by: [endpoint]"),
        (["training=ec2", "training.ec2_image_id=ami-0123456789abcdef0", "iam.roles.ec2_training.used_by=[training]"],
         "iam.roles", "no role has used_by: [ec2_training]"),
        # A Literal of integers took 1024.0 and true.
        (["endpoint.serverless_memory_mb=1024.0"], "endpoint.serverless_memory_mb", "1024.0 is not an integer"),
        (["endpoint.serverless_memory_mb=true"], "endpoint.serverless_memory_mb", "True is not an integer"),
    ],
)
def test_found_by_fuzzing(overrides: list[str], key: str, fragment: str) -> None:
    assert_refused(overrides, key, fragment)


def test_aws_managed_policy_arns_with_a_path_are_taken() -> None:
    arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    s = compose_settings([f"iam.roles.lambda_invoke.managed_policy_arns=['{arn}']", "pricing.hours_per_month=744"])
    assert s.iam.roles["lambda_invoke"].managed_policy_arns == [arn]
