"""One driver per resource kind: read live, create, update, delete, and what counts as a change."""

from __future__ import annotations

from runner.deploy.drivers.autoscaling import ScalableTargetDriver, ScalingPolicyDriver
from runner.deploy.drivers.base import Driver, DriverContext, ForeignResourceError, Live, WaitTimeout
from runner.deploy.drivers.iam import InstanceProfileDriver, RoleDriver
from runner.deploy.drivers.lambda_ import AliasDriver, FunctionDriver, VersionDriver
from runner.deploy.drivers.sagemaker import (
    EndpointConfigDriver,
    EndpointDriver,
    ModelDriver,
    NotebookInstanceDriver,
)

# Creation order of the kinds; destroy and the sweeper go through it backwards.
KIND_ORDER: tuple[type[Driver], ...] = (
    RoleDriver, InstanceProfileDriver, ModelDriver, EndpointConfigDriver, EndpointDriver,
    ScalableTargetDriver, ScalingPolicyDriver, FunctionDriver, VersionDriver, AliasDriver,
    NotebookInstanceDriver,
)
DRIVERS: dict[str, Driver] = {cls.type: cls() for cls in KIND_ORDER}


def driver_for(resource_type: str) -> Driver:
    try:
        return DRIVERS[resource_type]
    except KeyError:
        raise NotImplementedError(f"no driver for {resource_type}") from None


__all__ = ["DRIVERS", "KIND_ORDER", "Driver", "DriverContext", "ForeignResourceError", "Live", "WaitTimeout",
           "driver_for"]
