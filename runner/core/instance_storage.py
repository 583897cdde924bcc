"""Which instance types carry local NVMe instance storage.

SageMaker encrypts those volumes with a hardware module and rejects a KMS key for them
(CreateTrainingJob ``ResourceConfig.VolumeKmsKeyId``, CreateEndpointConfig ``KmsKeyId``).
"""

from __future__ import annotations

import re

# Families with instance storage whose name does not carry the 'd' suffix.
_WITHOUT_D_SUFFIX = frozenset({"g5", "g6", "g6e", "gr6", "p5", "p5e", "p5en", "trn1", "trn1n", "trn2", "i3", "i4i"})
_FAMILY = re.compile(r"^([a-z]+)(\d+)([a-z-]*)$")


def has_instance_storage(instance_type: str) -> bool:
    """``ml.g4dn.xlarge`` -> True, ``ml.m5.large`` -> False, ``m5d.xlarge`` -> True."""
    parts = instance_type.split(".")
    family = parts[-2] if len(parts) >= 2 else instance_type
    if family in _WITHOUT_D_SUFFIX:
        return True
    match = _FAMILY.match(family)
    return match is not None and "d" in match.group(3)
