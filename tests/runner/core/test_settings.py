"""Every rejection of the schema, with the key it names and what is allowed."""

from __future__ import annotations

import re

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from runner_helpers import NOTEBOOK, REFERENCE, assert_refused

from runner.app.compose import compose_config, compose_settings
from runner.core.errors import ConfigError
from runner.core.settings import STAGES, load_settings


def test_defaults_are_the_reference_values() -> None:
    s = compose_settings()
    assert (s.target.kind, s.data.name, s.model.arch, s.data.image_size) == ("local", "digits", "resnet18", 64)
    assert s.model.weights is None and s.model.freeze_backbone is False
    assert (s.endpoint.variants["AllTraffic"].instance_type, s.endpoint.variants["AllTraffic"].initial_instance_count) == ("ml.m5.large", 1)
    a = s.autoscaling
    assert (a.min_capacity, a.max_capacity, a.target_value, a.scale_in_cooldown, a.scale_out_cooldown) == (1, 3, 20.0, 30, 30)
    assert (s.function.reserved_concurrency, s.function.provisioned_concurrency) == (5, 2)


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        (["function.timeout=abc"], "function.timeout", "'abc' is not an integer"),
        (["training.use_spot=maybe"], "training.use_spot", "is not a boolean"),
        (["iam.roles.lambda_invoke.scopes=[{service: s3}]"], "iam.roles.lambda_invoke.scopes[0].actions",
         "a value is required"),
        (["+endpoint.colour=red"], "endpoint.colour", "unknown key"),
        (["endpoint.variants.AllTraffic.instance_type=ml.m5.huge"], "endpoint.variants.AllTraffic.instance_type", "unknown hosting instance type"),
        (["endpoint.variants.AllTraffic.instance_type=ml.t3.medium"], "endpoint.variants.AllTraffic.instance_type", "known (hosting)"),
        (["training=sagemaker", "training.instance_type=m5.xlarge"], "training.instance_type", "unknown training instance type"),
        (["training=ec2", "training.instance_type=ml.m5.xlarge"], "training.instance_type", "unknown ec2 instance type"),
        ([*NOTEBOOK, "notebook.instance_type=ml.m5.large"], "notebook.instance_type", "unknown notebook instance type"),
        # AWS's rules between members (runner/core/aws_rules.py), where one config group decides them.
        (["notebook=t3_medium"], "notebook.subnet_id", "required with notebook.direct_internet_access=Disabled"),
        (["notebook=t3_medium", "notebook.subnet_id=subnet-0123456789abcdef0"], "notebook.security_group_ids",
         "needs security groups"),
        ([*NOTEBOOK, "notebook.subnet_id=subnet-xyz"], "notebook.subnet_id", "is not a subnet id"),
        ([*NOTEBOOK, "notebook.security_group_ids=[sg-0123456789abcdef0, default]"], "notebook.security_group_ids[1]",
         "is not a security group id"),
        (["training=ec2", "training.ec2_subnet_id=subnet-0abc"], "training.ec2_subnet_id", "is not a subnet id"),
        (["function.subnet_ids=[subnet-0123456789abcdef0]"], "function.security_group_ids", "needs both"),
        (["function.security_group_ids=[sg-01234567]"], "function.subnet_ids", "needs both"),
        (["endpoint=serverless", "autoscaling=none", "endpoint.data_capture=true"], "endpoint.data_capture",
         "Serverless Inference does not support data capture"),
        (["autoscaling.min_capacity=4"], "autoscaling.min_capacity", "must be <= autoscaling.max_capacity (3)"),
        (["autoscaling.max_capacity=0", "autoscaling.min_capacity=0"], "autoscaling.max_capacity", "must be >= 1"),
        (["function.provisioned_concurrency=6"], "function.provisioned_concurrency", "must be <= function.reserved_concurrency (5)"),
        (["function.reserved_concurrency=901"], "function.reserved_concurrency", "allowed: 1 to 900"),
        (["autoscaling.scale_in_cooldown=-1"], "autoscaling.scale_in_cooldown", "out of range"),
        (["autoscaling.scale_out_cooldown=100000"], "autoscaling.scale_out_cooldown", "out of range"),
        (["autoscaling.target_value=0"], "autoscaling.target_value", "out of range"),
        (["hpo.learning_rate.min=0.5", "hpo.learning_rate.max=0.1"], "hpo.learning_rate", "must be < max"),
        (["hpo.batch_size=[]"], "hpo.batch_size", "at least one value"),
        (["hpo.max_parallel_jobs=3", "hpo.max_jobs=2"], "hpo.max_parallel_jobs", "must be <= hpo.max_jobs (2)"),
        (["function.timeout=901"], "function.timeout", "allowed: 1 to 900"),
        (["function.memory_size=64"], "function.memory_size", "allowed: 128 to 10240"),
        (["function.memory_size=20000"], "function.memory_size", "allowed: 128 to 10240"),
        (["stage=launch"], "stage", "allowed: check, plan"),
        (["name=Bad_Name"], "name", "must be 3-24 characters"),
        (["policy.fail_on=severe"], "policy.fail_on", "allowed: info, low"),
        (["endpoint.variants.AllTraffic.initial_instance_count=5"], "endpoint.variants.AllTraffic.initial_instance_count", "within autoscaling bounds"),
        (["training.use_spot=true"], "training.use_spot", "sagemaker launcher"),
        (["training=sagemaker", "training.max_wait=60"], "training.max_wait", "must be >= training.max_runtime"),
        (["hpo=sagemaker_tuner"], "hpo", "needs training=sagemaker"),
        (["hpo.objective_regex=Testing Loss"], "hpo.objective_regex", "one capture group"),
        (["hpo.objective_regex='Loss: ([0-9'"], "hpo.objective_regex", "not a regular expression"),
        (["hpo.learning_rate.min=0"], "hpo.learning_rate.min", "0 is out of range (must be >= 1e-06)"),
        (["hpo.learning_rate.scaling=Cubic"], "hpo.learning_rate.scaling", "allowed: Auto, Linear"),
        (["hpo.batch_size=[32,0]"], "hpo.batch_size[1]", "0 is out of range (must be >= 1)"),
        (["hpo.max_jobs=501"], "hpo.max_jobs", "allowed: 1 to 500"),
        (["hpo.objective_type=Best"], "hpo.objective_type", "allowed: Minimize, Maximize"),
        (["target.kind=moon"], "target.kind", "allowed: local, aws"),
        (["target.region=us_east_1"], "target.region", "not an AWS region name"),
        (["target.endpoint_url=http://example.com:80"], "target.endpoint_url", "must be http://127.0.0.1:PORT"),
        (["target=aws", "target.endpoint_url=http://127.0.0.1:4566"], "target.endpoint_url", "only applies to target=local"),
        (["target.region=eu-west-1"], "pricing", "the price snapshot is for us-east-1, the target is in eu-west-1"),
        (["data.source=https://example.com/data"], "data.source", "must be builtin:digits, a local path or an s3:// URI"),
        (["data.image_size=2048"], "data.image_size", "allowed: 16 to 1024"),
        (["data.num_classes=1"], "data.num_classes", "allowed: 2 to 100000"),
        (["data.on_bad_image=ignore"], "data.on_bad_image", "allowed: skip, fail"),
        (["model.arch=vgg16"], "model.arch", "allowed: resnet18, resnet50"),
        (["model.head_hidden=0"], "model.head_hidden", "allowed: 1 to 65536"),
        (["training.launcher=k8s"], "training.launcher", "allowed: local, sagemaker, ec2"),
        (["training=ec2", "training.instance_count=2"], "training.instance_count", "exactly 1 instance"),
        (["training=ec2", "training.ec2_image_id=null"], "training.ec2_image_id", "needs an AMI id"),
        (["training=sagemaker", "training.max_wait=null"], "training.max_wait", "required with training.use_spot=true"),
        (["training.instance_count=101"], "training.instance_count", "allowed: 1 to 100"),
        (["training.max_runtime=59"], "training.max_runtime", "allowed: 60 to 2419200"),
        (["training.learning_rate=0"], "training.learning_rate", "allowed: 1e-06 to 1.0"),
        (["training.weight_decay=1.5"], "training.weight_decay", "allowed: 0 to 1"),
        (["training.volume_size_gb=0"], "training.volume_size_gb", "allowed: 1 to 16384"),
        (["endpoint.kind=batch"], "endpoint.kind", "allowed: realtime, serverless"),
        (["endpoint.data_capture_percentage=0"], "endpoint.data_capture_percentage", "allowed: 1 to 100"),
        (["endpoint.top_k=0"], "endpoint.top_k", "allowed: 1 to 100"),
        (["endpoint.serverless_memory_mb=1000"], "endpoint.serverless_memory_mb", "allowed: 1024, 2048, 3072"),
        (["endpoint.serverless_max_concurrency=201"], "endpoint.serverless_max_concurrency", "allowed: 1 to 200"),
        (["autoscaling.metric=CPUUtilization"], "autoscaling.metric", "allowed: SageMakerVariantInvocationsPerInstance"),
        (["function.runtime=python2.7"], "function.runtime", "allowed: python3.10, python3.11"),
        (["function.architecture=sparc"], "function.architecture", "allowed: x86_64, arm64"),
        (["function.provisioned_concurrency=-1"], "function.provisioned_concurrency", "allowed: 0 to 900"),
        (["function.alias=123"], "function.alias", "is not a valid alias name"),
        (["function.connect_timeout=31"], "function.connect_timeout", "allowed: 1 to function.timeout (30)"),
        (["function.read_timeout=0"], "function.read_timeout", "0 must be >= 1"),
        (["iam.roles.lambda_invoke.trust=lambda.example.com"], "iam.roles.lambda_invoke.trust",
         "must be an AWS service principal"),
        (["iam.roles.lambda_invoke.used_by=[function,batch]"], "iam.roles.lambda_invoke.used_by[1]",
         "allowed: training, endpoint, function, notebook, ec2_training"),
        (["iam.roles.lambda_invoke.scopes.0.service=S3"], "iam.roles.lambda_invoke.scopes[0].service",
         "must be an IAM service prefix"),
        (["iam.roles.lambda_invoke.scopes.0.actions=[]"], "iam.roles.lambda_invoke.scopes[0].actions",
         "needs at least one value"),
        (["iam.roles.lambda_invoke.scopes.0.resources=[]"], "iam.roles.lambda_invoke.scopes[0].resources",
         "needs at least one value"),
        (["+iam.roles.LambdaTwo={trust: lambda.amazonaws.com, used_by: [function], scopes: []}"],
         "iam.roles.LambdaTwo", "role keys are snake_case names"),
        (["notebook.direct_internet_access=Yes"], "notebook.direct_internet_access", "allowed: Enabled, Disabled"),
        (["notebook.volume_size_gb=4"], "notebook.volume_size_gb", "allowed: 5 to 16384"),
        (["policy.allowed_instance_types.hosting=[ml.m5.large,ml.x9.huge]"], "policy.allowed_instance_types.hosting[1]",
         "unknown hosting instance type 'ml.x9.huge'"),
        (["policy.budgets_usd.tuning_job=-1"], "policy.budgets_usd.tuning_job", "-1 must be >= 0"),
        (["policy.max_reserved_concurrency=0"], "policy.max_reserved_concurrency", "allowed: 1 to 900"),
        (["policy.suppress.0.id=CKV-AWS-116"], "policy.suppress[0].id", "is not a rule id"),
        (["policy.checkov.timeout_s=5"], "policy.checkov.timeout_s", "allowed: 10 to 3600"),
        (["pricing.spot_discount=0.96"], "pricing.spot_discount", "allowed: 0 to 0.95"),
        (["invoke.samples=101"], "invoke.samples", "allowed: 1 to 100"),
        # conf/ holds every value: a key missing there is an error, not a silent default.
        (["~endpoint.top_k"], "endpoint.top_k", "a value is required"),
        (["~pricing.lambda.requests_per_million"], "pricing.lambda.requests_per_million", "a value is required"),
    ],
)
def test_rejections_name_the_key(overrides: list[str], key: str, fragment: str) -> None:
    assert_refused(overrides, key, fragment)


def test_unknown_key_without_plus_is_refused_at_compose() -> None:
    with pytest.raises(ConfigCompositionException, match="endpoint.colour"):
        compose_settings(["endpoint.colour=red"])


@pytest.mark.parametrize("preset", ["reference_2023", "production"])
def test_presets_validate(preset: str) -> None:
    s = compose_settings([f"experiment={preset}", *NOTEBOOK[1:]])
    assert s.training.launcher == "sagemaker"


def test_reference_preset_holds_the_original_choices() -> None:
    s = compose_settings([*REFERENCE])
    assert (s.data.name, s.data.num_classes, s.model.arch) == ("dog_images", 133, "resnet50")
    assert s.training.instance_type == "ml.g4dn.xlarge"
    assert (s.hpo.enabled, s.hpo.max_jobs, s.hpo.max_parallel_jobs) == (True, 2, 1)
    assert (s.hpo.learning_rate.min, s.hpo.learning_rate.max) == (0.001, 0.1)
    assert s.hpo.batch_size == [32, 64, 128, 256, 512]
    assert s.hpo.objective_regex == r"Testing Loss: ([0-9\.]+)"
    assert (s.endpoint.variants["AllTraffic"].instance_type, s.endpoint.variants["AllTraffic"].initial_instance_count) == ("ml.m5.large", 1)
    assert (s.autoscaling.max_capacity, s.autoscaling.target_value) == (3, 20.0)
    assert (s.autoscaling.scale_in_cooldown, s.autoscaling.scale_out_cooldown) == (30, 30)
    assert (s.function.reserved_concurrency, s.function.provisioned_concurrency) == (5, 2)
    assert (s.notebook.enabled, s.notebook.instance_type) == (True, "ml.t3.medium")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["endpoint.kind=x"], "endpoint.kind: 'x' is not allowed; allowed: realtime, serverless"),
        (["stage=launch"], f"stage: 'launch' is not allowed; allowed: {', '.join(STAGES)}"),
        (["function.reserved_concurrency=901"],
         "function.reserved_concurrency: 901 is out of range (must be <= 900); allowed: 1 to 900"),
        (["autoscaling.target_value=0"],
         "autoscaling.target_value: 0 is out of range (must be > 0); allowed: (0, 100000]"),
        (["name=Bad_Name"], "name: 'Bad_Name' must be 3-24 characters of a-z, 0-9 and '-', starting with a letter"),
        (["function.provisioned_concurrency=7"],
         "function.provisioned_concurrency: 7 must be <= function.reserved_concurrency (5)"),
    ],
)
def test_messages_read_as_one_sentence(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        compose_settings(overrides)


@pytest.mark.parametrize(("key", "value"), [("name", "sagegate-demo\n"), ("target.region", "us-east-1\n"),
                                            ("function.alias", "live\n")])
def test_a_trailing_newline_does_not_match_a_name_pattern(key: str, value: str) -> None:
    cfg = compose_config()
    OmegaConf.update(cfg, key, value)
    with pytest.raises(ConfigError, match=f"^{re.escape(key)}: "):
        load_settings(cfg)


def test_capacity_order_is_not_checked_while_autoscaling_is_off() -> None:
    s = compose_settings(["autoscaling=none", "autoscaling.min_capacity=2"])
    assert (s.autoscaling.enabled, s.autoscaling.min_capacity, s.autoscaling.max_capacity) == (False, 2, 1)


def test_a_serverless_endpoint_ignores_the_autoscaling_bounds() -> None:
    assert compose_settings(["endpoint=serverless", "endpoint.variants.AllTraffic.initial_instance_count=5"]).endpoint.kind == "serverless"


def _variant(**values: object) -> dict[str, object]:
    return {"instance_type": "ml.m5.large", "initial_instance_count": 1, "weight": 1.0, **values}


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ({"-all": _variant()}, "endpoint.variants.-all: '-all' must be 1-63 letters, digits or '-'"),
        ({"AllTraffic\n": _variant()}, "endpoint.variants.AllTraffic\n: 'AllTraffic\\n' must be 1-63 letters"),
        ({}, "endpoint.variants: needs at least one value"),
        ({f"V{i}": _variant() for i in range(11)}, "endpoint.variants: 11 values; allowed: at most 10"),
        ({"A": _variant(weight=-1)}, "endpoint.variants.A.weight: -1 must be >= 0"),
        ({"A": _variant(max_capacity=2, initial_instance_count=3)},
         "endpoint.variants.A.initial_instance_count: 3 must be within autoscaling bounds [1, 2]"),
        ({"A": _variant(min_capacity=3, max_capacity=2)}, "endpoint.variants.A.min_capacity: 3 must be <= the"),
        ({"A": _variant(instance_type="ml.x9.huge")}, "endpoint.variants.A.instance_type: unknown hosting instance"),
    ],
)
def test_production_variants_are_checked_one_by_one(variants: dict, message: str) -> None:
    cfg = compose_config()
    cfg.endpoint.variants = variants
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}"):
        load_settings(cfg)


def test_a_serverless_endpoint_has_one_variant() -> None:
    cfg = compose_config(["endpoint=serverless"])
    cfg.endpoint.variants = {"A": _variant(), "B": _variant()}
    with pytest.raises(ConfigError, match="^endpoint.variants: a serverless endpoint has exactly one variant, not 2$"):
        load_settings(cfg)


def test_two_variants_each_with_their_own_bounds() -> None:
    s = compose_settings(["endpoint=ab_test", "autoscaling.max_capacity=4"])
    a, c = s.endpoint.variants["AllTraffic"], s.endpoint.variants["Candidate"]
    assert (a.instance_type, a.weight, a.bounds(s.autoscaling)) == ("ml.m5.large", 0.8, (1, 4))
    assert (c.instance_type, c.weight, c.bounds(s.autoscaling)) == ("ml.c5.large", 0.2, (1, 2))
    off = compose_settings(["endpoint=ab_test", "autoscaling=none"])
    assert off.endpoint.variants["Candidate"].bounds(off.autoscaling) == (1, 1)
