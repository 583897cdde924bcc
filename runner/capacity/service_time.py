"""How long one request takes on one model-server worker, per instance type (docs/capacity.md).

The shipped figures are measured, not guessed: the project's two models (ResNet18 @64, the
default; ResNet50 @224, the reference preset's) through the local endpoint server at concurrency 1
on the machine named at ``SHIPPED`` (``simulate.calibrate=true`` measures a trained artifact the
same way, cached by its hash). An instance type's figure is that one scaled by a documented factor:
the machine's worker is one vCPU, so is one TorchServe worker on a CPU instance (workers default
to the vCPUs, CAPACITY.md §2.1); families differ by clock and generation (``FAMILY_SPEED``). GPU
types run the model on the GPU: their factor is an assumption too, stated here.
"""

from __future__ import annotations

from dataclasses import dataclass

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


# Measured with `python -m runner.app.calibrate --untrained ARCH SIZE`: an untrained model of the
# config's architecture at its image size through handlers.serve, one worker, one client,
# keep-alive, 300 requests after 20 warm-up ones; per request from the first byte sent to the last
# byte received (PNG decode, preprocessing, forward, JSON). 2-vCPU Intel Xeon (the CI machine
# type), torch 2.14.1 CPU, 2026-12-06, load average 1.4, with the endpoint server of c94eb58
# (torchvision decoding, one compute thread).
SHIPPED = {
    ("resnet18", 64): ServiceTime(mean_ms=5.97, cv=0.10, source="shipped: resnet18 @64, measured 2026-12-06"),
    ("resnet50", 224): ServiceTime(mean_ms=55.45, cv=0.063, source="shipped: resnet50 @224, measured 2026-12-06"),
}


def shipped(arch: str, image_size: int) -> ServiceTime | None:
    return SHIPPED.get((arch, image_size))


def family(instance_type: str) -> str:
    return instance_type.split(".")[1]


def for_instance(instance_type: str, base: ServiceTime) -> ServiceTime:
    """The service time of one request on one worker of ``instance_type``: ``base`` (a
    calibration of this artifact, else the shipped figure) scaled by the family's factor."""
    factor = FAMILY_SPEED[family(instance_type)]
    return ServiceTime(base.mean_ms * factor, base.cv,
                       f"{base.source}, x{factor:g} for {family(instance_type)} (runner/capacity/service_time.py)")
