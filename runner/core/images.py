"""The PyTorch Deep Learning Container for a framework and Python version, region, instance type
and scope: one lookup, used by the settings' validation (a version with no image is refused
with the key named) and by the stack's builders, so the two cannot disagree."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=32)
def image_uri(framework_version: str, py_version: str, region: str, instance_type: str, scope: str) -> str:
    """The image URI, from sagemaker-core's offline image database."""
    from sagemaker.core import image_uris  # ≈80 ms; only when a config is validated or a stack built

    return image_uris.retrieve(
        "pytorch", region=region, version=framework_version, py_version=py_version,
        instance_type=instance_type, image_scope=scope,
    )
