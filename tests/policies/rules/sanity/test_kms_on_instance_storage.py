"""SG-SAN-008: a KMS key asked for on local NVMe instance storage, which SageMaker rejects."""

from __future__ import annotations

import pytest
from policy_helpers import KEY_ARN, SM, Case, assert_fails, assert_passes

RULE = "SG-SAN-008"
FAILING = [
    # A key id or key ARN: ResourceConfig.VolumeKmsKeyId takes no alias (settings refuse one).
    Case(("training=sagemaker", f"training.volume_kms_key_id={KEY_ARN}"), severity="high",
         resource="TrainingJob", config_key="training.volume_kms_key_id"),
    Case(("endpoint.variants.AllTraffic.instance_type=ml.g4dn.xlarge",), resource="EndpointConfig", config_key="endpoint.kms_key_id"),
]
PASSING = [
    Case(SM),
    Case(("training=sagemaker", "training.instance_type=ml.m5.xlarge", f"training.volume_kms_key_id={KEY_ARN}")),
]


@pytest.mark.parametrize("case", FAILING, ids=str)
def test_fails(case: Case) -> None:
    assert_fails(RULE, case)


@pytest.mark.parametrize("case", PASSING, ids=str)
def test_passes(case: Case) -> None:
    assert_passes(RULE, case)
