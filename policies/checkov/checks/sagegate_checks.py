"""sagegate's custom checkov checks for what the built-in CloudFormation checks miss.

Runs inside checkov's own environment (.venv-checkov), never imported by sagegate itself.
The policy values come from ``SAGEGATE_CHECKOV_PARAMS``: JSON text, or ``@/path/to/file.json``.
The gate's worker sets it from the ``Metadata.sagegate`` block of each template it scans; when you
run checkov by hand, set it yourself. Without it the checks raise, which checkov records as
UNKNOWN, and the gate treats an UNKNOWN as a gate error, never as a pass.
"""

from __future__ import annotations

import json
import os
from typing import Any

from checkov.cloudformation.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult

PARAMS_ENV = "SAGEGATE_CHECKOV_PARAMS"


def load_params() -> dict[str, Any]:
    raw = os.environ.get(PARAMS_ENV)
    if not raw:
        raise RuntimeError(f"{PARAMS_ENV} is not set: sagegate's checks have no policy values")
    if raw.startswith("@"):
        with open(raw[1:], encoding="utf-8") as handle:
            raw = handle.read()
    return json.loads(raw)


def _as_int(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


class LambdaReservedConcurrencyBounded(BaseResourceCheck):
    """CKV_AWS_115 passes any value, 0 included (a function that can never run) and values that
    starve the account's other functions; this one wants 1..policy.max_reserved_concurrency."""

    def __init__(self) -> None:
        super().__init__(
            name="Ensure a Lambda function's reserved concurrency is set and within sagegate's bound",
            id="CKV_SG_001",
            categories=(CheckCategories.GENERAL_SECURITY,),
            supported_resources=("AWS::Lambda::Function",),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        bound = int(load_params()["max_reserved_concurrency"])
        self.evaluated_keys = ["Properties/ReservedConcurrentExecutions"]
        value = _as_int((conf.get("Properties") or {}).get("ReservedConcurrentExecutions"))
        return CheckResult.PASSED if value is not None and 1 <= value <= bound else CheckResult.FAILED


class SageMakerInstanceTypeAllowed(BaseResourceCheck):
    """Every production variant (not just one of them) and the notebook use an allowed type."""

    def __init__(self) -> None:
        super().__init__(
            name="Ensure SageMaker endpoint variants and notebooks use an allowed instance type",
            id="CKV_SG_002",
            categories=(CheckCategories.GENERAL_SECURITY,),
            supported_resources=("AWS::SageMaker::EndpointConfig", "AWS::SageMaker::NotebookInstance"),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        allowed = load_params()["allowed_instance_types"]
        properties = conf.get("Properties") or {}
        if self.entity_type == "AWS::SageMaker::NotebookInstance":
            self.evaluated_keys = ["Properties/InstanceType"]
            return CheckResult.PASSED if properties.get("InstanceType") in allowed["notebook"] else CheckResult.FAILED
        self.evaluated_keys = ["Properties/ProductionVariants/[*]/InstanceType"]
        variants = properties.get("ProductionVariants") or []
        if not isinstance(variants, list):
            return CheckResult.FAILED
        sized = [v for v in variants if isinstance(v, dict) and "ServerlessConfig" not in v]
        ok = all(v.get("InstanceType") in allowed["hosting"] for v in sized)
        return CheckResult.PASSED if ok else CheckResult.FAILED


lambda_reserved_concurrency_bounded = LambdaReservedConcurrencyBounded()
sagemaker_instance_type_allowed = SageMakerInstanceTypeAllowed()
