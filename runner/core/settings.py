"""Typed, validated settings from the composed Hydra config.

The schema is a tree of dataclasses. ``load_settings`` validates the composed config against it
with pydantic (unknown keys and wrong types are rejected; it takes about a millisecond, which
matters when a sweep loads a hundred configs), then checks the cross-field rules and ranges that
a type cannot express. Every rejection is a ``ConfigError`` whose message names the full key
and what is allowed, so the CLI can print one line and exit 2 before anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf
from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config

from runner.core.errors import ConfigError

# Every schema class refuses keys it does not declare; YAML numbers are accepted for strings
# (e.g. training.framework_version=2.6).
_STRICT_KEYS = with_config(ConfigDict(extra="forbid", coerce_numbers_to_str=True))

STAGES = ("check", "plan", "train", "deploy", "invoke", "destroy", "all")
SEVERITIES = ("info", "low", "medium", "high", "critical")

# AWS Lambda's account default: 1000 concurrent executions, of which 100 stay unreserved.
ACCOUNT_CONCURRENCY_LIMIT = 1000
UNRESERVED_FLOOR = 100
LAMBDA_MAX_TIMEOUT_S = 900
LAMBDA_MEMORY_MB = (128, 10240)
# Application Auto Scaling accepts cooldowns up to a day; SageMaker endpoints allow 1000
# instances per variant at most.
MAX_COOLDOWN_S = 86400
MAX_VARIANT_INSTANCES = 1000
# SageMaker training's MaxRuntimeInSeconds upper bound (28 days).
MAX_TRAINING_RUNTIME_S = 28 * 24 * 3600
STACK_NAME = re.compile(r"^[a-z][a-z0-9-]{1,22}[a-z0-9]$")


@_STRICT_KEYS
@dataclass
class TargetSettings:
    kind: str = "local"
    region: str = "us-east-1"
    profile: str | None = None
    endpoint_url: str | None = None


@_STRICT_KEYS
@dataclass
class DataSettings:
    name: str = "digits"
    source: str = "builtin:digits"
    image_size: int = 64
    num_classes: int = 10
    on_bad_image: str = "skip"


@_STRICT_KEYS
@dataclass
class ModelSettings:
    arch: str = "resnet18"
    weights: str | None = None
    freeze_backbone: bool = False
    head_hidden: int = 256


@_STRICT_KEYS
@dataclass
class TrainingSettings:
    launcher: str = "local"
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    use_spot: bool = False
    max_runtime: int = 3600
    max_wait: int | None = None
    checkpointing: bool = True
    epochs: int = 3
    batch_size: int = 64
    learning_rate: float = 0.002
    weight_decay: float = 0.0001
    patience: int = 3
    seed: int = 42
    framework_version: str = "2.5"
    py_version: str = "py311"
    volume_size_gb: int = 30
    volume_kms_key_id: str | None = None
    network_isolation: bool = True
    inter_container_encryption: bool = True
    ec2_image_id: str | None = None
    ec2_subnet_id: str | None = None


@_STRICT_KEYS
@dataclass
class LearningRateRange:
    min: float = 0.001
    max: float = 0.1
    scaling: str = "Auto"


@_STRICT_KEYS
@dataclass
class HpoSettings:
    enabled: bool = False
    strategy: str = "Bayesian"
    objective_metric: str = "Test Loss"
    objective_type: str = "Minimize"
    objective_regex: str = r"Testing Loss: ([0-9\.]+)"
    learning_rate: LearningRateRange = field(default_factory=LearningRateRange)
    batch_size: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512])
    max_jobs: int = 2
    max_parallel_jobs: int = 1


@_STRICT_KEYS
@dataclass
class EndpointSettings:
    kind: str = "realtime"
    instance_type: str = "ml.m5.large"
    initial_instance_count: int = 1
    variant_name: str = "AllTraffic"
    kms_key_id: str | None = None
    data_capture: bool = False
    data_capture_percentage: int = 20
    framework_version: str = "2.5"
    py_version: str = "py311"
    top_k: int = 3
    serverless_memory_mb: int = 2048
    serverless_max_concurrency: int = 5


@_STRICT_KEYS
@dataclass
class AutoscalingSettings:
    enabled: bool = True
    min_capacity: int = 1
    max_capacity: int = 3
    target_value: float = 20.0
    metric: str = "SageMakerVariantInvocationsPerInstance"
    scale_in_cooldown: int = 30
    scale_out_cooldown: int = 30


@_STRICT_KEYS
@dataclass
class FunctionSettings:
    runtime: str = "python3.12"
    architecture: str = "x86_64"
    memory_size: int = 256
    timeout: int = 30
    reserved_concurrency: int = 5
    provisioned_concurrency: int = 2
    alias: str = "live"
    connect_timeout: int = 2
    read_timeout: int = 20
    kms_key_arn: str | None = None


@_STRICT_KEYS
@dataclass
class Scope:
    service: str
    actions: list[str]
    resources: list[str]
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)


@_STRICT_KEYS
@dataclass
class RoleSettings:
    trust: str
    used_by: list[str]
    scopes: list[Scope]
    managed_policy_arns: list[str] = field(default_factory=list)


@_STRICT_KEYS
@dataclass
class IamSettings:
    roles: dict[str, RoleSettings] = field(default_factory=dict)


@_STRICT_KEYS
@dataclass
class NotebookSettings:
    enabled: bool = False
    instance_type: str = "ml.t3.medium"
    volume_size_gb: int = 5
    kms_key_id: str | None = None
    direct_internet_access: str = "Disabled"
    root_access: str = "Disabled"


@_STRICT_KEYS
@dataclass
class InstanceAllowLists:
    hosting: list[str] = field(default_factory=list)
    training: list[str] = field(default_factory=list)
    notebook: list[str] = field(default_factory=list)
    ec2: list[str] = field(default_factory=list)


@_STRICT_KEYS
@dataclass
class Budgets:
    endpoint_monthly: float = 300.0
    training_job: float = 50.0
    tuning_job: float = 200.0
    provisioned_concurrency_monthly: float = 50.0
    notebook_monthly: float = 60.0


@_STRICT_KEYS
@dataclass
class Suppression:
    id: str
    reason: str | None = None
    resource: str | None = None


@_STRICT_KEYS
@dataclass
class CheckovSettings:
    enabled: bool = True
    timeout_s: int = 600


@_STRICT_KEYS
@dataclass
class PolicySettings:
    fail_on: str = "high"
    allowed_instance_types: InstanceAllowLists = field(default_factory=InstanceAllowLists)
    budgets_usd: Budgets = field(default_factory=Budgets)
    max_reserved_concurrency: int = 100
    suppress: list[Suppression] = field(default_factory=list)
    checkov: CheckovSettings = field(default_factory=CheckovSettings)


@_STRICT_KEYS
@dataclass
class LambdaPricing:
    provisioned_gb_second: float = 0.0000041667
    requests_per_million: float = 0.2


@_STRICT_KEYS
@dataclass
class ServerlessPricing:
    gb_second: float = 0.00002


@_STRICT_KEYS
@dataclass
class PricingSettings:
    as_of: str
    region: str = "us-east-1"
    hours_per_month: int = 730
    spot_discount: float = 0.7
    hosting: dict[str, float] = field(default_factory=dict)
    training: dict[str, float] = field(default_factory=dict)
    notebook: dict[str, float] = field(default_factory=dict)
    ec2: dict[str, float] = field(default_factory=dict)
    # `lambda` is a Python keyword; the YAML key stays `lambda`, see _PRICING_LAMBDA_KEY.
    lambda_: LambdaPricing = field(default_factory=LambdaPricing)
    serverless: ServerlessPricing = field(default_factory=ServerlessPricing)


@_STRICT_KEYS
@dataclass
class ApplySettings:
    rollback: bool = True


@_STRICT_KEYS
@dataclass
class DestroySettings:
    delete_artifacts: bool = False


@_STRICT_KEYS
@dataclass
class InvokeSettings:
    samples: int = 3


@_STRICT_KEYS
@dataclass
class Settings:
    name: str = "sagegate-demo"
    stage: str = "all"
    serve: bool = False
    quiet: bool = False
    image: str | None = None
    workdir: str = ".sagegate"
    tags: dict[str, str] = field(default_factory=dict)
    target: TargetSettings = field(default_factory=TargetSettings)
    data: DataSettings = field(default_factory=DataSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    hpo: HpoSettings = field(default_factory=HpoSettings)
    endpoint: EndpointSettings = field(default_factory=EndpointSettings)
    autoscaling: AutoscalingSettings = field(default_factory=AutoscalingSettings)
    function: FunctionSettings = field(default_factory=FunctionSettings)
    iam: IamSettings = field(default_factory=IamSettings)
    notebook: NotebookSettings = field(default_factory=NotebookSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    pricing: PricingSettings = field(default_factory=PricingSettings)
    apply: ApplySettings = field(default_factory=ApplySettings)
    destroy: DestroySettings = field(default_factory=DestroySettings)
    invoke: InvokeSettings = field(default_factory=InvokeSettings)


_PRICING_LAMBDA_KEY = "lambda"


def load_settings(cfg: DictConfig | dict) -> Settings:
    """Validate a composed config and return typed settings, or raise ``ConfigError``."""
    container = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    container = {key: value for key, value in container.items() if key != "hydra"}
    pricing = container.get("pricing")
    if isinstance(pricing, dict) and _PRICING_LAMBDA_KEY in pricing:
        pricing = dict(pricing)
        pricing["lambda_"] = pricing.pop(_PRICING_LAMBDA_KEY)
        container["pricing"] = pricing
    try:
        settings = _SETTINGS.validate_python(container)
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc)) from None
    validate(settings)
    return settings


_SETTINGS = TypeAdapter(Settings)


def _describe_validation_error(exc: ValidationError) -> str:
    """One line naming the full key: the first problem pydantic found."""
    error = exc.errors()[0]
    key = ""
    for part in error["loc"]:
        part = "lambda" if part == "lambda_" else part
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    if error["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"{key}: unknown key"
    if error["type"] == "missing":
        return f"{key}: a value is required"
    return f"{key}: {error['input']!r} is not valid: {error['msg']}"


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


def _one_of(value: Any, allowed: tuple | list, key: str) -> None:
    _check(value in allowed, key, f"{value!r} is not allowed; allowed: {', '.join(map(str, allowed))}")


def _in_range(value: float, low: float, high: float, key: str) -> None:
    _check(low <= value <= high, key, f"{value} is out of range; allowed: {low} to {high}")


def _known_instance(instance_type: str, prices: dict[str, float], use: str, key: str) -> None:
    _check(
        instance_type in prices,
        key,
        f"unknown {use} instance type {instance_type!r}; known ({use}): {', '.join(sorted(prices))}",
    )


def validate(s: Settings) -> None:
    """Ranges and cross-field rules that the types cannot express."""
    _check(bool(STACK_NAME.match(s.name)), "name",
           f"{s.name!r} must be 3-24 characters of a-z, 0-9 and '-', starting with a letter")
    _one_of(s.stage, STAGES, "stage")
    _one_of(s.target.kind, ("local", "aws"), "target.kind")
    _check(bool(re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", s.target.region)), "target.region",
           f"{s.target.region!r} is not an AWS region name (e.g. us-east-1)")
    if s.target.endpoint_url is not None:
        _check(s.target.kind == "local", "target.endpoint_url", "only applies to target=local")
        _check(bool(re.match(r"^http://(127\.0\.0\.1|localhost):\d+/?$", s.target.endpoint_url)),
               "target.endpoint_url", f"{s.target.endpoint_url!r} must be http://127.0.0.1:PORT")

    _check(s.data.source.startswith(("builtin:", "s3://", "/", "./", "../", "~")) or "://" not in s.data.source,
           "data.source", f"{s.data.source!r} must be builtin:digits, a local path or an s3:// URI")
    _in_range(s.data.image_size, 16, 1024, "data.image_size")
    _in_range(s.data.num_classes, 2, 100000, "data.num_classes")
    _one_of(s.data.on_bad_image, ("skip", "fail"), "data.on_bad_image")

    _one_of(s.model.arch, ("resnet18", "resnet50"), "model.arch")
    _in_range(s.model.head_hidden, 1, 65536, "model.head_hidden")

    t = s.training
    _one_of(t.launcher, ("local", "sagemaker", "ec2"), "training.launcher")
    if t.launcher == "ec2":
        _known_instance(t.instance_type, s.pricing.ec2, "ec2", "training.instance_type")
        _check(t.instance_count == 1, "training.instance_count", "the ec2 launcher runs on exactly 1 instance")
        _check(t.ec2_image_id is not None, "training.ec2_image_id", "the ec2 launcher needs an AMI id or resolve:ssm: parameter")
    else:
        _known_instance(t.instance_type, s.pricing.training, "training", "training.instance_type")
    _in_range(t.instance_count, 1, 100, "training.instance_count")
    _in_range(t.max_runtime, 60, MAX_TRAINING_RUNTIME_S, "training.max_runtime")
    if t.use_spot:
        _check(t.launcher == "sagemaker", "training.use_spot", "managed spot is for the sagemaker launcher")
        _check(t.max_wait is not None, "training.max_wait", "required with training.use_spot=true (seconds)")
    if t.max_wait is not None:
        _check(t.max_wait >= t.max_runtime, "training.max_wait",
               f"{t.max_wait} must be >= training.max_runtime ({t.max_runtime})")
    _in_range(t.epochs, 1, 1000, "training.epochs")
    _in_range(t.batch_size, 1, 4096, "training.batch_size")
    _check(0 < t.learning_rate < 10, "training.learning_rate", f"{t.learning_rate} is out of range; allowed: (0, 10)")
    _in_range(t.weight_decay, 0, 1, "training.weight_decay")
    _in_range(t.patience, 1, 1000, "training.patience")
    _in_range(t.volume_size_gb, 1, 16384, "training.volume_size_gb")

    h = s.hpo
    _one_of(h.strategy, ("Bayesian", "Random", "Hyperband", "Grid"), "hpo.strategy")
    _one_of(h.objective_type, ("Minimize", "Maximize"), "hpo.objective_type")
    _check(h.learning_rate.min > 0, "hpo.learning_rate.min", f"{h.learning_rate.min} must be > 0")
    _check(h.learning_rate.min < h.learning_rate.max, "hpo.learning_rate",
           f"min ({h.learning_rate.min}) must be < max ({h.learning_rate.max})")
    _one_of(h.learning_rate.scaling, ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic"), "hpo.learning_rate.scaling")
    _check(len(h.batch_size) > 0, "hpo.batch_size", "needs at least one value")
    _check(all(b > 0 for b in h.batch_size), "hpo.batch_size", "values must be > 0")
    _in_range(h.max_jobs, 1, 500, "hpo.max_jobs")
    _in_range(h.max_parallel_jobs, 1, 100, "hpo.max_parallel_jobs")
    _check(h.max_parallel_jobs <= h.max_jobs, "hpo.max_parallel_jobs",
           f"{h.max_parallel_jobs} must be <= hpo.max_jobs ({h.max_jobs})")
    try:
        compiled = re.compile(h.objective_regex)
    except re.error as exc:
        raise ConfigError(f"hpo.objective_regex: not a regular expression ({exc})") from None
    _check(compiled.groups == 1, "hpo.objective_regex", "needs exactly one capture group for the value")
    if h.enabled:
        _check(t.launcher == "sagemaker", "hpo", "hpo=sagemaker_tuner needs training=sagemaker or sagemaker_multi")

    e = s.endpoint
    _one_of(e.kind, ("realtime", "serverless"), "endpoint.kind")
    _known_instance(e.instance_type, s.pricing.hosting, "hosting", "endpoint.instance_type")
    _in_range(e.initial_instance_count, 1, MAX_VARIANT_INSTANCES, "endpoint.initial_instance_count")
    _check(bool(re.match(r"^[A-Za-z0-9](-*[A-Za-z0-9]){0,62}$", e.variant_name)), "endpoint.variant_name",
           f"{e.variant_name!r} must be 1-63 letters, digits or '-'")
    _in_range(e.data_capture_percentage, 1, 100, "endpoint.data_capture_percentage")
    _in_range(e.top_k, 1, 100, "endpoint.top_k")
    _one_of(e.serverless_memory_mb, (1024, 2048, 3072, 4096, 5120, 6144), "endpoint.serverless_memory_mb")
    _in_range(e.serverless_max_concurrency, 1, 200, "endpoint.serverless_max_concurrency")

    a = s.autoscaling
    if a.enabled:
        _check(a.max_capacity >= 1, "autoscaling.max_capacity", f"{a.max_capacity} must be >= 1")
        _in_range(a.min_capacity, 1, MAX_VARIANT_INSTANCES, "autoscaling.min_capacity")
        _in_range(a.max_capacity, 1, MAX_VARIANT_INSTANCES, "autoscaling.max_capacity")
        _check(a.min_capacity <= a.max_capacity, "autoscaling.min_capacity",
               f"{a.min_capacity} must be <= autoscaling.max_capacity ({a.max_capacity})")
        _check(a.min_capacity <= e.initial_instance_count <= a.max_capacity or e.kind == "serverless",
               "endpoint.initial_instance_count",
               f"{e.initial_instance_count} must be within autoscaling bounds "
               f"[{a.min_capacity}, {a.max_capacity}]")
        _check(0 < a.target_value <= 100000, "autoscaling.target_value",
               f"{a.target_value} is out of range; allowed: (0, 100000]")
        _in_range(a.scale_in_cooldown, 0, MAX_COOLDOWN_S, "autoscaling.scale_in_cooldown")
        _in_range(a.scale_out_cooldown, 0, MAX_COOLDOWN_S, "autoscaling.scale_out_cooldown")
        _one_of(a.metric, ("SageMakerVariantInvocationsPerInstance",), "autoscaling.metric")

    f = s.function
    _one_of(f.runtime, ("python3.10", "python3.11", "python3.12", "python3.13"), "function.runtime")
    _one_of(f.architecture, ("x86_64", "arm64"), "function.architecture")
    _in_range(f.memory_size, *LAMBDA_MEMORY_MB, "function.memory_size")
    _in_range(f.timeout, 1, LAMBDA_MAX_TIMEOUT_S, "function.timeout")
    assignable = ACCOUNT_CONCURRENCY_LIMIT - UNRESERVED_FLOOR
    _in_range(f.reserved_concurrency, 1, assignable, "function.reserved_concurrency")
    _in_range(f.provisioned_concurrency, 0, assignable, "function.provisioned_concurrency")
    _check(f.provisioned_concurrency <= f.reserved_concurrency, "function.provisioned_concurrency",
           f"{f.provisioned_concurrency} must be <= function.reserved_concurrency ({f.reserved_concurrency})")
    _check(bool(re.match(r"^[a-zA-Z][a-zA-Z0-9_-]{0,127}$", f.alias)) and not f.alias.isdigit(),
           "function.alias", f"{f.alias!r} is not a valid alias name")
    _in_range(f.connect_timeout, 1, f.timeout, "function.connect_timeout")
    _in_range(f.read_timeout, 1, f.timeout, "function.read_timeout")

    for role_key, role in s.iam.roles.items():
        prefix = f"iam.roles.{role_key}"
        _check(bool(re.match(r"^[a-z][a-z0-9_]*$", role_key)), prefix, "role keys are snake_case names")
        _check(role.trust.endswith(".amazonaws.com"), f"{prefix}.trust",
               f"{role.trust!r} must be an AWS service principal (e.g. sagemaker.amazonaws.com)")
        for used in role.used_by:
            _one_of(used, ("training", "endpoint", "function", "notebook", "ec2_training"), f"{prefix}.used_by")
        for i, scope in enumerate(role.scopes):
            skey = f"{prefix}.scopes[{i}]"
            _check(bool(re.match(r"^[a-z0-9-]+$", scope.service)), f"{skey}.service",
                   f"{scope.service!r} must be an IAM service prefix (e.g. s3, sagemaker)")
            _check(len(scope.actions) > 0, f"{skey}.actions", "needs at least one action")
            _check(len(scope.resources) > 0, f"{skey}.resources", "needs at least one resource")

    n = s.notebook
    if n.enabled:
        _known_instance(n.instance_type, s.pricing.notebook, "notebook", "notebook.instance_type")
    _one_of(n.direct_internet_access, ("Enabled", "Disabled"), "notebook.direct_internet_access")
    _one_of(n.root_access, ("Enabled", "Disabled"), "notebook.root_access")
    _in_range(n.volume_size_gb, 5, 16384, "notebook.volume_size_gb")

    p = s.policy
    _one_of(p.fail_on, SEVERITIES, "policy.fail_on")
    for use in ("hosting", "training", "notebook", "ec2"):
        prices = getattr(s.pricing, use)
        for i, instance_type in enumerate(getattr(p.allowed_instance_types, use)):
            _known_instance(instance_type, prices, use, f"policy.allowed_instance_types.{use}[{i}]")
    for name in ("endpoint_monthly", "training_job", "tuning_job", "provisioned_concurrency_monthly", "notebook_monthly"):
        _check(getattr(p.budgets_usd, name) >= 0, f"policy.budgets_usd.{name}", "must be >= 0")
    _in_range(p.max_reserved_concurrency, 1, assignable, "policy.max_reserved_concurrency")
    for i, suppression in enumerate(p.suppress):
        _check(bool(re.match(r"^(SG-[A-Z]+-\d{3}|CKV2?_[A-Z]+_\d+|CKV_SG_\d+)$", suppression.id)),
               f"policy.suppress[{i}].id", f"{suppression.id!r} is not a rule id (SG-AREA-NNN or CKV_...)")
    _in_range(p.checkov.timeout_s, 10, 3600, "policy.checkov.timeout_s")

    _check(s.pricing.region == s.target.region, "pricing",
           f"the price snapshot is for {s.pricing.region}, the target is in {s.target.region}")
    _in_range(s.pricing.spot_discount, 0, 0.95, "pricing.spot_discount")
    _in_range(s.invoke.samples, 1, 100, "invoke.samples")
