"""How long one request takes on one model-server worker, per instance type (docs/capacity.md).

The shipped figure is measured, not guessed: the default artifact (ResNet18 @64, the project's
default) through the local endpoint server at concurrency 1 on the machine named in
``SHIPPED`` (``python -m runner.app.calibrate`` measures it again, for any artifact, and caches it
by the artifact's hash). An instance type's figure is that one scaled by a documented factor:
the machine's worker is one vCPU, so is one TorchServe worker on a CPU instance (workers default
to the vCPUs, CAPACITY.md §2.1); families differ by clock and generation (``FAMILY_SPEED``). GPU
types run the model on the GPU: their factor is an assumption too, stated here.
"""

from __future__ import annotations

from dataclasses import dataclass

# vCPUs per hosting instance type (AWS instance type pages; CAPACITY.md §2.1). ml.X = the EC2 X.
VCPUS = {
    "ml.t2.medium": 2,
    "ml.m5.large": 2, "ml.m5.xlarge": 4, "ml.m5.2xlarge": 8, "ml.m5.4xlarge": 16,
    "ml.c5.large": 2, "ml.c5.xlarge": 4, "ml.c5.2xlarge": 8, "ml.c5.4xlarge": 16,
    "ml.g4dn.xlarge": 4, "ml.g4dn.2xlarge": 8, "ml.g5.xlarge": 4, "ml.g5.2xlarge": 8,
    "ml.p3.2xlarge": 8, "ml.p4d.24xlarge": 96,
}

# Service time relative to one vCPU of the calibration machine (an assumption, per family):
# m5 (Xeon Platinum 8175M/8259CL, 3.1 GHz turbo) ~ the reference; c5 (3.4-3.6 GHz) 10 % faster;
# t2 (older Haswell/Broadwell, burstable) 40 % slower; GPU families: a small CNN at batch 1 is
# dominated by launch and copy overheads, taken as 2.5x faster than one vCPU (T4, A10G, V100, A100
# alike: no published figure for this model).
FAMILY_SPEED = {"t2": 1.4, "m5": 1.0, "c5": 0.9, "g4dn": 0.4, "g5": 0.4, "p3": 0.4, "p4d": 0.4}


@dataclass(frozen=True)
class ServiceTime:
    mean_ms: float
    cv: float
    source: str  # where the figure comes from, for the report


# Measured: the default artifact (ResNet18, 10 classes, 64x64 PNG) through handlers.serve, one
# worker, one client, keep-alive, 400 requests after 20 warm-up ones; per request from the first
# byte sent to the last byte received (PNG decode, preprocessing, forward, JSON).
# `python -m runner.app.calibrate` on 2026-12-06, 2-vCPU Intel Xeon (the CI machine type),
# torch 2.14.1 CPU: 14.5 ms, CV 0.046 (rounded up to 0.05).
SHIPPED = ServiceTime(mean_ms=14.5, cv=0.05, source="shipped: default artifact, measured 2026-12-06")


def vcpus(instance_type: str) -> int:
    return VCPUS[instance_type]


def family(instance_type: str) -> str:
    return instance_type.split(".")[1]


def for_instance(instance_type: str, measured: ServiceTime | None = None) -> ServiceTime:
    """The service time of one request on one worker of ``instance_type``: the measured figure
    (a calibration of this artifact, else the shipped one) scaled by the family's factor."""
    base = measured or SHIPPED
    factor = FAMILY_SPEED[family(instance_type)]
    return ServiceTime(base.mean_ms * factor, base.cv,
                       f"{base.source}, x{factor:g} for {family(instance_type)} (runner/capacity/service_time.py)")
