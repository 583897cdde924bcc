"""Sanity: cross-field rules the schema cannot see, read from the stack that will be applied."""

from __future__ import annotations

import re
from collections.abc import Iterable

from policies.rules import Context, Outcome, Rule
from policies.rules.instance_storage import has_instance_storage
from runner.core.settings import ACCOUNT_CONCURRENCY_LIMIT, MAX_COOLDOWN_S, UNRESERVED_FLOOR
from training.metrics import METRIC_NAMES, metric_line


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def autoscaling_on_serverless(ctx: Context) -> Iterable[Outcome]:
    s = ctx.settings
    for config in ctx.stack.find("AWS::SageMaker::EndpointConfig"):
        serverless = any("ServerlessConfig" in v for v in config.properties.get("ProductionVariants", []))
        if serverless and s.autoscaling.enabled:
            yield Outcome(config.logical_id, "autoscaling.enabled",
                          "autoscaling is enabled but the endpoint is serverless: Application Auto Scaling "
                          "does not apply, the setting has no effect (capacity is "
                          "endpoint.serverless_max_concurrency)")
        else:
            yield Outcome(config.logical_id, "autoscaling.enabled")


def provisioned_concurrency_alias(ctx: Context) -> Iterable[Outcome]:
    wanted = ctx.settings.function.provisioned_concurrency
    for function in ctx.stack.find("AWS::Lambda::Function"):
        name = function.properties.get("FunctionName")
        aliases = [a for a in ctx.stack.find("AWS::Lambda::Alias") if a.properties.get("FunctionName") == name]
        configured = [a for a in aliases if a.properties.get("ProvisionedConcurrencyConfig")]
        problems = []
        if wanted > 0 and not configured:
            problems.append(f"function.provisioned_concurrency={wanted} but no alias of {name} carries a "
                            "ProvisionedConcurrencyConfig (provisioned concurrency lives on an alias or version)")
        for alias in configured:
            if alias.properties.get("FunctionVersion") in ("$LATEST", None):
                problems.append(f"alias {alias.properties.get('Name')} points at $LATEST, which cannot "
                                "have provisioned concurrency")
        yield Outcome(function.logical_id, "function.provisioned_concurrency", "; ".join(problems) or None)


def _sample_lines() -> list[str]:
    return [metric_line(name, 0.123456) for name in METRIC_NAMES]


def hpo_objective_printed(ctx: Context) -> Iterable[Outcome]:
    for job in ctx.stack.jobs:
        if job.kind != "tuning_job":
            continue
        objective = job.request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"]
        definitions = job.request["TrainingJobDefinition"]["AlgorithmSpecification"].get("MetricDefinitions", [])
        regexes = [d["Regex"] for d in definitions if d.get("Name") == objective]
        if not regexes:
            yield Outcome(job.logical_id, "hpo.objective_metric",
                          f"objective {objective!r} has no metric definition: the tuner never sees a value")
            continue
        problem = None
        for regex in regexes:
            try:
                compiled = re.compile(regex)
            except re.error as exc:
                problem = f"objective regex {regex!r} does not compile ({exc})"
                continue
            captured = [m.group(1) for line in _sample_lines() if (m := compiled.search(line)) and m.groups()]
            if not captured:
                problem = (f"objective regex {regex!r} matches none of the metric lines the training code "
                           f"prints ({', '.join(n + ': <float>' for n in METRIC_NAMES)})")
            elif not all(_is_float(v) for v in captured):
                problem = f"objective regex {regex!r} captures {captured[0]!r}, not a number"
        yield Outcome(job.logical_id, "hpo.objective_regex", problem)


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def autoscaling_bounds(ctx: Context) -> Iterable[Outcome]:
    variants = {v.get("VariantName"): v for c in ctx.stack.find("AWS::SageMaker::EndpointConfig")
                for v in c.properties.get("ProductionVariants", [])}
    for target in ctx.stack.find("AWS::ApplicationAutoScaling::ScalableTarget"):
        low, high = _int(target.properties.get("MinCapacity")), _int(target.properties.get("MaxCapacity"))
        problems = []
        if low is None or high is None or low < 1 or low > high:
            problems.append(f"MinCapacity {low} / MaxCapacity {high}: need 1 <= min <= max")
        variant_name = str(target.properties.get("ResourceId", "")).rsplit("/", 1)[-1]
        initial = _int(variants.get(variant_name, {}).get("InitialInstanceCount"))
        if not problems and initial is not None and not low <= initial <= high:  # type: ignore[operator]
            problems.append(f"variant {variant_name} starts with {initial} instances, outside [{low}, {high}]")
        yield Outcome(target.logical_id, "autoscaling.min_capacity", "; ".join(problems) or None)


def scaling_policy_ranges(ctx: Context) -> Iterable[Outcome]:
    for policy in ctx.stack.find("AWS::ApplicationAutoScaling::ScalingPolicy"):
        config = policy.properties.get("TargetTrackingScalingPolicyConfiguration", {})
        problems = []
        target = config.get("TargetValue")
        if not isinstance(target, int | float) or target <= 0:
            problems.append(f"TargetValue {target!r} must be > 0")
        for name in ("ScaleInCooldown", "ScaleOutCooldown"):
            value = _int(config.get(name))
            if value is None or not 0 <= value <= MAX_COOLDOWN_S:
                problems.append(f"{name} {config.get(name)!r} must be 0..{MAX_COOLDOWN_S} s")
        yield Outcome(policy.logical_id, "autoscaling.target_value", "; ".join(problems) or None)


def provisioned_within_reserved(ctx: Context) -> Iterable[Outcome]:
    for function in ctx.stack.find("AWS::Lambda::Function"):
        reserved = _int(function.properties.get("ReservedConcurrentExecutions"))
        name = function.properties.get("FunctionName")
        for alias in ctx.stack.find("AWS::Lambda::Alias"):
            if alias.properties.get("FunctionName") != name:
                continue
            provisioned = _int(alias.properties.get("ProvisionedConcurrencyConfig", {})
                               .get("ProvisionedConcurrentExecutions")) or 0
            if reserved is not None and provisioned > reserved:
                yield Outcome(alias.logical_id, "function.provisioned_concurrency",
                              f"provisioned concurrency {provisioned} exceeds the function's reserved "
                              f"concurrency {reserved}: Lambda rejects the configuration")
            else:
                yield Outcome(alias.logical_id, "function.provisioned_concurrency")


def reserved_concurrency_bounds(ctx: Context) -> Iterable[Outcome]:
    """1 <= reserved <= policy.max_reserved_concurrency, and the account keeps its unreserved floor.

    Template-level twin: CKV_SG_001 (CKV_AWS_115 accepts any value, 0 included)."""
    assignable = ACCOUNT_CONCURRENCY_LIMIT - UNRESERVED_FLOOR
    bound = ctx.settings.policy.max_reserved_concurrency
    for function in ctx.stack.find("AWS::Lambda::Function"):
        reserved = _int(function.properties.get("ReservedConcurrentExecutions"))
        problem = None
        if reserved is None or reserved < 1:
            problem = f"reserved concurrency {reserved}: the function needs at least 1 (0 never runs; unset is unbounded)"
        elif reserved > assignable:
            problem = (f"reserved concurrency {reserved} leaves less than the account's {UNRESERVED_FLOOR} "
                       f"unreserved executions (limit {ACCOUNT_CONCURRENCY_LIMIT})")
        elif reserved > bound:
            problem = f"reserved concurrency {reserved} exceeds policy.max_reserved_concurrency ({bound})"
        yield Outcome(function.logical_id, "function.reserved_concurrency", problem)


def kms_on_instance_storage(ctx: Context) -> Iterable[Outcome]:
    for config in ctx.stack.find("AWS::SageMaker::EndpointConfig"):
        local = [v.get("InstanceType") for v in config.properties.get("ProductionVariants", [])
                 if v.get("InstanceType") and has_instance_storage(v["InstanceType"])]
        if config.properties.get("KmsKeyId") and local:
            yield Outcome(config.logical_id, "endpoint.kms_key_id",
                          f"KmsKeyId is set but {', '.join(local)} has local instance storage: "
                          "CreateEndpointConfig rejects a KMS key for it")
        else:
            yield Outcome(config.logical_id, "endpoint.kms_key_id")
    for job, definition in ctx.training_definitions():
        resources = definition.get("ResourceConfig", {})
        instance_type = resources.get("InstanceType", "")
        if resources.get("VolumeKmsKeyId") and has_instance_storage(instance_type):
            yield Outcome(job.logical_id, "training.volume_kms_key_id",
                          f"ResourceConfig.VolumeKmsKeyId is set but {instance_type} has local instance storage: "
                          "CreateTrainingJob rejects it (the volume is encrypted by the instance's hardware)")
        else:
            yield Outcome(job.logical_id, "training.volume_kms_key_id")


RULES = (
    Rule("SG-SAN-001", "medium", "Autoscaling configured on a serverless endpoint", "autoscaling.enabled",
         "Use autoscaling=none with endpoint=serverless; bound capacity with endpoint.serverless_max_concurrency.",
         autoscaling_on_serverless),
    Rule("SG-SAN-002", "high", "Provisioned concurrency without an alias", "function.provisioned_concurrency",
         "Configure provisioned concurrency on the function's alias (function.alias) that points at a "
         "published version.", provisioned_concurrency_alias),
    Rule("SG-SAN-003", "high", "HPO objective regex does not match what training prints", "hpo.objective_regex",
         "Use a regex with one capture group that matches a metric line of docs/contracts.md, "
         "e.g. 'Testing Loss: ([0-9\\.]+)'.", hpo_objective_printed),
    Rule("SG-SAN-004", "high", "Autoscaling bounds inconsistent", "autoscaling.min_capacity",
         "Keep 1 <= autoscaling.min_capacity <= endpoint.initial_instance_count <= autoscaling.max_capacity.",
         autoscaling_bounds),
    Rule("SG-SAN-005", "high", "Provisioned concurrency above reserved concurrency",
         "function.provisioned_concurrency",
         "Keep function.provisioned_concurrency <= function.reserved_concurrency.", provisioned_within_reserved),
    Rule("SG-SAN-006", "high", "Reserved concurrency outside its bounds", "function.reserved_concurrency",
         "Keep 1 <= function.reserved_concurrency <= policy.max_reserved_concurrency (and below the account's "
         "unreserved floor).", reserved_concurrency_bounds),
    Rule("SG-SAN-007", "medium", "Scaling policy target or cooldowns out of range", "autoscaling.target_value",
         "Use a target value > 0 and cooldowns between 0 and 86400 seconds.", scaling_policy_ranges),
    Rule("SG-SAN-008", "high", "KMS key requested for local instance storage", "training.volume_kms_key_id",
         "Leave the KMS key unset for instance types with local NVMe storage (g4dn, g5, *d families); "
         "their volumes are encrypted by the instance's hardware.", kms_on_instance_storage),
)
