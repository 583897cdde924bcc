"""Typed, validated settings from the composed Hydra config.

The schema is a tree of dataclasses, and every rule is declared where it applies: choices as
``Literal``, ranges and lengths as ``Field`` constraints, names as ``Field(pattern=...)``, and
rules between keys as ``model_validator``s (on a group when they stay inside it, on ``Settings``
when they need other groups or the price snapshot). The values, defaults included, come from
conf/ alone: a key missing there is an error, not a silent Python default.

``load_settings`` validates the composed config with pydantic (unknown keys, wrong types, every
rule; well under a millisecond, which matters when a sweep loads a hundred configs). Every
rejection is a ``ConfigError`` whose one-line message names the full key and what is allowed, so
the CLI can print it and exit 2 before anything runs.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, is_dataclass
from functools import cache
from types import UnionType
from typing import Annotated, Any, Literal, NoReturn, Union, get_args, get_origin, get_type_hints

import annotated_types
from omegaconf import DictConfig, OmegaConf
from pydantic import (
    AfterValidator,
    AllowInfNan,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    model_validator,
    with_config,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from runner.core.errors import ConfigError

# Every schema class refuses keys it does not declare; YAML numbers are accepted for strings
# (e.g. training.framework_version=2.6).
_STRICT_KEYS = with_config(ConfigDict(extra="forbid", coerce_numbers_to_str=True))

Stage = Literal["check", "plan", "simulate", "train", "deploy", "invoke", "destroy", "all"]
Severity = Literal["info", "low", "medium", "high", "critical"]
STAGES: tuple[str, ...] = get_args(Stage)
SEVERITIES: tuple[str, ...] = get_args(Severity)

# AWS Lambda's account default: 1000 concurrent executions, of which 100 stay unreserved.
ACCOUNT_CONCURRENCY_LIMIT = 1000
UNRESERVED_FLOOR = 100
ASSIGNABLE_CONCURRENCY = ACCOUNT_CONCURRENCY_LIMIT - UNRESERVED_FLOOR
LAMBDA_MAX_TIMEOUT_S = 900
LAMBDA_MEMORY_MB = (128, 10240)
# Application Auto Scaling accepts cooldowns up to a day; SageMaker endpoints allow 1000
# instances per variant at most.
MAX_COOLDOWN_S = 86400
MAX_VARIANT_INSTANCES = 1000
# SageMaker training's MaxRuntimeInSeconds upper bound (28 days).
MAX_TRAINING_RUNTIME_S = 28 * 24 * 3600
IAM_ROLE_NAME_MAX = 64


# Strict scalars: no silent coercion (YAML `true` or a quoted '5' is not an integer, a bool is not a
# number); an integer is still taken where a float belongs (YAML writes 1 for 1.0). No float
# anywhere takes inf or nan.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), AllowInfNan(False)]
Bool = Annotated[bool, Strict()]


def _strict_int(value: Any) -> Any:
    """Before a ``Literal`` of integers (which pydantic cannot make strict): 1024.0 is not 1024."""
    _require(type(value) is int, "", f"{value!r} is not an integer (strict: no booleans, strings or fractions)")
    return value


def _matching(pattern: str, problem: str) -> Any:
    """A string the whole of which must match ``pattern`` (``re.fullmatch``: no anchors needed, and
    no ``$`` that lets a trailing newline through); a mismatch reads "<key>: '<value>' <problem>"."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        _require(compiled.fullmatch(value) is not None, "", f"{value!r} {problem}")
        return value

    return AfterValidator(check)


def _fail(key: str, message: str) -> NoReturn:
    """Reject the value at ``key``, relative to the object being validated ("" for itself)."""
    raise PydanticCustomError("sagegate_rule", "{message}", {"key": key, "message": message})


def _require(condition: bool, key: str, message: str) -> None:
    if not condition:
        _fail(key, message)


def _data_source(source: str) -> str:
    # builtin:digits is the only built-in data set (runner/app/training_data.py).
    _require(source == "builtin:digits" or (not source.startswith("builtin:") and (
        source.startswith(("s3://", "/", "./", "../", "~")) or "://" not in source)), "",
             f"{source!r} must be builtin:digits, a local path or an s3:// URI")
    _require("\n" not in source and "\r" not in source, "", f"{source!r} contains a line break")
    if source.startswith("s3://"):
        # Only the reserved affixes: the shape is left to S3 ("cannot be read"), so that the dog_images
        # preset's placeholder (s3://CHANGE-ME/...) still loads for plan and check.
        bucket = source[len("s3://"):].partition("/")[0]
        problem = s3_bucket_problem(bucket, affixes_only=True)
        _require(problem is None, "", f"{source!r}: bucket {bucket!r} {problem}")
    return source


# S3 User Guide, "General purpose bucket naming rules": 3-63 characters of a-z, 0-9, '.' and '-',
# starting and ending with a letter or digit, no '..', not an IP address, and none of the prefixes
# and suffixes S3 reserves (for access points, Object Lambda, Multi-Region Access Points,
# directory buckets, table buckets and its documentation examples).
S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
S3_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def s3_bucket_problem(bucket: str, affixes_only: bool = False) -> str | None:
    """Why S3 refuses ``bucket`` as a general purpose bucket name, or None."""
    if affixes_only:
        pass
    elif not _S3_BUCKET.fullmatch(bucket):
        return "is not a bucket name (3-63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit)"
    elif ".." in bucket:
        return "is not a bucket name (no two adjacent periods)"
    elif re.fullmatch(r"\d+\.\d+\.\d+\.\d+", bucket):
        return "is not a bucket name (not formatted as an IP address)"
    for prefix in S3_RESERVED_PREFIXES:
        if bucket.startswith(prefix):
            return f"starts with {prefix!r}, a prefix S3 reserves"
    for suffix in S3_RESERVED_SUFFIXES:
        if bucket.endswith(suffix):
            return f"ends with {suffix!r}, a suffix S3 reserves"
    return None


# Tags (AWS Tagging API reference / IAM Tag): a key of 1-128 and a value of 0-256 characters from
# the pattern ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$, keys not starting with "aws:" (reserved); at most 50
# tags on a resource, one of which is sagegate:stack.
TAG_KEY_MAX, TAG_VALUE_MAX, MAX_USER_TAGS = 128, 256, 49
_TAG_PUNCTUATION = frozenset("_.:/=+-@")


def _tag_text(text: str, what: str, longest: int) -> str:
    _require(len(text) <= longest, "", f"a tag {what} of {len(text)} characters; allowed: at most {longest}")
    bad = [c for c in text if c not in _TAG_PUNCTUATION and unicodedata.category(c)[0] not in "LZN"]
    if bad:
        _fail("", f"{text!r}: {bad[0]!r} is not allowed in a tag {what} (letters, digits, spaces and _ . : / = + - @)")
    return text


def _tag_key(key: str) -> str:
    _require(len(key) >= 1, "", "a tag key needs at least 1 character")
    _require(not key.lower().startswith("aws:"), "", f"{key!r}: tag keys starting with 'aws:' are reserved for AWS")
    return _tag_text(key, "key", TAG_KEY_MAX)


def _tag_value(value: str) -> str:
    return _tag_text(value, "value", TAG_VALUE_MAX)


TagKey = Annotated[str, AfterValidator(_tag_key)]
TagValue = Annotated[str, AfterValidator(_tag_value)]


def _objective_regex(regex: str) -> str:
    try:
        compiled = re.compile(regex)
    except re.error as exc:
        _fail("", f"not a regular expression ({exc})")
    _require(compiled.groups == 1, "", "needs exactly one capture group for the value")
    return regex


# The handler needs Python >= 3.10; the runtimes come from the installed botocore's Lambda model.
MIN_LAMBDA_PYTHON = (3, 10)


@cache
def lambda_python_runtimes() -> tuple[str, ...]:
    """The Python runtimes botocore's Lambda model lists (its ``Runtime`` enum), >= 3.10, oldest first."""
    import botocore.session  # lazily: only a config with a function is checked against it

    enum = botocore.session.get_session().get_service_model("lambda").shape_for("Runtime").enum
    found = [(tuple(map(int, m.groups())), name) for name in enum
             if (m := re.fullmatch(r"python(\d+)\.(\d+)", name))]
    return tuple(name for version, name in sorted(found) if version >= MIN_LAMBDA_PYTHON)


def _lambda_runtime(runtime: str) -> str:
    allowed = lambda_python_runtimes()
    _require(runtime in allowed, "", f"{runtime!r} is not allowed; allowed: {', '.join(allowed)} "
                                     "(Python runtimes of botocore's Lambda model)")
    return runtime


StackName = Annotated[str, _matching(r"[a-z][a-z0-9-]{1,22}[a-z0-9]",
                                     "must be 3-24 characters of a-z, 0-9 and '-', starting with a letter")]
Region = Annotated[str, _matching(r"[a-z]{2}(-[a-z]+)+-\d", "is not an AWS region name (e.g. us-east-1)")]
LocalUrl = Annotated[str, _matching(r"http://(127\.0\.0\.1|localhost):\d+/?", "must be http://127.0.0.1:PORT")]
OnOff = Literal["Enabled", "Disabled"]
Concurrency = Annotated[Int, Field(ge=1, le=ASSIGNABLE_CONCURRENCY)]
Cooldown = Annotated[Int, Field(ge=0, le=MAX_COOLDOWN_S)]
Capacity = Annotated[Int, Field(ge=1, le=MAX_VARIANT_INSTANCES)]
Percent = Annotated[Int, Field(ge=1, le=100)]
VolumeGb = Annotated[Int, Field(ge=1, le=16384)]
Budget = Annotated[Float, Field(ge=0)]
# A price in USD: never negative (a negative price would hide a cost from the budgets).
Price = Annotated[Float, Field(ge=0)]
NonEmpty = Field(min_length=1)
# EC2 resource ids: a prefix and 8 or 17 hex digits (EC2 User Guide, "Resource IDs").
SubnetId = Annotated[str, _matching(r"subnet-([0-9a-f]{8}|[0-9a-f]{17})", "is not a subnet id (subnet-0123abcd...)")]
# Sane bounds for the optimiser (the fine-tuning in train/; values outside them are typos, not
# experiments): a learning rate from 1e-6 to 1 (Adam/SGD on a pretrained ResNet diverge well below 1
# and learn nothing below 1e-6), a batch size from 1 to 4096 samples per step.
LEARNING_RATE_BOUNDS = (1e-6, 1.0)
BATCH_SIZE_BOUNDS = (1, 4096)
LearningRate = Annotated[Float, Field(ge=LEARNING_RATE_BOUNDS[0], le=LEARNING_RATE_BOUNDS[1])]
BatchSize = Annotated[Int, Field(ge=BATCH_SIZE_BOUNDS[0], le=BATCH_SIZE_BOUNDS[1])]
SecurityGroupId = Annotated[str, _matching(r"sg-([0-9a-f]{8}|[0-9a-f]{17})",
                                           "is not a security group id (sg-0123abcd...)")]


# KMS key identifiers (AWS KMS Developer Guide, "Key identifiers (KeyId)"; KMS API reference,
# DescribeKey KeyId): a key id, a key ARN (arn:PARTITION:kms:REGION:ACCOUNT:key/KEY-ID), an alias
# name ("alias/" + a name; CreateAlias AliasName: 1-256 characters of letters, digits, '/', '_'
# and '-') or an alias ARN (arn:PARTITION:kms:REGION:ACCOUNT:alias/NAME). A key id is a UUID, or
# "mrk-" and 32 hex digits for a multi-Region key; the character set is checked here, not the UUID
# shape (the APIs' own pattern, botocore's sagemaker KmsKeyId [a-zA-Z0-9:/_-]*, does the same).
KMS_KEY_FORMS = ("key id", "key ARN", "alias name", "alias ARN")
_KMS_KEY_ID = r"[A-Za-z0-9-]{1,2048}"
_KMS_ALIAS_NAME = r"alias/[A-Za-z0-9/_-]{1,250}"
_KMS_ARN = re.compile(r"arn:(?P<partition>aws(-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f|-eusc)?):kms:"
                      r"(?P<region>[a-z]{2}(-[a-z]+)+-\d):(?P<account>\d{12}):(?P<kind>key|alias)/(?P<rest>.+)")


def kms_key_form(key: str) -> str | None:
    """Which of ``KMS_KEY_FORMS`` ``key`` is written in, or None for none of them."""
    if (arn := _KMS_ARN.fullmatch(key)) is not None:
        if arn["kind"] == "key":
            return "key ARN" if re.fullmatch(_KMS_KEY_ID, arn["rest"]) else None
        return "alias ARN" if re.fullmatch(_KMS_ALIAS_NAME, f"alias/{arn['rest']}") else None
    if key.startswith("alias/"):
        return "alias name" if re.fullmatch(_KMS_ALIAS_NAME, key) else None
    if key.startswith("arn:"):
        return None
    return "key id" if re.fullmatch(_KMS_KEY_ID, key) else None


def partition_of(region: str) -> str:
    """The ARN partition of ``region`` (AWS General Reference, "ARN format"): aws-cn for China,
    aws-us-gov for GovCloud (US), aws for the commercial regions."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("us-iso-"):
        return "aws-iso"
    if region.startswith("us-isob-"):
        return "aws-iso-b"
    return "aws"


def _kms_key(key: str | None, config_key: str, accepted: tuple[str, ...], api: str, region: str) -> None:
    """``key`` (a config's KMS key, null: none) is in a form ``api`` takes, and an ARN names a key
    of the target's region and partition."""
    if key is None:
        return
    form = kms_key_form(key)
    forms = accepted[0] if len(accepted) == 1 else f"{', '.join(accepted[:-1])} or {accepted[-1]}"
    _require(form is not None, config_key, f"{key!r} is not a KMS key identifier; {api} takes a {forms}")
    _require(form in accepted, config_key, f"{key!r} is a KMS {form}; {api} takes a {forms} only")
    if (arn := _KMS_ARN.fullmatch(key)) is not None:
        # KMS keys are regional: a key (a multi-Region key's replica too) is used in the Region in
        # its ARN only, and none of these APIs takes a key of another Region (AWS KMS Developer
        # Guide, "Multi-Region keys in AWS KMS": "AWS KMS keys are specific to a single AWS Region";
        # EBS User Guide, "Amazon EBS encryption": the KMS key must be in the volume's Region).
        _require(arn["region"] == region, config_key,
                 f"{key!r} is a key of {arn['region']}; the target is in {region} (KMS keys are regional)")
        _require(arn["partition"] == partition_of(region), config_key,
                 f"{key!r} is in partition {arn['partition']!r}; {region} is in {partition_of(region)!r}")


@_STRICT_KEYS
@dataclass
class TargetSettings:
    kind: Literal["local", "aws"]
    region: Region
    profile: str | None
    endpoint_url: LocalUrl | None
    # Seconds before a role or role-policy change reaches the services, on the emulator this run
    # starts (AWS: eventually consistent, usually seconds): runner/targets/iam_propagation.py.
    iam_propagation_s: Annotated[Float, Field(ge=0, le=60)] = 0.0

    @model_validator(mode="after")
    def _attach_locally(self) -> TargetSettings:
        _require(self.endpoint_url is None or self.kind == "local", "endpoint_url", "only applies to target=local")
        return self


@_STRICT_KEYS
@dataclass
class DataSettings:
    name: str
    source: Annotated[str, AfterValidator(_data_source)]
    image_size: Annotated[Int, Field(ge=16, le=1024)]
    num_classes: Annotated[Int, Field(ge=2, le=100000)]
    on_bad_image: Literal["skip", "fail"]


@_STRICT_KEYS
@dataclass
class ModelSettings:
    arch: Literal["resnet18", "resnet50"]
    weights: str | None
    freeze_backbone: Bool
    head_hidden: Annotated[Int, Field(ge=1, le=65536)]


@_STRICT_KEYS
@dataclass
class TrainingSettings:
    launcher: Literal["local", "sagemaker", "ec2"]
    instance_type: str  # known to the price snapshot: see Settings
    instance_count: Annotated[Int, Field(ge=1, le=100)]
    use_spot: Bool
    max_runtime: Annotated[Int, Field(ge=60, le=MAX_TRAINING_RUNTIME_S)]
    max_wait: Int | None
    checkpointing: Bool
    epochs: Annotated[Int, Field(ge=1, le=1000)]
    batch_size: BatchSize
    learning_rate: LearningRate
    weight_decay: Annotated[Float, Field(ge=0, le=1)]
    patience: Annotated[Int, Field(ge=1, le=1000)]
    seed: Int
    framework_version: str
    py_version: str
    volume_size_gb: VolumeGb
    volume_kms_key_id: str | None
    network_isolation: Bool
    inter_container_encryption: Bool
    ec2_image_id: str | None
    ec2_subnet_id: SubnetId | None

    @model_validator(mode="after")
    def _launcher_rules(self) -> TrainingSettings:
        if self.launcher == "ec2":
            _require(self.instance_count == 1, "instance_count", "the ec2 launcher runs on exactly 1 instance")
            _require(self.ec2_image_id is not None, "ec2_image_id",
                     "the ec2 launcher needs an AMI id or resolve:ssm: parameter")
        if self.use_spot:
            _require(self.launcher == "sagemaker", "use_spot", "managed spot is for the sagemaker launcher")
            _require(self.max_wait is not None, "max_wait", "required with training.use_spot=true (seconds)")
        if self.max_wait is not None:
            _require(self.max_wait >= self.max_runtime, "max_wait",
                     f"{self.max_wait} must be >= training.max_runtime ({self.max_runtime})")
        return self


@_STRICT_KEYS
@dataclass
class LearningRateRange:
    # Within LEARNING_RATE_BOUNDS, which also keeps it > 0 for Logarithmic scaling.
    min: LearningRate
    max: LearningRate
    scaling: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"]

    @model_validator(mode="after")
    def _ordered(self) -> LearningRateRange:
        _require(self.min < self.max, "", f"min ({self.min}) must be < max ({self.max})")
        # SageMaker API reference, ContinuousParameterRange ScalingType: Logarithmic works only for
        # ranges whose values are all > 0; ReverseLogarithmic only for ranges entirely within
        # 0 <= x < 1.
        if self.scaling == "Logarithmic":
            _require(self.min > 0, "min", f"{self.min} must be > 0 with scaling Logarithmic (AWS ScalingType)")
        if self.scaling == "ReverseLogarithmic":
            _require(self.min >= 0, "min", f"{self.min} must be >= 0 with scaling ReverseLogarithmic (AWS ScalingType)")
            _require(self.max < 1, "max",
                     f"{self.max} must be < 1 with scaling ReverseLogarithmic (AWS ScalingType: values in [0, 1))")
        return self


@_STRICT_KEYS
@dataclass
class HpoSettings:
    enabled: Bool  # needs training.launcher=sagemaker: see Settings
    strategy: Literal["Bayesian", "Random", "Hyperband", "Grid"]
    # HyperParameterTuningJobObjective MetricName (botocore's sagemaker model): 1-255 characters.
    objective_metric: Annotated[str, Field(min_length=1, max_length=255)]
    objective_type: Literal["Minimize", "Maximize"]
    objective_regex: Annotated[str, AfterValidator(_objective_regex)]
    learning_rate: LearningRateRange
    batch_size: Annotated[list[BatchSize], NonEmpty]  # a categorical range: each within BATCH_SIZE_BOUNDS
    max_jobs: Annotated[Int, Field(ge=1, le=500)]
    max_parallel_jobs: Annotated[Int, Field(ge=1, le=100)]

    @model_validator(mode="after")
    def _parallel_within_jobs(self) -> HpoSettings:
        # SageMaker API reference, HyperParameterTuningJobConfig Strategy: Grid supports only
        # categorical parameters, and hpo.learning_rate is a continuous range.
        _require(self.strategy != "Grid", "strategy",
                 "Grid search supports only categorical parameters; hpo.learning_rate is a continuous range "
                 "(use Bayesian, Random or Hyperband)")
        _require(self.max_parallel_jobs <= self.max_jobs, "max_parallel_jobs",
                 f"{self.max_parallel_jobs} must be <= hpo.max_jobs ({self.max_jobs})")
        return self


VariantName = Annotated[str, _matching(r"[A-Za-z0-9](-*[A-Za-z0-9]){0,62}", "must be 1-63 letters, digits or '-'")]
# CreateEndpointConfig's ProductionVariants holds 1 to 10 variants (botocore's sagemaker model,
# ProductionVariantList min 1, max 10).
MAX_VARIANTS = 10


@_STRICT_KEYS
@dataclass
class VariantSettings:
    instance_type: str  # known to the price snapshot: see Settings
    initial_instance_count: Capacity  # within this variant's autoscaling bounds: see Settings
    # InitialVariantWeight (>= 0 in the API): a variant's share of traffic is its weight over the sum.
    weight: Annotated[Float, Field(ge=0)]
    # This variant's own autoscaling bounds; optional per variant (null: autoscaling.min/max_capacity).
    min_capacity: Capacity | None = None
    max_capacity: Capacity | None = None

    def bounds(self, autoscaling: AutoscalingSettings) -> tuple[int, int]:
        """(min, max) instances: its own bounds, the autoscaling group's, or its initial count
        when autoscaling is off."""
        if not autoscaling.enabled:
            return self.initial_instance_count, self.initial_instance_count
        return self.min_capacity or autoscaling.min_capacity, self.max_capacity or autoscaling.max_capacity


@_STRICT_KEYS
@dataclass
class EndpointSettings:
    kind: Literal["realtime", "serverless"]
    # Production variants by name, in the order the endpoint config lists them.
    variants: Annotated[dict[VariantName, VariantSettings], Field(min_length=1, max_length=MAX_VARIANTS)]
    kms_key_id: str | None
    data_capture: Bool
    data_capture_percentage: Percent
    framework_version: str
    py_version: str
    top_k: Percent
    # ProductionVariantServerlessConfig MemorySizeInMB: 1024 to 6144 in steps of 1024.
    serverless_memory_mb: Annotated[Literal[1024, 2048, 3072, 4096, 5120, 6144], BeforeValidator(_strict_int)]
    serverless_max_concurrency: Annotated[Int, Field(ge=1, le=200)]

    @model_validator(mode="after")
    def _serverless_exclusions(self) -> EndpointSettings:
        # SageMaker Developer Guide, "Serverless Inference", feature exclusions (SG-AWS-004).
        _require(not (self.kind == "serverless" and self.data_capture), "data_capture",
                 "Serverless Inference does not support data capture: set endpoint.data_capture=false")
        return self


@_STRICT_KEYS
@dataclass
class AutoscalingSettings:
    enabled: Bool
    # max before min: when both are out of range, the message is about the maximum.
    max_capacity: Capacity
    min_capacity: Capacity
    target_value: Annotated[Float, Field(gt=0, le=100000)]
    metric: Literal["SageMakerVariantInvocationsPerInstance"]
    scale_in_cooldown: Cooldown
    scale_out_cooldown: Cooldown

    @model_validator(mode="after")
    def _min_within_max(self) -> AutoscalingSettings:
        if self.enabled:
            _require(self.min_capacity <= self.max_capacity, "min_capacity",
                     f"{self.min_capacity} must be <= autoscaling.max_capacity ({self.max_capacity})")
        return self


@_STRICT_KEYS
@dataclass
class FunctionSettings:
    runtime: Annotated[str, AfterValidator(_lambda_runtime)]
    architecture: Literal["x86_64", "arm64"]
    memory_size: Annotated[Int, Field(ge=LAMBDA_MEMORY_MB[0], le=LAMBDA_MEMORY_MB[1])]
    timeout: Annotated[Int, Field(ge=1, le=LAMBDA_MAX_TIMEOUT_S)]
    reserved_concurrency: Concurrency
    provisioned_concurrency: Annotated[Int, Field(ge=0, le=ASSIGNABLE_CONCURRENCY)]
    # Lambda API reference, CreateAlias Name: 1-128 of letters, digits, '-' and '_', not only digits
    # (pattern (?!^[0-9]+$)([a-zA-Z0-9-_]+)).
    alias: Annotated[str, _matching(r"(?![0-9]+\Z)[a-zA-Z0-9_-]{1,128}",
                                    "is not a valid alias name (1-128 letters, digits, '_' or '-', not only digits)")]
    connect_timeout: Annotated[Int, Field(ge=1)]
    read_timeout: Annotated[Int, Field(ge=1)]
    kms_key_arn: str | None
    # VpcConfig: none by default; subnets and security groups come together (Lambda API reference,
    # VpcConfig: up to 16 subnets and 5 security groups).
    subnet_ids: Annotated[list[SubnetId], Field(max_length=16)]
    security_group_ids: Annotated[list[SecurityGroupId], Field(max_length=5)]

    @model_validator(mode="after")
    def _within_limits(self) -> FunctionSettings:
        _require(self.provisioned_concurrency <= self.reserved_concurrency, "provisioned_concurrency",
                 f"{self.provisioned_concurrency} must be <= function.reserved_concurrency ({self.reserved_concurrency})")
        for name in ("connect_timeout", "read_timeout"):
            value = getattr(self, name)
            _require(value <= self.timeout, name,
                     f"{value} is out of range; allowed: 1 to function.timeout ({self.timeout})")
        _require(bool(self.subnet_ids) == bool(self.security_group_ids),
                 "security_group_ids" if self.subnet_ids else "subnet_ids",
                 "a function in a VPC needs both function.subnet_ids and function.security_group_ids")
        return self


@_STRICT_KEYS
@dataclass
class Scope:
    service: Annotated[str, _matching(r"[a-z0-9-]+", "must be an IAM service prefix (e.g. s3, sagemaker)")]
    actions: Annotated[list[str], NonEmpty]
    resources: Annotated[list[str], NonEmpty]
    # Optional per scope (most have none), so the schema holds the default.
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)

    @model_validator(mode="after")
    def _in_the_catalogue(self) -> Scope:
        """The service is an IAM service prefix and each action one of its actions (or a pattern that
        grants at least one), per the IAM catalogue (runner/core/iam_catalog.py, loaded on first use)."""
        from runner.core.iam_catalog import load_catalog  # lazily: 25 ms from its cache, once per process

        catalog = load_catalog()
        _require(self.service.lower() in catalog.services, "service",
                 f"{self.service!r} is not an IAM service prefix (Service Authorization Reference)")
        for i, action in enumerate(self.actions):
            _require(":" not in action, f"actions[{i}]",
                     f"{action!r}: write the action without its service prefix (scope service: {self.service})")
            _require(catalog.exists(f"{self.service}:{action}"), f"actions[{i}]",
                     f"{action!r} is not an action of IAM service {self.service!r} (Service Authorization Reference)")
        return self


# IAM API reference, AttachRolePolicy PolicyArn, and IAM User Guide, "IAM identifiers": a managed
# policy's ARN, arn:PARTITION:iam::aws:policy/... (AWS managed) or arn:PARTITION:iam::ACCOUNT:policy/...
# with a path and a name of letters, digits and +=,.@_- (1-128).
PolicyArn = Annotated[str, _matching(r"arn:aws(-cn|-us-gov)?:iam::(aws|\d{12}):policy/([\w+=,.@-]+/)*[\w+=,.@-]{1,128}",
                                     "is not a managed policy ARN (arn:aws:iam::aws:policy/NAME or "
                                     "arn:aws:iam::ACCOUNT:policy/NAME)")]


@_STRICT_KEYS
@dataclass
class RoleSettings:
    trust: Annotated[str, _matching(r"[a-z0-9.-]+\.amazonaws\.com",
                                    "must be an AWS service principal (e.g. sagemaker.amazonaws.com)")]
    used_by: Annotated[list[Literal["training", "endpoint", "function", "notebook", "ec2_training"]], NonEmpty]
    scopes: list[Scope]
    # Optional per role, so the schema holds the default (conf/iam states it anyway).
    managed_policy_arns: list[PolicyArn] = field(default_factory=list)


RoleKey = Annotated[str, _matching(r"[a-z][a-z0-9_]*", "is not a role key: role keys are snake_case names")]


@_STRICT_KEYS
@dataclass
class IamSettings:
    roles: dict[RoleKey, RoleSettings]

    @model_validator(mode="after")
    def _role_references(self) -> IamSettings:
        for key, role in self.roles.items():
            for i, scope in enumerate(role.scopes):
                for j, resource in enumerate(scope.resources):
                    kind, _, target = resource.partition(":")
                    if kind == "role":
                        _require(target in self.roles, f"roles.{key}.scopes[{i}].resources[{j}]",
                                 f"{resource!r} names no role of iam.roles; roles: {', '.join(sorted(self.roles))}")
        return self


@_STRICT_KEYS
@dataclass
class NotebookSettings:
    enabled: Bool
    instance_type: str  # known to the price snapshot when enabled: see Settings
    volume_size_gb: Annotated[Int, Field(ge=5, le=16384)]
    kms_key_id: str | None
    direct_internet_access: OnOff
    root_access: OnOff
    subnet_id: SubnetId | None
    security_group_ids: Annotated[list[SecurityGroupId], Field(max_length=5)]

    @model_validator(mode="after")
    def _network(self) -> NotebookSettings:
        if not self.enabled:
            return self
        # SageMaker API reference, CreateNotebookInstance (SG-AWS-001, SG-AWS-002).
        _require(self.direct_internet_access == "Enabled" or self.subnet_id is not None, "subnet_id",
                 "required with notebook.direct_internet_access=Disabled: SageMaker refuses a notebook without "
                 "internet access outside a subnet (give a private subnet id and notebook.security_group_ids)")
        _require(self.subnet_id is None or bool(self.security_group_ids), "security_group_ids",
                 "a notebook in a subnet needs security groups of that subnet's VPC")
        _require(self.subnet_id is not None or not self.security_group_ids, "subnet_id",
                 "notebook.security_group_ids apply only with a subnet")
        return self


@_STRICT_KEYS
@dataclass
class InstanceAllowLists:
    # Each type known to the price snapshot: see Settings.
    hosting: list[str]
    training: list[str]
    notebook: list[str]
    ec2: list[str]


@_STRICT_KEYS
@dataclass
class Budgets:
    endpoint_monthly: Budget
    training_job: Budget
    tuning_job: Budget
    provisioned_concurrency_monthly: Budget
    notebook_monthly: Budget


@_STRICT_KEYS
@dataclass
class Suppression:
    id: Annotated[str, _matching(r"(SG-[A-Z]+-\d{3}|CKV2?_[A-Z]+_\d+|CKV_SG_\d+)",
                                 "is not a rule id (SG-AREA-NNN or CKV_...)")]
    # Optional per suppression, so the schema holds the defaults.
    reason: str | None = None
    resource: str | None = None


@_STRICT_KEYS
@dataclass
class CheckovSettings:
    enabled: Bool
    timeout_s: Annotated[Int, Field(ge=10, le=3600)]


@_STRICT_KEYS
@dataclass
class PolicySettings:
    fail_on: Severity
    allowed_instance_types: InstanceAllowLists
    budgets_usd: Budgets
    max_reserved_concurrency: Concurrency
    suppress: list[Suppression]
    checkov: CheckovSettings


@_STRICT_KEYS
@dataclass
class LambdaPricing:
    provisioned_gb_second: Price
    gb_second: Price  # on-demand duration, x86 (CAPACITY.md §3.5)
    requests_per_million: Price


@_STRICT_KEYS
@dataclass
class ServerlessPricing:
    gb_second: Price


@_STRICT_KEYS
@dataclass
class PricingSettings:
    as_of: str
    region: str  # the target's region: see Settings
    # Hours a month an always-on resource is billed (AWS's calculator: 730); a month has at most 744.
    hours_per_month: Annotated[Int, Field(ge=1, le=744)]
    spot_discount: Annotated[Float, Field(ge=0, le=0.95)]
    hosting: dict[str, Price]
    training: dict[str, Price]
    notebook: dict[str, Price]
    ec2: dict[str, Price]
    # `lambda` is a Python keyword; the YAML key stays `lambda`, see _PRICING_LAMBDA_KEY.
    lambda_: LambdaPricing
    serverless: ServerlessPricing
    # The instance catalogue beside the prices: vCPUs per hosting type (the model server's default
    # worker count, CAPACITY.md §2.1), read by stage=simulate.
    vcpus: dict[str, Annotated[Int, Field(ge=1, le=448)]]

    @model_validator(mode="after")
    def _every_hosting_type_has_vcpus(self) -> PricingSettings:
        missing = sorted(set(self.hosting) - set(self.vcpus))
        _require(not missing, "vcpus", f"no vCPU count for hosting type(s) {', '.join(missing)}")
        return self


@_STRICT_KEYS
@dataclass
class ApplySettings:
    rollback: Bool


@_STRICT_KEYS
@dataclass
class DestroySettings:
    delete_artifacts: Bool


@_STRICT_KEYS
@dataclass
class InvokeSettings:
    samples: Percent


@_STRICT_KEYS
@dataclass
class TrafficSettings:
    """A traffic profile (conf/traffic/, docs/capacity.md): each profile sets its own keys; which
    ones a profile needs and their ranges are checked by runner.capacity.traffic."""

    profile: Literal["constant", "diurnal", "bursty", "step", "trace"]
    minutes: Annotated[Int, Field(ge=1, le=7 * 1440)]
    seed: Annotated[Int, Field(ge=0)]
    rps: Float | None = None
    mean_rps: Float | None = None
    amplitude: Float | None = None
    peak_hour: Float | None = None
    cv: Float | None = None
    burst_rps: Float | None = None
    base_minutes: Float | None = None
    burst_minutes: Float | None = None
    steps: list[list[Float]] | None = None
    path: str | None = None
    function: str | Int | None = None
    scale: Float | None = None


@_STRICT_KEYS
@dataclass
class SimulateSettings:
    """The capacity model's parameters (docs/capacity.md): null takes the measured or shipped
    figure (service time) or the instance type's (workers)."""

    calibrate: Bool
    service_ms: Annotated[Float, Field(gt=0, le=600_000)] | None
    service_cv: Annotated[Float, Field(ge=0, le=10)] | None
    workers: Annotated[Int, Field(ge=1, le=192)] | None
    queue: Annotated[Int, Field(ge=0, le=10_000)]
    startup_s: Annotated[Float, Field(ge=0, le=3600)]
    lambda_overhead_ms: Annotated[Float, Field(ge=0, le=900_000)]
    cold_start_ms: Annotated[Float, Field(ge=0, le=10_000)]
    keep_warm_minutes: Annotated[Int, Field(ge=1, le=1440)]
    alarm_high_minutes: Annotated[Int, Field(ge=1, le=60)]
    alarm_low_minutes: Annotated[Int, Field(ge=1, le=60)]
    scale_in_ratio: Annotated[Float, Field(gt=0, le=1)]


@_STRICT_KEYS
@dataclass
class SloSettings:
    """What a simulated day must meet (null: no objective); the gate's SG-CAP rules read them."""

    p99_ms: Annotated[Float, Field(gt=0)] | None
    error_rate: Annotated[Float, Field(ge=0, le=1)] | None


@_STRICT_KEYS
@dataclass
class SweepSettings:
    # Jobs of a sweep that run remotely (SageMaker jobs, deploys on target=aws) at once; local jobs
    # run one per core. 1..20: SageMaker's default quota of concurrent training jobs is lower still.
    max_parallel: Annotated[Int, Field(ge=1, le=20)]


@_STRICT_KEYS
@dataclass
class Settings:
    name: StackName
    stage: Stage
    serve: Bool
    quiet: Bool
    image: str | None
    workdir: str
    tags: Annotated[dict[TagKey, TagValue], Field(max_length=MAX_USER_TAGS)]
    target: TargetSettings
    data: DataSettings
    model: ModelSettings
    training: TrainingSettings
    hpo: HpoSettings
    endpoint: EndpointSettings
    autoscaling: AutoscalingSettings
    function: FunctionSettings
    iam: IamSettings
    notebook: NotebookSettings
    policy: PolicySettings
    pricing: PricingSettings
    apply: ApplySettings
    destroy: DestroySettings
    invoke: InvokeSettings
    sweep: SweepSettings
    traffic: TrafficSettings
    simulate: SimulateSettings
    slo: SloSettings

    @model_validator(mode="after")
    def _across_groups(self) -> Settings:
        """The rules that relate groups to each other and to the price snapshot."""
        t, e, a, prices = self.training, self.endpoint, self.autoscaling, self.pricing
        # The stack's bucket is <name>-<12-digit account>-<region> (runner/core/names.py).
        bucket = f"{self.name}-{'0' * 12}-{self.target.region}"
        problem = s3_bucket_problem(bucket)
        _require(problem is None, "name", f"makes the bucket name {bucket!r} (account zeroed), which {problem}")
        # IAM role names are <name>-<role key with '-'> (ResourceNames.role_name): at most 64
        # characters (IAM API reference, CreateRole RoleName).
        # Every part the stack deploys or runs has a role to run as (runner.stack.parts.active_parts).
        used = {part for role in self.iam.roles.values() for part in role.used_by}
        for part in self._active_parts():
            _require(part in used, "iam.roles",
                     f"no role has used_by: [{part}], and the stack runs {part} (give one role used_by: [{part}])")
        for key in self.iam.roles:
            role_name = f"{self.name}-{key.replace('_', '-')}"
            _require(len(role_name) <= IAM_ROLE_NAME_MAX, f"iam.roles.{key}",
                     f"the role name {role_name!r} is {len(role_name)} characters with the stack name; "
                     f"IAM allows at most {IAM_ROLE_NAME_MAX}")
        if t.launcher == "ec2":
            _known_instance(t.instance_type, prices.ec2, "ec2", "training.instance_type")
        else:
            _known_instance(t.instance_type, prices.training, "training", "training.instance_type")
        if self.hpo.enabled:
            _require(t.launcher == "sagemaker", "hpo", "hpo=sagemaker_tuner needs training=sagemaker or sagemaker_multi")
        for name, variant in e.variants.items():
            key = f"endpoint.variants.{name}"
            _known_instance(variant.instance_type, prices.hosting, "hosting", f"{key}.instance_type")
            low, high = variant.bounds(a)
            _require(low <= high, f"{key}.min_capacity", f"{low} must be <= the variant's max capacity ({high})")
            _require(low <= variant.initial_instance_count <= high or e.kind == "serverless",
                     f"{key}.initial_instance_count",
                     f"{variant.initial_instance_count} must be within autoscaling bounds [{low}, {high}]")
        # Serverless Inference supports one production variant only (AWS SageMaker Developer Guide,
        # "Serverless Inference", feature exclusions: multiple production variants).
        _require(e.kind != "serverless" or len(e.variants) == 1, "endpoint.variants",
                 f"a serverless endpoint has exactly one variant, not {len(e.variants)}")
        if self.notebook.enabled:
            _known_instance(self.notebook.instance_type, prices.notebook, "notebook", "notebook.instance_type")
        for use in ("hosting", "training", "notebook", "ec2"):
            for i, instance_type in enumerate(getattr(self.policy.allowed_instance_types, use)):
                _known_instance(instance_type, getattr(prices, use), use, f"policy.allowed_instance_types.{use}[{i}]")
        _require(prices.region == self.target.region, "pricing",
                 f"the price snapshot is for {prices.region}, the target is in {self.target.region}")
        self._kms_keys()
        self._data_readable()
        _images(self)
        return self

    def _active_parts(self) -> list[str]:
        """The parts this configuration deploys or runs, as runner.stack.parts.active_parts says."""
        launcher = {"sagemaker": ["training"], "ec2": ["ec2_training"]}.get(self.training.launcher, [])
        return ["endpoint", "function", *launcher, *(["notebook"] if self.notebook.enabled else [])]

    def _kms_keys(self) -> None:
        """Each KMS key in a form the API that receives it takes (botocore's models and the API
        reference pages named here), in the target's region."""
        region, t = self.target.region, self.training
        all_forms = KMS_KEY_FORMS
        # SageMaker API reference, CreateEndpointConfig KmsKeyId: key id, key ARN, alias name or
        # alias ARN (botocore's sagemaker model, shape KmsKeyId).
        _kms_key(self.endpoint.kms_key_id, "endpoint.kms_key_id", all_forms, "CreateEndpointConfig KmsKeyId", region)
        # CreateNotebookInstance KmsKeyId: the same KmsKeyId shape as CreateEndpointConfig's in
        # botocore's sagemaker model ([a-zA-Z0-9:/_-]*), whose page lists the four forms; the
        # notebook's page lists none, so the four are taken.
        _kms_key(self.notebook.kms_key_id, "notebook.kms_key_id", all_forms, "CreateNotebookInstance KmsKeyId", region)
        if t.launcher == "ec2":
            # EC2 API reference, EbsBlockDevice KmsKeyId (RunInstances BlockDeviceMappings): "key ID,
            # key alias, key ARN, or alias ARN".
            _kms_key(t.volume_kms_key_id, "training.volume_kms_key_id", all_forms,
                     "EC2 RunInstances EbsBlockDevice KmsKeyId", region)
        else:
            # SageMaker API reference, ResourceConfig VolumeKmsKeyId (and HyperParameterTuning
            # ResourceConfig): a key id or a key ARN only; the same key is OutputDataConfig KmsKeyId,
            # which takes all four. The local launcher runs SageMaker's job definition, so the same.
            _kms_key(t.volume_kms_key_id, "training.volume_kms_key_id", ("key id", "key ARN"),
                     "SageMaker CreateTrainingJob ResourceConfig.VolumeKmsKeyId", region)
        # Lambda API reference, CreateFunction KMSKeyArn: "The ARN of the KMS customer managed key"
        # (botocore's lambda model, shape KMSKeyArn: (arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()), so a
        # key ARN only: no key id, no alias (an alias ARN names no key of its own).
        _kms_key(self.function.kms_key_arn, "function.kms_key_arn", ("key ARN",), "Lambda CreateFunction KMSKeyArn",
                 region)

    def _data_readable(self) -> None:
        """An s3:// data set cannot be read by a stage that reads the data on target=local: local
        training (runner/app/training_data.py) syncs it from the target's S3, and the emulator a
        run starts holds nothing of the user's. Only with target.endpoint_url (an emulator the user
        started, and may have put the data in) is it left to the stage's check (require_s3_data).
        stage=all is left to that check too: it is the composed default, under which presets that
        target AWS (data=dog_images) are checked and planned on the local target."""
        if self.target.kind != "local" or self.target.endpoint_url is not None:
            return
        reads_data = self.stage == "train" or (self.stage == "invoke" and self.image is None)
        _require(not (reads_data and self.data.source.startswith("s3://")), "data.source",
                 f"{self.data.source} cannot be read on target=local with stage={self.stage} (the local emulator's "
                 "S3 starts empty and local training reads folders on this machine): use a local folder with "
                 "train/ valid/ test/, data=digits, or target=aws")


def _images(settings: Settings) -> None:
    """The training image and each hosting image resolve with the lookup the stack uses
    (runner.core.images.image_uri: sagemaker-core's image_uris.retrieve, cached per argument set),
    so validation and use cannot disagree; a version or Python version with no image, or a region
    the image database does not serve, is refused here naming its key instead of a traceback from
    the lookup while the stack is built."""
    e, t, region = settings.endpoint, settings.training, settings.target.region
    training_type = t.instance_type if t.instance_type.startswith("ml.") else "ml." + t.instance_type
    _image(t.framework_version, t.py_version, region, training_type, "training", "training",
           "training.instance_type")
    for name, variant in e.variants.items():
        _image(e.framework_version, e.py_version, region, variant.instance_type, "inference", "endpoint",
               f"endpoint.variants.{name}.instance_type")


def _image(version: str, py_version: str, region: str, instance_type: str, scope: str, group: str,
           instance_key: str) -> None:
    # An empty version would be "the latest" to the SDK: a typo, not a choice.
    _require(re.fullmatch(r"\d+(\.\d+){1,2}", version) is not None, f"{group}.framework_version",
             f"{version!r} is not a PyTorch version (e.g. 2.5 or 2.5.1)")
    _require(re.fullmatch(r"py\d+", py_version) is not None, f"{group}.py_version",
             f"{py_version!r} is not a Python version tag (e.g. py311)")
    problem = _image_problem(version, py_version, region, instance_type, scope)
    if problem is None:
        return
    kind, supported = problem
    where = "sagemaker-core's image database (sagemaker.core.image_uris)"
    if kind == "version":
        _fail(f"{group}.framework_version",
              f"{version!r} has no SageMaker PyTorch {scope} image in {where}; versions: {supported}")
    if kind == "py_version":
        _fail(f"{group}.py_version", f"{py_version!r} has no SageMaker PyTorch {version} {scope} image for "
                                     f"{instance_type} in {where}; Python versions: {supported}")
    if kind == "region":
        _fail("target.region", f"{region!r} has no SageMaker PyTorch {scope} image in {where}; regions: {supported}")
    _fail(instance_key, f"{instance_type!r} has no SageMaker PyTorch {version} {scope} image in {where} ({supported})")


@cache
def _image_problem(version: str, py_version: str, region: str, instance_type: str,
                   scope: str) -> tuple[str, str] | None:
    """None when the image resolves; else what is unsupported and what is: ("version" | "py_version" |
    "region" | "other", the SDK's list or message)."""
    from runner.core.images import image_uri  # lazily: the stack's own lookup (and cache); imports the SDK

    try:
        image_uri(version, py_version, region, instance_type, scope)
    except Exception as exc:  # the SDK raises ValueError; any failure means no image
        message = " ".join(str(exc).split())
        found = re.search(r"Unsupported (pytorch version|Python version|region)\b.*?Supported [^:]*: (.*?)\.?$",
                          message)
        if found is None:
            return "other", message
        kind = {"pytorch version": "version", "Python version": "py_version", "region": "region"}[found[1]]
        return kind, found[2]
    return None


def _known_instance(instance_type: str, prices: dict[str, float], use: str, key: str) -> None:
    _require(instance_type in prices, key,
             f"unknown {use} instance type {instance_type!r}; known ({use}): {', '.join(sorted(prices))}")


_PRICING_LAMBDA_KEY = "lambda"
_SETTINGS = TypeAdapter(Settings)


def load_settings(cfg: DictConfig | dict) -> Settings:
    """Validate a composed config and return typed settings, or raise ``ConfigError``."""
    raw = _resolved(cfg) if isinstance(cfg, DictConfig) else dict(cfg)
    assert isinstance(raw, dict)  # a composed config is a mapping
    container: dict[str, Any] = {str(key): value for key, value in raw.items() if key != "hydra"}
    pricing = container.get("pricing")
    if isinstance(pricing, dict) and _PRICING_LAMBDA_KEY in pricing:
        pricing = dict(pricing)
        pricing["lambda_"] = pricing.pop(_PRICING_LAMBDA_KEY)
        container["pricing"] = pricing
    try:
        return _SETTINGS.validate_python(container)
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc)) from None


def _resolved(cfg: DictConfig) -> Any:
    """The config as plain containers with every interpolation resolved; one that does not resolve
    (``name=${nope}``, ``${oc.env:UNSET}``, an unknown resolver) is a ConfigError naming its key."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        key = str(getattr(exc, "full_key", "") or "") or "config"
        written = _unresolved_text(cfg, key)
        reason = " ".join(str(getattr(exc, "msg", None) or exc).split("full_key:")[0].split())
        raise ConfigError(f"{key}: {written}does not resolve ({reason})") from None


def _unresolved_text(cfg: DictConfig, key: str) -> str:
    """The interpolation as written at ``key`` ("'${nope}' "), or "" when it cannot be told."""
    node: Any = OmegaConf.to_container(cfg, resolve=False)
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", key):
        try:
            node = node[int(index)] if index else node[name]
        except (KeyError, IndexError, TypeError):
            return ""
    return f"{node!r} " if isinstance(node, str) else ""


def _describe_validation_error(exc: ValidationError) -> str:
    """One line naming the full key and what is allowed: the first problem pydantic found."""
    error = exc.errors()[0]
    loc, kind, value = error["loc"], error["type"], error["input"]
    key = _dotted(loc)
    if kind == "sagegate_rule":
        relative = error["ctx"]["key"]
        key = f"{key}.{relative}" if key and relative else key or relative
        return f"{key}: {error['ctx']['message']}"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"{key}: unknown key"
    if kind in ("missing", "missing_argument"):
        return f"{key}: a value is required"
    if kind in _STRICT_TYPES:
        return f"{key}: {value!r} {_STRICT_TYPES[kind]}"
    constraints = _constraints(loc)
    if kind == "literal_error" and constraints.get("choices"):
        allowed = ", ".join(map(str, constraints["choices"]))
        return f"{key}: {value!r} is not allowed; allowed: {allowed}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{key}: {_out_of_range(value, kind, error['ctx'], constraints)}"
    if kind == "string_pattern_mismatch" and constraints.get("problem"):
        return f"{key}: {value!r} {constraints['problem']}"
    if kind == "too_short":
        needed = error["ctx"]["min_length"]
        return f"{key}: needs at least {'one value' if needed == 1 else f'{needed} values'}"
    if kind == "too_long":
        return f"{key}: {len(value)} values; allowed: at most {error['ctx']['max_length']}"
    return f"{key}: {value!r} is not valid: {error['msg']}"


def _dotted(loc: tuple[int | str, ...]) -> str:
    key = ""
    for part in loc:
        if part == "[key]":  # a dict key that failed validation: the key is the previous part
            continue
        part = "lambda" if part == "lambda_" else part
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


# Strict scalars (Int, Float, Bool): what a value of the wrong type reads as.
_STRICT_TYPES = {
    "int_type": "is not an integer (strict: no booleans, strings or fractions)",
    "float_type": "is not a number (strict: no booleans or strings)",
    "bool_type": "is not a boolean (strict: true or false)",
    "finite_number": "is not a finite number (no inf or nan)",
}
_BOUND = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def _out_of_range(value: Any, kind: str, ctx: dict[str, Any], constraints: dict[str, Any]) -> str:
    """'0 is out of range (must be >= 1); allowed: 1 to 1000', or '-1 must be >= 0' for one bound."""
    failed = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le"}[kind]
    must = f"must be {_BOUND[failed]} {constraints.get(failed, ctx[failed])}"
    low = next((b for b in ("ge", "gt") if b in constraints), None)
    high = next((b for b in ("le", "lt") if b in constraints), None)
    if low is None or high is None:
        return f"{value} {must}"
    if (low, high) == ("ge", "le"):
        allowed = f"{constraints['ge']} to {constraints['le']}"
    else:
        allowed = f"{'[' if low == 'ge' else '('}{constraints[low]}, {constraints[high]}{']' if high == 'le' else ')'}"
    return f"{value} is out of range ({must}); allowed: {allowed}"


def _constraints(loc: tuple[int | str, ...]) -> dict[str, Any]:
    """What the schema declares at ``loc``: bounds (ge/gt/le/lt), Literal choices, a pattern's problem."""
    hint: Any = Settings
    parts = list(loc)
    for i, part in enumerate(parts):
        if part == "[key]":
            continue
        hint = _unwrap(hint, keep_annotated=False)
        if isinstance(hint, type) and is_dataclass(hint):
            hint = _field_hints(hint).get(str(part))
        elif get_origin(hint) is list:
            hint = get_args(hint)[0]
        elif get_origin(hint) is dict:
            hint = get_args(hint)[0 if i + 1 < len(parts) and parts[i + 1] == "[key]" else 1]
        else:
            return {}
        if hint is None:
            return {}
    found: dict[str, Any] = {}
    hint = _unwrap(hint, keep_annotated=True)
    if get_origin(hint) is Annotated:
        for meta in hint.__metadata__:
            items = [meta, *meta.metadata] if isinstance(meta, FieldInfo) else [meta]
            for item in items:
                if isinstance(item, FieldInfo) and item.description:
                    found["problem"] = item.description
                for bound in ("ge", "gt", "le", "lt"):
                    if isinstance(item, annotated_types.BaseMetadata) and hasattr(item, bound):
                        found[bound] = getattr(item, bound)
        hint = get_args(hint)[0]
    if get_origin(hint) is Literal:
        found["choices"] = get_args(hint)
    return found


def _unwrap(hint: Any, keep_annotated: bool) -> Any:
    """``X | None`` -> ``X``; and ``Annotated[X, ...]`` -> ``X`` unless ``keep_annotated``."""
    while True:
        if get_origin(hint) in (Union, UnionType):
            members = [a for a in get_args(hint) if a is not type(None)]
            if len(members) != 1:
                return hint
            hint = members[0]
        elif get_origin(hint) is Annotated and not keep_annotated:
            hint = get_args(hint)[0]
        else:
            return hint


@cache
def _field_hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls, include_extras=True)
