"""Issue 13: property-based fuzzing of the settings (hypothesis).

Each example is a set of Hydra overrides over the leaf keys of the default composed config and its
group choices (``endpoint=serverless``, ``training=ec2``, ...), with values drawn from valid values,
boundary values, wrong types (a bool for an int, numeric strings, lists, null), out-of-range
numbers, inf/nan, strings with a trailing newline, illegal characters or too long, and AWS's
reserved names. Each is composed and validated; the outcome must be either

- a ``ConfigError`` of one line that starts with a dotted key, or
- an accepted config that the independent ORACLE below calls valid, and whose stack builds.

Never any other exception: that would be a traceback to the user. The oracle is written here from
the documented bounds (AWS API references and user guides, the comments of conf/ and
runner/core/settings.py, README's tables), never by calling the implementation; it checks only
necessary conditions, so a refusal is never asserted against it, only an acceptance.

Default: a fixed sample (derandomized, ``max_examples=100``); ``SAGEGATE_EXHAUSTIVE=1`` (or
``pytest --exhaustive``) runs 2,000 random examples. Both print their counts.
"""

from __future__ import annotations

import math
import re
import time
import unicodedata
from collections import Counter
from typing import Any

import pytest
from hydra.errors import HydraException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from runner_helpers import exhaustive

from runner.app.compose import compose_config
from runner.core.errors import ConfigError
from runner.core.settings import load_settings
from runner.stack.build import build_stack

KEY_LINE = re.compile(r"[a-z_][\w.\[\]-]*: ")

# ---- the oracle: documented bounds, key by key ------------------------------------------------------

# Integers (strict: no bool, no numeric string, no fraction), inclusive bounds.
INTS: dict[str, tuple[int, int]] = {
    "data.image_size": (16, 1024), "data.num_classes": (2, 100000), "model.head_hidden": (1, 65536),
    # SageMaker ResourceConfig InstanceCount / StoppingCondition MaxRuntimeInSeconds (28 days).
    "training.instance_count": (1, 100), "training.max_runtime": (60, 28 * 24 * 3600),
    "training.epochs": (1, 1000), "training.batch_size": (1, 4096), "training.patience": (1, 1000),
    # ResourceConfig VolumeSizeInGB.
    "training.volume_size_gb": (1, 16384),
    # HyperParameterTuningJob ResourceLimits.
    "hpo.max_jobs": (1, 500), "hpo.max_parallel_jobs": (1, 100),
    # ProductionVariant InitialInstanceCount; DataCaptureConfig InitialSamplingPercentage.
    "endpoint.variants.AllTraffic.initial_instance_count": (1, 1000),
    "endpoint.data_capture_percentage": (1, 100), "endpoint.top_k": (1, 100),
    # ProductionVariantServerlessConfig MaxConcurrency.
    "endpoint.serverless_max_concurrency": (1, 200),
    # Application Auto Scaling: capacity (SageMaker: 1000 instances per variant), cooldowns up to a day.
    "autoscaling.min_capacity": (1, 1000), "autoscaling.max_capacity": (1, 1000),
    "autoscaling.scale_in_cooldown": (0, 86400), "autoscaling.scale_out_cooldown": (0, 86400),
    # Lambda CreateFunction MemorySize / Timeout; concurrency: 1000 per account, 100 kept unreserved.
    "function.memory_size": (128, 10240), "function.timeout": (1, 900),
    "function.reserved_concurrency": (1, 900), "function.provisioned_concurrency": (0, 900),
    "function.connect_timeout": (1, 900), "function.read_timeout": (1, 900),
    # CreateNotebookInstance VolumeSizeInGB.
    "notebook.volume_size_gb": (5, 16384),
    "policy.max_reserved_concurrency": (1, 900), "policy.checkov.timeout_s": (10, 3600),
    # Hours an endpoint runs in a month: at most 31 x 24.
    "pricing.hours_per_month": (1, 744),
    "invoke.samples": (1, 100), "sweep.max_parallel": (1, 20),
    # The capacity model (docs/capacity.md): a day of minutes or more, a seed for its random draws,
    # requests waiting per instance, minutes an idle Lambda environment stays warm, and target
    # tracking's alarms (whole minutes of datapoints, at least one; CloudWatch periods are 1 minute).
    "traffic.minutes": (1, 10**9), "traffic.seed": (0, 2**64), "simulate.queue": (0, 10**9),
    "simulate.keep_warm_minutes": (1, 10**9), "simulate.alarm_high_minutes": (1, 10**9),
    "simulate.alarm_low_minutes": (1, 10**9),
}
# Finite numbers (an int is a number; a bool is not): (low, high, low inclusive, high inclusive).
FLOATS: dict[str, tuple[float, float, bool, bool]] = {
    "target.iam_propagation_s": (0, 60, True, True),
    "training.learning_rate": (1e-6, 1.0, True, True), "training.weight_decay": (0, 1, True, True),
    "hpo.learning_rate.min": (1e-6, 1.0, True, True), "hpo.learning_rate.max": (1e-6, 1.0, True, True),
    # InitialVariantWeight >= 0.
    "endpoint.variants.AllTraffic.weight": (0, math.inf, True, False),
    # TargetTrackingScalingPolicyConfiguration TargetValue > 0 (and a sane ceiling).
    "autoscaling.target_value": (0, 100000, False, True),
    **{f"policy.budgets_usd.{b}": (0, math.inf, True, False) for b in
       ("endpoint_monthly", "training_job", "tuning_job", "provisioned_concurrency_monthly", "notebook_monthly")},
    "pricing.spot_discount": (0, 0.95, True, True),
    # Prices are never negative (a negative price would hide a cost from the budgets).
    "pricing.lambda.provisioned_gb_second": (0, math.inf, True, False),
    "pricing.lambda.requests_per_million": (0, math.inf, True, False),
    "pricing.serverless.gb_second": (0, math.inf, True, False),
    # Durations are never negative; target tracking scales in below a fraction (0, 1] of its target.
    "simulate.startup_s": (0, math.inf, True, False), "simulate.lambda_overhead_ms": (0, math.inf, True, False),
    "simulate.cold_start_ms": (0, math.inf, True, False), "simulate.scale_in_ratio": (0, 1, False, True),
}
# Null (the measured, shipped or the instance type's figure; no objective), else: positive number,
# non-negative number, whole workers, a fraction.
OPTIONAL: dict[str, Any] = {
    "simulate.service_ms": lambda v: _is_number(v) and v > 0,
    "simulate.service_cv": lambda v: _is_number(v) and v >= 0,
    "simulate.workers": lambda v: _is_int(v) and v >= 1,
    "slo.p99_ms": lambda v: _is_number(v) and v > 0,
    "slo.error_rate": lambda v: _is_number(v) and 0 <= v <= 1,
}
BOOLS = ["simulate.calibrate", "model.freeze_backbone", "training.use_spot", "training.checkpointing", "training.network_isolation",
         "training.inter_container_encryption", "hpo.enabled", "endpoint.data_capture", "autoscaling.enabled",
         "notebook.enabled", "policy.checkov.enabled", "serve", "quiet", "apply.rollback", "destroy.delete_artifacts"]
ENUMS: dict[str, tuple[Any, ...]] = {
    "target.kind": ("local", "aws"), "data.on_bad_image": ("skip", "fail"), "model.arch": ("resnet18", "resnet50"),
    "training.launcher": ("local", "sagemaker", "ec2"),
    # HyperParameterTuningJobConfig Strategy, without Grid: it takes categorical parameters only.
    "hpo.strategy": ("Bayesian", "Random", "Hyperband"), "hpo.objective_type": ("Minimize", "Maximize"),
    "hpo.learning_rate.scaling": ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic"),
    "endpoint.kind": ("realtime", "serverless"),
    # ProductionVariantServerlessConfig MemorySizeInMB.
    "endpoint.serverless_memory_mb": (1024, 2048, 3072, 4096, 5120, 6144),
    "autoscaling.metric": ("SageMakerVariantInvocationsPerInstance",),
    "function.architecture": ("x86_64", "arm64"),
    "notebook.direct_internet_access": ("Enabled", "Disabled"), "notebook.root_access": ("Enabled", "Disabled"),
    "policy.fail_on": ("info", "low", "medium", "high", "critical"),
    "stage": ("check", "plan", "simulate", "train", "deploy", "invoke", "destroy", "all"),
    "traffic.profile": ("constant", "diurnal", "bursty", "step", "trace"),
}
# Free text the tool only passes on (a YAML number is taken as text).
TEXTS = ["target.profile", "data.name", "model.weights", "training.ec2_image_id", "image", "workdir", "pricing.as_of"]
NULLABLE = {"target.profile", "target.endpoint_url", "model.weights", "training.max_wait", "training.volume_kms_key_id",
            "training.ec2_image_id", "training.ec2_subnet_id", "endpoint.kms_key_id", "function.kms_key_arn",
            "notebook.kms_key_id", "notebook.subnet_id", "image"}

# AWS Regions (AWS General Reference, "Regions and Zones"), commercial, China and GovCloud.
REGIONS = {"us-east-1", "us-east-2", "us-west-1", "us-west-2", "af-south-1", "ap-east-1", "ap-south-1", "ap-south-2",
           "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
           "ap-southeast-4", "ap-southeast-5", "ap-southeast-7", "ca-central-1", "ca-west-1", "eu-central-1",
           "eu-central-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-south-1", "eu-south-2", "eu-north-1",
           "il-central-1", "me-south-1", "me-central-1", "mx-central-1", "sa-east-1", "cn-north-1", "cn-northwest-1",
           "us-gov-east-1", "us-gov-west-1", "ap-east-2", "ap-southeast-6"}
# Lambda runtimes (Lambda Developer Guide, "Lambda runtimes"): the handler needs Python >= 3.10.
LAMBDA_PYTHONS = {"python3.10", "python3.11", "python3.12", "python3.13", "python3.14"}
SUBNET = r"subnet-([0-9a-f]{8}|[0-9a-f]{17})"  # EC2 User Guide, "Resource IDs"
SECURITY_GROUP = r"sg-([0-9a-f]{8}|[0-9a-f]{17})"
# KMS Developer Guide, "Key identifiers": key id, key ARN, alias name, alias ARN; the APIs' own
# pattern (botocore's sagemaker KmsKeyId) is [a-zA-Z0-9:/_-]*.
KMS_ARN = r"arn:(?P<partition>aws[a-z-]*):kms:(?P<region>[a-z0-9-]+):\d{12}:(?P<kind>key|alias)/(?P<rest>[A-Za-z0-9/_-]+)"
S3_RESERVED = (("xn--", "sthree-", "amzn-s3-demo-"), ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"))


def _get(cfg: dict, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _is_int(v: Any) -> bool:
    return type(v) is int


def _is_number(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _is_text(v: Any) -> bool:
    return isinstance(v, str) or type(v) in (int, float)


def _text(v: Any) -> Any:
    """A string field's value as validated: a YAML number is taken as its text (settings.py,
    coerce_numbers_to_str); anything else as it is."""
    return str(v) if type(v) in (int, float) else v


def _kms_form(key: str) -> str | None:
    if (arn := re.fullmatch(KMS_ARN, key)) is not None:
        return "key ARN" if arn["kind"] == "key" and "/" not in arn["rest"] else "alias ARN"
    if re.fullmatch(r"alias/[A-Za-z0-9/_-]+", key) and len(key) <= 256:
        return "alias name"
    return "key id" if re.fullmatch(r"[A-Za-z0-9-]+", key) else None


def _kms_ok(key: Any, accepted: tuple[str, ...], region: str) -> bool:
    key = _text(key)
    if key is None:
        return True
    if not isinstance(key, str) or _kms_form(key) not in accepted:
        return False
    arn = re.fullmatch(KMS_ARN, key)
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return arn is None or (arn["region"] == region and arn["partition"] == partition)


def _tag_text_ok(text: Any, longest: int) -> bool:
    # Tagging API: [\p{L}\p{Z}\p{N}_.:/=+\-@]*
    return isinstance(text, str) and len(text) <= longest and all(
        c in "_.:/=+-@" or unicodedata.category(c)[0] in "LZN" for c in text)


def _bucket_ok(bucket: str) -> bool:
    """S3 User Guide, "General purpose bucket naming rules"."""
    return (re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket) is not None and ".." not in bucket
            and not re.fullmatch(r"\d+\.\d+\.\d+\.\d+", bucket)
            and not bucket.startswith(S3_RESERVED[0]) and not bucket.endswith(S3_RESERVED[1]))


def _source_ok(source: Any, cfg: dict) -> bool:
    if not isinstance(source, str) or "\n" in source or "\r" in source:
        return False
    if source.startswith("s3://"):
        bucket = source[len("s3://"):].partition("/")[0]
        if bucket.startswith(S3_RESERVED[0]) or bucket.endswith(S3_RESERVED[1]):
            return False
        # The local target cannot read an s3:// data set (its emulator starts empty) for a stage
        # that reads it; stage=all is left to the train step's own check.
        t = cfg["target"]
        reads = cfg["stage"] == "train" or (cfg["stage"] == "invoke" and cfg["image"] is None)
        return not (t["kind"] == "local" and t["endpoint_url"] is None and reads)
    # README: builtin:digits, a local path or an s3:// URI.
    return source == "builtin:digits" or (not source.startswith("builtin:") and "://" not in source)


def _version_ok(version: Any, newest: tuple[int, int]) -> bool:
    """A PyTorch DLC version: MAJOR.MINOR[.PATCH], no newer than sagemaker-core's newest image
    (FACTS.md: training images up to 2.10, inference up to 2.6)."""
    if _is_number(version):
        version = str(version)
    m = re.fullmatch(r"(\d+)\.(\d+)(\.\d+)?", version) if isinstance(version, str) else None
    return m is not None and (int(m[1]), int(m[2])) <= newest


def _py_ok(tag: Any) -> bool:
    tag = _text(tag)
    return isinstance(tag, str) and re.fullmatch(r"py3\d{0,2}", tag) is not None


def _regex_ok(regex: Any) -> bool:
    try:
        return isinstance(regex, str) and re.compile(regex).groups == 1
    except re.error:
        return False


def _ids_ok(ids: Any, pattern: str, most: int) -> bool:
    return isinstance(ids, list) and len(ids) <= most and all(isinstance(i, str) and re.fullmatch(pattern, i)
                                                                  for i in ids)


def _scalar_problems(cfg: dict) -> list[str]:
    """The keys whose values break their documented bounds, one key at a time."""
    bad = []
    for key, (low, high) in INTS.items():
        v = _get(cfg, key)
        if not (_is_int(v) and low <= v <= high):
            bad.append(key)
    for key, (low, high, low_in, high_in) in FLOATS.items():
        v = _get(cfg, key)
        if not (_is_number(v) and (low <= v if low_in else low < v) and (v <= high if high_in else v < high)):
            bad.append(key)
    for key, ok in OPTIONAL.items():
        v = _get(cfg, key)
        if not (v is None or ok(v)):
            bad.append(key)
    for key in BOOLS:
        if type(_get(cfg, key)) is not bool:
            bad.append(key)
    for key, choices in ENUMS.items():
        v = _get(cfg, key)
        if type(v) is bool or v not in choices or type(v) is not type(choices[0]):
            bad.append(key)
    for key in TEXTS:
        v = _get(cfg, key)
        if not (_is_text(v) or (v is None and key in NULLABLE)):
            bad.append(key)
    return bad


def _rule_problems(cfg: dict) -> list[str]:
    """Keys and rules that relate keys (AWS's rules between request members, and sagegate's)."""
    bad = []
    t, e, a, f, n, h = (cfg["target"], cfg["training"], cfg["endpoint"], cfg["autoscaling"], cfg["function"],
                        cfg["notebook"])  # e: training, a: endpoint, f: autoscaling, n: function, h: notebook
    hpo, prices, region = cfg["hpo"], cfg["pricing"], _text(cfg["target"]["region"])

    def check(ok: bool, key: str) -> None:
        if not ok:
            bad.append(key)

    name = _text(cfg["name"])
    check(isinstance(name, str) and re.fullmatch(r"[a-z][a-z0-9-]{1,22}[a-z0-9]", name) is not None, "name")
    if isinstance(name, str) and isinstance(region, str):
        check(_bucket_ok(f"{name}-000000000000-{region}"), "name")  # runner/core/names.py: the stack's bucket
        for role in cfg["iam"]["roles"]:
            check(len(f"{name}-{role.replace('_', '-')}") <= 64, "name")  # IAM CreateRole RoleName: 1-64
    check(region in REGIONS and _text(prices["region"]) == region, "target.region")
    url = t["endpoint_url"]
    check(url is None or (isinstance(url, str) and t["kind"] == "local"
                          and re.fullmatch(r"http://(127\.0\.0\.1|localhost):\d+/?", url) is not None), "target.endpoint_url")
    check(_source_ok(_text(cfg["data"]["source"]), cfg), "data.source")
    # Training: instance types of the price snapshot; launcher rules (conf/training/*.yaml).
    uses = prices["ec2"] if e["launcher"] == "ec2" else prices["training"]
    check(_text(e["instance_type"]) in uses, "training.instance_type")
    if e["launcher"] == "ec2":
        check(e["instance_count"] == 1 and e["ec2_image_id"] is not None, "training.launcher")
    if e["use_spot"] is True:
        check(e["launcher"] == "sagemaker" and e["max_wait"] is not None, "training.use_spot")
    check(e["max_wait"] is None or (_is_int(e["max_wait"]) and _is_int(e["max_runtime"])
                                    and e["max_wait"] >= e["max_runtime"]), "training.max_wait")
    check(_is_int(e["seed"]), "training.seed")
    check(_version_ok(e["framework_version"], (2, 10)) and _py_ok(e["py_version"]), "training.framework_version")
    check(e["ec2_subnet_id"] is None or (isinstance(e["ec2_subnet_id"], str)
                                         and re.fullmatch(SUBNET, e["ec2_subnet_id"]) is not None), "training.ec2_subnet_id")
    # SageMaker ResourceConfig VolumeKmsKeyId: key id or key ARN; EC2 EbsBlockDevice KmsKeyId: all four.
    four = ("key id", "key ARN", "alias name", "alias ARN")
    check(_kms_ok(e["volume_kms_key_id"], four if e["launcher"] == "ec2" else ("key id", "key ARN"), region),
          "training.volume_kms_key_id")
    # HPO: SageMaker tuning jobs only; ScalingType ranges; a categorical batch size list.
    check(hpo["enabled"] is not True or e["launcher"] == "sagemaker", "hpo.enabled")
    lr = hpo["learning_rate"]
    if _is_number(lr["min"]) and _is_number(lr["max"]):
        check(lr["min"] < lr["max"], "hpo.learning_rate")
        check(lr["scaling"] != "ReverseLogarithmic" or lr["max"] < 1, "hpo.learning_rate.max")
        check(lr["scaling"] != "Logarithmic" or lr["min"] > 0, "hpo.learning_rate.min")
    metric = _text(hpo["objective_metric"])
    check(isinstance(metric, str) and 1 <= len(metric) <= 255, "hpo.objective_metric")
    check(_regex_ok(_text(hpo["objective_regex"])), "hpo.objective_regex")
    check(isinstance(hpo["batch_size"], list) and len(hpo["batch_size"]) >= 1
          and all(_is_int(b) and 1 <= b <= 4096 for b in hpo["batch_size"]), "hpo.batch_size")
    if _is_int(hpo["max_parallel_jobs"]) and _is_int(hpo["max_jobs"]):
        check(hpo["max_parallel_jobs"] <= hpo["max_jobs"], "hpo.max_parallel_jobs")
    # Endpoint: hosting instance types; capacity within the autoscaling bounds; Serverless exclusions.
    variants = a["variants"]
    check(isinstance(variants, dict) and 1 <= len(variants) <= 10, "endpoint.variants")
    for vname, v in variants.items():
        check(re.fullmatch(r"[A-Za-z0-9](-*[A-Za-z0-9]){0,62}", vname) is not None, "endpoint.variants")
        check(_text(v["instance_type"]) in prices["hosting"], "endpoint.variants.instance_type")
        if a["kind"] == "realtime" and _is_int(v["initial_instance_count"]):
            if f["enabled"] is True:
                low, high = v.get("min_capacity") or f["min_capacity"], v.get("max_capacity") or f["max_capacity"]
            else:
                low = high = v["initial_instance_count"]
            check(_is_int(low) and _is_int(high) and low <= v["initial_instance_count"] <= high,
                  "endpoint.variants.initial_instance_count")
    check(a["kind"] != "serverless" or (len(variants) == 1 and a["data_capture"] is not True), "endpoint.kind")
    check(_version_ok(a["framework_version"], (2, 6)) and _py_ok(a["py_version"]), "endpoint.framework_version")
    check(_kms_ok(a["kms_key_id"], four, region), "endpoint.kms_key_id")  # CreateEndpointConfig KmsKeyId
    if f["enabled"] is True and _is_int(f["min_capacity"]) and _is_int(f["max_capacity"]):
        check(f["min_capacity"] <= f["max_capacity"], "autoscaling.min_capacity")
    # Function: Lambda runtimes, alias names, concurrency and timeouts, VPC config, KMSKeyArn.
    check(_text(n["runtime"]) in LAMBDA_PYTHONS, "function.runtime")
    alias = _text(n["alias"])
    check(isinstance(alias, str) and re.fullmatch(r"(?![0-9]+\Z)[a-zA-Z0-9_-]{1,128}", alias) is not None,
          "function.alias")
    if all(_is_int(n[k]) for k in ("provisioned_concurrency", "reserved_concurrency", "timeout",
                                   "connect_timeout", "read_timeout")):
        check(n["provisioned_concurrency"] <= n["reserved_concurrency"], "function.provisioned_concurrency")
        check(n["connect_timeout"] <= n["timeout"] and n["read_timeout"] <= n["timeout"], "function.read_timeout")
    check(_ids_ok(n["subnet_ids"], SUBNET, 16) and _ids_ok(n["security_group_ids"], SECURITY_GROUP, 5)
          and bool(n["subnet_ids"]) == bool(n["security_group_ids"]), "function.subnet_ids")
    check(_kms_ok(n["kms_key_arn"], ("key ARN",), region), "function.kms_key_arn")  # Lambda KMSKeyArn
    # IAM: service principals, used_by parts, managed policy ARNs; every active part has a role.
    parts = ("training", "endpoint", "function", "notebook", "ec2_training")
    used: set[str] = set()
    for role in cfg["iam"]["roles"].values():
        check(isinstance(role["trust"], str) and re.fullmatch(r"[a-z0-9.-]+\.amazonaws\.com", role["trust"]) is not None,
              "iam.roles.trust")
        ok = isinstance(role["used_by"], list) and len(role["used_by"]) >= 1 and all(
            isinstance(p, str) and p in parts for p in role["used_by"])
        check(ok, "iam.roles.used_by")
        used.update(role["used_by"] if ok else [])
        check(isinstance(role["managed_policy_arns"], list) and all(
            isinstance(arn, str) and re.fullmatch(r"arn:aws[a-z-]*:iam::(aws|\d{12}):policy/[\w+=,.@/-]+", arn)
            for arn in role["managed_policy_arns"]), "iam.roles.managed_policy_arns")
    active = {"endpoint", "function"} | ({"training"} if e["launcher"] == "sagemaker" else set()) \
        | ({"ec2_training"} if e["launcher"] == "ec2" else set()) | ({"notebook"} if h["enabled"] is True else set())
    check(active <= used, "iam.roles.used_by")
    # Notebook: CreateNotebookInstance network rules (SG-AWS-001/002), its instance types and KMS key.
    check(_kms_ok(h["kms_key_id"], four, region), "notebook.kms_key_id")
    check(_ids_ok(h["security_group_ids"], SECURITY_GROUP, 5), "notebook.security_group_ids")
    check(h["subnet_id"] is None or (isinstance(h["subnet_id"], str) and re.fullmatch(SUBNET, h["subnet_id"]) is not None),
          "notebook.subnet_id")
    if h["enabled"] is True:
        check(_text(h["instance_type"]) in prices["notebook"], "notebook.instance_type")
        check(h["direct_internet_access"] == "Enabled" or h["subnet_id"] is not None, "notebook.subnet_id")
        check((h["subnet_id"] is None) == (not h["security_group_ids"]), "notebook.security_group_ids")
    # Policy: allow-lists within the price snapshot; suppression ids.
    for use in ("hosting", "training", "notebook", "ec2"):
        allowed = cfg["policy"]["allowed_instance_types"][use]
        check(isinstance(allowed, list) and all(isinstance(i, str) and i in prices[use] for i in allowed),
              f"policy.allowed_instance_types.{use}")
    for s in cfg["policy"]["suppress"]:
        check(isinstance(s, dict) and isinstance(s.get("id"), str)
              and re.fullmatch(r"(SG-[A-Z]+-\d{3}|CKV2?_[A-Z]+_\d+|CKV_SG_\d+)", s["id"]) is not None, "policy.suppress")
    # Tags (Tagging API): 1-128 / 0-256 characters of the tag set, no aws: prefix, 49 besides sagegate:stack.
    tags = cfg["tags"]
    check(isinstance(tags, dict) and len(tags) <= 49 and all(
        _tag_text_ok(k, 128) and len(k) >= 1 and not k.lower().startswith("aws:") and _tag_text_ok(_text(v), 256)
        for k, v in tags.items()), "tags")
    return bad + _traffic_problems(cfg["traffic"])


def _traffic_problems(traffic: dict) -> list[str]:
    """docs/capacity.md's profile table: each profile's keys, rates never negative, amplitude a
    fraction, the peak an hour of the day, MMPP state durations positive, steps [minute, rps]."""
    profile, bad = traffic["profile"], []

    def rate(key: str, *, optional: bool = False, low: float = 0, high: float = math.inf, above: bool = False) -> None:
        v = traffic[key]
        if not ((optional and v is None) or (_is_number(v) and (v > low if above else v >= low) and v <= high)):
            bad.append(f"traffic.{key}")

    if profile == "constant":
        rate("rps")
    elif profile == "diurnal":
        rate("mean_rps"), rate("amplitude", high=1), rate("peak_hour", high=24)
    elif profile == "bursty":
        rate("rps"), rate("cv", optional=True), rate("burst_rps", optional=True)
        rate("base_minutes", optional=True, above=True), rate("burst_minutes", optional=True, above=True)
    elif profile == "step":
        steps = traffic["steps"]
        if not (isinstance(steps, list) and steps and all(
                isinstance(p, list) and len(p) == 2 and all(_is_number(x) and x >= 0 for x in p) for p in steps)):
            bad.append("traffic.steps")
    elif profile == "trace":
        rate("scale")
        if not isinstance(traffic["path"], str):
            bad.append("traffic.path")
    return bad


def oracle_problems(cfg: dict) -> list[str]:
    return _scalar_problems(cfg) + _rule_problems(cfg)


# ---- the generator ------------------------------------------------------------------------------

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KMS_VALUES = [KEY_ID, f"arn:aws:kms:us-east-1:123456789012:key/{KEY_ID}", "alias/sagegate", "alias/aws/sagemaker",
              "arn:aws:kms:us-east-1:123456789012:alias/sagegate", f"arn:aws:kms:eu-west-1:123456789012:key/{KEY_ID}",
              f"arn:aws-cn:kms:us-east-1:123456789012:key/{KEY_ID}", "alias/", "my key", "arn:aws:s3:::bucket",
              "mrk-1234abcd12ab34cd56ef1234567890ab", f"arn:aws:kms:us-east-1:123:key/{KEY_ID}", None]
# Wrong types, boundaries, non-finite numbers, bad strings and AWS's reserved names, for any key.
GENERIC: list[Any] = [True, False, None, "5", "0.5", "true", [], [1, 2], {"a": 1}, -1, 0, 1, 2, 10**9, -(10**9),
                      0.5, 1.5, 1e-9, math.inf, -math.inf, math.nan, "", " ", "x\n", "ok\n", "a#b", "a;b", "x" * 300,
                      "aws:owner", "xn--name", "sthree-name", "amzn-s3-demo-name", "name-s3alias", "name--ol-s3",
                      "UPPER", "ünïcode", "${nope}", "${missing.key}"]
SPECIFIC: dict[str, list[Any]] = {
    "name": ["sagegate-demo", "abc", "ab", "a" * 24, "a" * 25, "a" * 23 + "-", "9lives", "my.stack", "xn--stack",
             "sthree-stack", "amzn-s3-demo-x", "abcdefghijklmnopqrstuvwx"],
    "target.region": ["us-east-1", "eu-west-1", "us_east_1", "us-east-1\n", "xx-nowhere-1"],
    "target.endpoint_url": ["http://127.0.0.1:5000", "http://localhost:1/", "https://127.0.0.1:5000",
                            "http://example.com:5000", None],
    "data.source": ["builtin:digits", "builtin:cifar", "/data/dogs", "./data", "../data", "~/data", "data",
                    "s3://bucket/prefix", "s3://CHANGE-ME/dogImages", "s3://data-s3alias/x", "s3://xn--data/x",
                    "https://example.com/data", "s3://bucket/x\n", "file:///data"],
    "training.instance_type": ["ml.m5.xlarge", "ml.g4dn.xlarge", "m5.xlarge", "ml.m5.huge", "ml.p4d.24xlarge",
                               "ml.t3.medium"],
    "endpoint.variants.AllTraffic.instance_type": ["ml.m5.large", "ml.g4dn.xlarge", "ml.t3.medium", "ml.m5.huge"],
    "notebook.instance_type": ["ml.t3.medium", "ml.t3.large", "ml.m5.large"],
    "training.framework_version": ["2.5", "2.5.1", "2.4", "2.6", "2.10", "9.9", "2.5.0", "latest", 2.5, "2"],
    "endpoint.framework_version": ["2.5", "2.5.1", "2.4", "2.6", "2.10", "9.9", "1.0"],
    "training.py_version": ["py311", "py312", "py310", "py27", "py3", "py311\n", "python3.11"],
    "endpoint.py_version": ["py311", "py312", "py310", "py27"],
    "training.volume_kms_key_id": KMS_VALUES, "endpoint.kms_key_id": KMS_VALUES, "notebook.kms_key_id": KMS_VALUES,
    "function.kms_key_arn": KMS_VALUES,
    "training.max_wait": [None, 3600, 7200, 59, 10**9],
    "training.seed": [0, 42, -1, 2**32, 2**63],
    "training.ec2_subnet_id": [None, "subnet-0123abcd", "subnet-0123456789abcdef0", "subnet-0123", "subnet-XYZ12345"],
    "training.ec2_image_id": [None, "ami-0123456789abcdef0", "resolve:ssm:/aws/service/x"],
    "hpo.objective_metric": ["Test Loss", "", "m" * 255, "m" * 256],
    "hpo.objective_regex": ["Testing Loss: ([0-9.]+)", "no group", "(a)(b)", "([", "(x)"],
    "hpo.batch_size": [[32, 64], [1], [4096], [4097], [0], [], [32, True], [32, "64"], [1.5]],
    "function.runtime": ["python3.12", "python3.10", "python3.13", "python3.9", "nodejs20.x", "python3.99"],
    "function.alias": ["live", "1live", "123", "L" * 128, "L" * 129, "a.b", "live_1"],
    "function.subnet_ids": [[], ["subnet-0123abcd"], ["subnet-0123abcd"] * 17, ["nope"]],
    "function.security_group_ids": [[], ["sg-0123abcd"], ["sg-0123abcd"] * 6, ["nope"]],
    "notebook.subnet_id": [None, "subnet-0123abcd", "subnet-zz"],
    "notebook.security_group_ids": [[], ["sg-0123abcd"], ["sg-0123abcd"] * 6],
    "iam.roles.lambda_invoke.trust": ["lambda.amazonaws.com", "lambda.amazonaws.com\n", "lambda", "evil.example.com"],
    "iam.roles.lambda_invoke.used_by": [["function"], [], ["training"], ["function", "notebook"], ["nope"]],
    "iam.roles.sagemaker_execution.used_by": [["training", "endpoint"], ["endpoint"], ["training"], []],
    "iam.roles.lambda_invoke.managed_policy_arns": [[], ["arn:aws:iam::aws:policy/ReadOnlyAccess"], ["not-an-arn"],
                                                    ["arn:aws:iam::123456789012:policy/mine"]],
    "policy.allowed_instance_types.hosting": [[], ["ml.m5.large"], ["ml.m5.huge"]],
    "policy.allowed_instance_types.ec2": [[], ["m5.large"], ["ml.m5.large"]],
    "policy.suppress": [[], [{"id": "SG-IAM-001"}], [{"id": "SG-IAM-001\n"}], [{"id": "nope"}], [{"reason": "x"}]],
    "tags.project": ["sagegate", "", "v" * 256, "v" * 257, "a#b", "ML/vision=1+2@a.b:c_d-e", "Équipe"],
    "pricing.region": ["us-east-1", "eu-west-1"],
    "pricing.as_of": ["2026-10-01", ""],
    "image": [None, "dog.jpg"],
}
NUMERIC_EXTRA: dict[str, list[Any]] = {}
for _key, (_low, _high) in INTS.items():
    NUMERIC_EXTRA[_key] = [_low, _high, _low - 1, _high + 1, (_low + _high) // 2, float(_low)]
for _key, (_low, _high, _, _) in FLOATS.items():
    _top = _high if math.isfinite(_high) else 1e6
    NUMERIC_EXTRA[_key] = [_low, _top, _low - 1e-3, _top * 1.5 + 1, (_low + _top) / 2, int(_low)]
for _key in BOOLS:
    NUMERIC_EXTRA[_key] = [True, False, "true", 1, 0]
for _key, _choices in ENUMS.items():
    NUMERIC_EXTRA[_key] = [*_choices, "nope", _choices[0].lower() if isinstance(_choices[0], str) else 1000]
# Groups whose options change the base the values apply to (one option per group).
GROUPS: dict[str, list[str]] = {
    "endpoint": ["serverless", "ab_test"], "training": ["sagemaker", "sagemaker_multi", "ec2"],
    "hpo": ["sagemaker_tuner"], "autoscaling": ["none"], "notebook": ["t3_medium"], "model": ["resnet50"],
    "data": ["dog_images"], "target": ["aws"], "policy": ["strict"],
}
EXPERIMENTS = ["experiment=production", "experiment=reference_2023"]
KEYS = sorted({*INTS, *FLOATS, *BOOLS, *ENUMS, *TEXTS, *SPECIFIC})


def hydra_value(value: Any) -> str:
    """``value`` written in Hydra's override grammar."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, list):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    if value.startswith("${"):
        return value  # an interpolation, as a user would write it
    return "'" + value.replace("'", "\\'") + "'"


@st.composite
def override_sets(draw: st.DrawFn) -> list[str]:
    overrides: list[str] = []
    if draw(st.integers(0, 9)) == 0:
        overrides.append(draw(st.sampled_from(EXPERIMENTS)))
    else:
        groups = draw(st.lists(st.sampled_from(sorted(GROUPS)), max_size=2, unique=True))
        overrides += [f"{g}={draw(st.sampled_from(GROUPS[g]))}" for g in groups]
        if "training=ec2" in overrides:
            overrides.append("training.ec2_image_id=ami-0123456789abcdef0")  # conf/training/ec2.yaml needs one
    # Mostly one key at a time: with several bad values, the first refusal hides the others.
    size = draw(st.sampled_from([1, 1, 1, 2, 3]))
    for key in draw(st.lists(st.sampled_from(KEYS), min_size=size, max_size=size, unique=True)):
        pool = [*SPECIFIC.get(key, []), *NUMERIC_EXTRA.get(key, [])]
        value = draw(st.sampled_from(pool) if pool and draw(st.integers(0, 2)) else st.sampled_from(GENERIC))
        overrides.append(f"{key}={hydra_value(value)}")
    if draw(st.integers(0, 9)) == 0:
        overrides.append(f"+tags.{draw(st.sampled_from(['team', 'Team-1', 'x' * 129, 'aws-x']))}="
                         f"{hydra_value(draw(st.sampled_from(['ml', '', 'a#b', 'v' * 257])))}")
    return overrides


# ---- the property ---------------------------------------------------------------------------------

OUTCOMES: Counter[str] = Counter()
REFUSED_KEYS: Counter[str] = Counter()
STARTED: list[float] = []


def check_one(overrides: list[str]) -> str:
    """'refused' or 'accepted'; fails the test on anything else."""
    try:
        cfg = compose_config(overrides)
    except HydraException as exc:
        # Hydra refuses the override itself (a mapping for a list, an unknown key): main.py prints
        # its message, which names the override, and exits 2.
        named = [o for o in overrides if o.partition("=")[0].lstrip("+~") in str(exc)]
        assert named, f"{overrides}: Hydra's refusal names none of them: {exc}"
        REFUSED_KEYS["hydra: " + named[0].partition("=")[0]] += 1
        return "refused"
    try:
        settings_ = load_settings(cfg)
    except ConfigError as exc:
        message = str(exc)
        assert KEY_LINE.match(message), f"{overrides}: {message!r} does not start with a dotted key"
        assert "\n" not in message and "\r" not in message, f"{overrides}: {message!r} is not one line"
        REFUSED_KEYS[message.split(": ", 1)[0]] += 1
        return "refused"
    raw = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(raw, dict)
    problems = oracle_problems(raw)
    assert not problems, f"{overrides}: accepted, but the oracle finds {problems} invalid"
    build_stack(settings_)  # any exception here is a traceback to the user
    return "accepted"


MAX_EXAMPLES = 2000 if exhaustive() else 100


@pytest.mark.sampled
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=not exhaustive(), database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(override_sets())
def test_every_override_set_is_refused_with_its_key_or_valid(overrides: list[str]) -> None:
    STARTED[:] = STARTED or [time.perf_counter()]
    OUTCOMES[check_one(overrides)] += 1


def test_zz_report_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """The counts of the property above (run in this module's order, after it)."""
    with capsys.disabled():
        seconds = time.perf_counter() - STARTED[0] if STARTED else 0.0
        print(f"\nsettings fuzz: {sum(OUTCOMES.values())} examples, {OUTCOMES['refused']} refused, "
              f"{OUTCOMES['accepted']} accepted, {seconds:.1f} s; refusals by key: {len(REFUSED_KEYS)} keys")


def test_the_defaults_and_every_group_option_satisfy_the_oracle() -> None:
    """The oracle is not stricter than the shipped configs."""
    for overrides in ([], *([f"{g}={o}"] for g, options in GROUPS.items() for o in options),
                      *([e, "notebook.subnet_id=subnet-0123abcd", "notebook.security_group_ids=[sg-0123abcd]"]
                        for e in EXPERIMENTS)):
        if overrides == ["training=ec2"]:
            overrides = [*overrides, "training.ec2_image_id=ami-0123456789abcdef0"]
        if overrides == ["notebook=t3_medium"]:
            overrides = [*overrides, "notebook.subnet_id=subnet-0123abcd", "notebook.security_group_ids=[sg-0123abcd]"]
        if overrides == ["hpo=sagemaker_tuner"]:
            overrides = [*overrides, "training=sagemaker"]
        if overrides == ["data=dog_images"]:
            overrides = [*overrides, "stage=plan"]
        raw = OmegaConf.to_container(compose_config(overrides), resolve=True)
        assert isinstance(raw, dict)
        load_settings(compose_config(overrides))
        assert oracle_problems(raw) == [], overrides

