"""A value the schema rejects is not re-checked by a policy rule (issue 10).

Three sanity rules could only fire on values that settings validation (runner/core/settings.py)
already refuses, so they were removed: every case they caught stops at load time with exit 2,
naming the key, before a stack exists. This module keeps that promise checked: if the schema ever
stops rejecting one of these, the gate would have no rule for it and this test fails.
"""

from __future__ import annotations

import pytest

from policies.rules.registry import all_rules
from runner.app.compose import compose_settings
from runner.core.errors import ConfigError

# removed rule id -> (overrides that its failing cases need, the key the schema names)
REJECTED = [
    # SG-SAN-004 "Autoscaling bounds inconsistent": 1 <= min <= initial <= max.
    ("SG-SAN-004", ("autoscaling.min_capacity=4",), "autoscaling.min_capacity"),
    ("SG-SAN-004", ("autoscaling.min_capacity=0",), "autoscaling.min_capacity"),
    ("SG-SAN-004", ("autoscaling.max_capacity=0",), "autoscaling.max_capacity"),
    ("SG-SAN-004", ("endpoint.variants.AllTraffic.initial_instance_count=5",), "endpoint.variants.AllTraffic.initial_instance_count"),
    ("SG-SAN-004", ("autoscaling.min_capacity=2",), "endpoint.variants.AllTraffic.initial_instance_count"),
    # SG-SAN-005 "Provisioned concurrency above reserved concurrency".
    ("SG-SAN-005", ("function.provisioned_concurrency=6",), "function.provisioned_concurrency"),
    # SG-SAN-007 "Scaling policy target or cooldowns out of range": target > 0, cooldowns 0..86400 s.
    ("SG-SAN-007", ("autoscaling.target_value=0",), "autoscaling.target_value"),
    ("SG-SAN-007", ("autoscaling.target_value=-5",), "autoscaling.target_value"),
    ("SG-SAN-007", ("autoscaling.scale_in_cooldown=-1",), "autoscaling.scale_in_cooldown"),
    ("SG-SAN-007", ("autoscaling.scale_out_cooldown=86401",), "autoscaling.scale_out_cooldown"),
]


@pytest.mark.parametrize("rule_id, overrides, key", REJECTED, ids=lambda v: v if isinstance(v, str) else "-".join(v))
def test_the_schema_rejects_what_the_removed_rule_caught(rule_id, overrides, key):
    with pytest.raises(ConfigError) as raised:
        compose_settings(overrides)
    assert str(raised.value).startswith(f"{key}:")


@pytest.mark.parametrize("rule_id", sorted({rule_id for rule_id, _, _ in REJECTED}))
def test_the_removed_rule_is_not_registered(rule_id):
    assert rule_id not in {rule.id for rule in all_rules()}


def test_a_policy_bound_the_schema_does_not_know_stays_a_rule():
    """policy.max_reserved_concurrency is the policy's, not the schema's: SG-SAN-006 keeps it."""
    settings = compose_settings(("function.reserved_concurrency=500",))
    assert settings.function.reserved_concurrency > settings.policy.max_reserved_concurrency
    assert "SG-SAN-006" in {rule.id for rule in all_rules()}
