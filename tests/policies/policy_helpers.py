"""Shared helpers: settings, stack and costs of a configuration composed exactly as main.py does."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hydra import compose, initialize_config_dir

from runner.core.cost import CostSummary, estimate
from runner.core.settings import Settings, load_settings
from runner.stack.build import build_stack
from runner.stack.model import Stack

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"

# The insecure overrides the gate must refuse, with the rule ids they must raise.
WILDCARD_SCOPES = 'iam.roles.lambda_invoke.scopes=[{service:sagemaker,actions:["*"],resources:["*"]}]'
FULL_ACCESS = '+iam.roles.sagemaker_execution.managed_policy_arns=["arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"]'
HUGE_ENDPOINT = "endpoint.instance_type=ml.p3.2xlarge"  # $3.825/h, not in the hosting allow-list
PROVISIONED_OVER_BUDGET = ("function.reserved_concurrency=50", "function.provisioned_concurrency=40")
# Production with its training volume key dropped: the shipped preset asks for a KMS key on
# ml.g4dn.xlarge, which SageMaker rejects (SG-SAN-008; see test_gate.py).
PRODUCTION = ("experiment=production", "training.volume_kms_key_id=null")
INSECURE = (HUGE_ENDPOINT, WILDCARD_SCOPES, FULL_ACCESS, "function.reserved_concurrency=500",
            "notebook=t3_medium", "notebook.instance_type=ml.t3.xlarge")


@lru_cache(maxsize=64)
def _settings(overrides: tuple[str, ...]) -> Settings:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose("config", overrides=list(overrides))
    return load_settings(cfg)


@dataclass
class GateInputs:
    settings: Settings
    stack: Stack
    costs: CostSummary


def make(*overrides: str) -> GateInputs:
    """A fresh (mutable) settings/stack/costs triple for the overrides."""
    settings = copy.deepcopy(_settings(tuple(overrides)))
    return GateInputs(settings, build_stack(settings), estimate(settings))


def ids(findings) -> set[str]:
    """Rule ids of the unsuppressed findings."""
    return {f.rule_id for f in findings if not f.suppressed}


def by_rule(result, rule_id: str) -> list:
    return [f for f in result.active if f.rule_id == rule_id]
