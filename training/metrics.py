"""The metric lines printed on stdout (docs/contracts.md) and the regexes that read them back.

SageMaker metric definitions and the HPO objective (`Testing Loss: ([0-9\\.]+)`) parse these
lines from the job log, so values are always fixed-point (never ``1e-05``).
"""

from __future__ import annotations

import re

TRAIN_LOSS = "Train Loss"
VALIDATION_LOSS = "Validation Loss"
VALIDATION_ACCURACY = "Validation Accuracy"
TESTING_LOSS = "Testing Loss"
TESTING_ACCURACY = "Testing Accuracy"

METRIC_NAMES = (TRAIN_LOSS, VALIDATION_LOSS, VALIDATION_ACCURACY, TESTING_LOSS, TESTING_ACCURACY)

# Printed when an epoch starts, so that launchers can show progress.
EPOCH_LINE = re.compile(r"^Epoch (\d+)/(\d+)\b")


def metric_line(name: str, value: float) -> str:
    """``Testing Loss: 0.123456``: fixed point so ``[0-9\\.]+`` captures the whole number."""
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric name {name!r}; known: {METRIC_NAMES}")
    return f"{name}: {value:.6f}"


def metric_regex(name: str) -> str:
    """The SageMaker metric-definition regex for ``name`` (one capture group)."""
    return re.escape(name) + r": ([0-9\.]+)"


# SageMaker metric names (what a tuning objective names) -> the line name that carries the value.
SAGEMAKER_METRICS = {
    "Train Loss": TRAIN_LOSS,
    "Validation Loss": VALIDATION_LOSS,
    "Validation Accuracy": VALIDATION_ACCURACY,
    "Test Loss": TESTING_LOSS,
    "Test Accuracy": TESTING_ACCURACY,
}


def sagemaker_metric_definitions() -> list[dict[str, str]]:
    """The MetricDefinitions of a training job: one per metric line (names are letters and spaces,
    so the regex is written without escapes, as SageMaker's examples write it)."""
    return [{"Name": name, "Regex": line + r": ([0-9\.]+)"} for name, line in SAGEMAKER_METRICS.items()]


def parse_metric_lines(text: str) -> dict[str, list[float]]:
    """Every value of every known metric found in ``text``, in order of appearance."""
    found: dict[str, list[float]] = {}
    for name in METRIC_NAMES:
        values = [float(m) for m in re.findall(metric_regex(name), text)]
        if values:
            found[name] = values
    return found
