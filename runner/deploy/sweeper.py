"""The sweeper: what the stack no longer declares (or a replacement superseded) is deleted last,
children before parents; ``destroy`` sweeps the whole stack. Only resources tagged as this
stack's are ever touched; S3 data and artifacts stay unless asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from runner.core.names import STACK_TAG, ResourceNames
from runner.core.settings import Settings
from runner.deploy.drivers import DRIVERS, KIND_ORDER
from runner.deploy.planner import Change, driver_context
from runner.deploy.storage import bucket_owner
from runner.targets import Target

_KIND_RANK = {cls.type: i for i, cls in enumerate(KIND_ORDER)}


def doomed(changes: list[Change]) -> list[Change]:
    """What the sweeper deletes, children before parents: stale resources and superseded ones."""
    doomed = [c for c in changes if c.action == "delete"]
    for change in changes:
        if change.replaces and change.live is not None:
            doomed.append(Change("delete", None, change.type, change.replaces, [f"replaced by {change.name}"],
                                 live=change.live))
    return sorted(doomed, key=lambda c: -_KIND_RANK.get(c.type, 0))


@dataclass
class DestroyReport:
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    deleted_objects: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"deleted": self.deleted, "kept": self.kept, "deleted_objects": self.deleted_objects}



def destroy(settings: Settings, target: Target, *, delete_artifacts: bool = False, console: Console | None = None) -> DestroyReport:
    """Delete the stack's tagged resources, children first; S3 data and artifacts stay unless asked."""
    names = ResourceNames.for_settings(settings, target.account)
    ctx = driver_context(target, settings.name, names, console)
    report = DestroyReport()
    for cls in reversed(KIND_ORDER):
        driver = DRIVERS[cls.type]
        for live in driver.discover(ctx):
            if console is not None:
                console.print(f"  - delete {live.describe()}", highlight=False, soft_wrap=True, markup=False)
            driver.delete(ctx, live)
            report.deleted.append(live.describe())
    bucket_state = bucket_owner(target, names)
    if bucket_state is None:
        return report
    if bucket_state != settings.name:
        report.kept.append(f"s3://{names.bucket} (not tagged {STACK_TAG}={settings.name})")
    elif delete_artifacts:
        report.deleted_objects = empty_bucket(target, names.bucket)
        target.client("s3").delete_bucket(Bucket=names.bucket)
        report.deleted.append(f"AWS::S3::Bucket {names.bucket} ({report.deleted_objects} objects)")
    else:
        report.kept.append(f"s3://{names.bucket} (model artifacts, data, code; destroy.delete_artifacts=true "
                           "deletes them)")
    return report


def empty_bucket(target: Target, bucket: str) -> int:
    s3 = target.client("s3")
    count = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        objects = [{"Key": o["Key"], "VersionId": o["VersionId"]}
                   for o in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        for start in range(0, len(objects), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects[start:start + 1000], "Quiet": True})
        count += len(page.get("Versions", []))
    return count
