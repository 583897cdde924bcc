"""Which instance types carry local NVMe storage (runner/core/instance_storage.py)."""

from __future__ import annotations

import pytest

from runner.core.instance_storage import has_instance_storage


@pytest.mark.parametrize("instance_type", [
    "ml.g4dn.xlarge", "ml.m5d.large", "m5d.xlarge", "ml.g5.2xlarge", "ml.p5.48xlarge", "ml.trn1.32xlarge",
    "i3.large", "ml.c6id.xlarge",
])
def test_local_storage(instance_type):
    assert has_instance_storage(instance_type)


@pytest.mark.parametrize("instance_type", ["ml.m5.large", "ml.c5.xlarge", "ml.p3.2xlarge", "t3.medium", "", "ml"])
def test_no_local_storage(instance_type):
    assert not has_instance_storage(instance_type)
