"""The IAM catalogue, for the gate: its home is runner/core/iam_catalog.py (the local target's
authoriser reads the same ARN formats, and the targets layer may not import policies)."""

from runner.core.iam_catalog import *  # noqa: F403
from runner.core.iam_catalog import (  # noqa: F401 - the loader's internals, for its tests
    DISTRIBUTION,
    _cache_file,
    _load,
    metadata,
    tempfile,
)
