"""Plan and apply the stack against live state; destroy it. Modelled on Chalice's deployer.

resource models (``runner.stack``) -> planner (``plan_changes``: read live, diff, order) ->
executor (``apply``: ordered boto3 calls through one driver per kind, waiters, progress, a
journal of what this run created) -> sweeper (stale resources of the stack, and the ones a
content-hashed replacement superseded, deleted last).

Rules: idempotent (an unchanged stack makes no mutating call); nothing is updated or deleted
unless it carries ``sagegate:stack=<name>``; a failure rolls back what this run created (and
undoes the reference moves it made, so the deletions are allowed), in reverse order, unless
``rollback=False``; Ctrl-C stops at the next resource boundary.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.core.errors import UserError
from runner.core.names import STACK_TAG, ResourceNames
from runner.core.settings import Settings
from runner.deploy.drivers import DRIVERS, KIND_ORDER, DriverContext, ForeignResourceError, Live, driver_for
from runner.deploy.drivers.base import error_code
from runner.stack.model import Resource, Stack, get_att_targets

PENDING = "(known after apply)"
ACTIONS = ("create", "update", "replace", "no-change", "delete")
_KIND_RANK = {cls.type: i for i, cls in enumerate(KIND_ORDER)}


@dataclass
class Change:
    action: str  # create | update | replace | no-change | delete
    logical_id: str | None
    type: str
    name: str
    details: list[str] = field(default_factory=list)
    # For a content-hashed name: the live resource this one supersedes (deleted by the sweeper).
    replaces: str | None = None
    live: Live | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        text = f"{self.action} {self.type} {self.name}"
        if self.replaces:
            text += f" (replaces {self.replaces})"
        if self.details:
            text += f" [{', '.join(self.details)}]"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "logical_id": self.logical_id, "type": self.type, "name": self.name,
                "details": list(self.details), "replaces": self.replaces}


@dataclass
class ApplyReport:
    changes: list[Change] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)
    failed: str | None = None
    error: str | None = None
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "changes": [c.as_dict() for c in self.changes], "created": self.created,
                "updated": self.updated, "deleted": self.deleted, "rolled_back": self.rolled_back,
                "remaining": self.remaining, "failed": self.failed, "error": self.error,
                "interrupted": self.interrupted}

    def summary(self) -> str:
        parts = [f"created {len(self.created)}", f"updated {len(self.updated)}", f"deleted {len(self.deleted)}"]
        if self.rolled_back:
            parts.append(f"rolled back {len(self.rolled_back)}")
        if self.remaining:
            parts.append(f"remaining {len(self.remaining)}")
        return ", ".join(parts)


class ApplyError(UserError):
    """An apply failed (or was interrupted); ``report`` says what was created, rolled back, left."""

    def __init__(self, message: str, report: ApplyReport):
        super().__init__(message)
        self.report = report


class ApplyInterrupted(Exception):
    pass


@dataclass
class DestroyReport:
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    deleted_objects: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"deleted": self.deleted, "kept": self.kept, "deleted_objects": self.deleted_objects}


# -- planner ---------------------------------------------------------------------------------
def ordered(resources: list[Resource]) -> list[Resource]:
    """Dependency order (stable: the stack's own order where dependencies allow)."""
    by_id = {r.logical_id: r for r in resources}
    done: set[str] = set()
    result: list[Resource] = []

    def visit(resource: Resource, path: tuple[str, ...]) -> None:
        if resource.logical_id in done:
            return
        if resource.logical_id in path:
            raise ValueError(f"dependency cycle: {' -> '.join(path + (resource.logical_id,))}")
        for dependency in resource.depends_on + sorted(get_att_targets(resource.properties)):
            if dependency in by_id:
                visit(by_id[dependency], path + (resource.logical_id,))
        done.add(resource.logical_id)
        result.append(resource)

    for resource in resources:
        visit(resource, ())
    return result


def resolve(value: Any, outputs: dict[str, dict[str, Any]]) -> Any:
    """Properties with each ``Fn::GetAtt`` replaced by the live value (or PENDING before it exists)."""
    if isinstance(value, dict):
        if set(value) == {"Fn::GetAtt"}:
            logical_id, attribute = value["Fn::GetAtt"]
            return outputs.get(logical_id, {}).get(attribute, PENDING)
        return {k: resolve(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, outputs) for v in value]
    return copy.deepcopy(value)


def _name(resource: Resource, props: dict[str, Any]) -> str:
    if resource.type == "AWS::ApplicationAutoScaling::ScalableTarget":
        return props["ResourceId"]
    if resource.type == "AWS::Lambda::Version":
        return f"{props['FunctionName']}:{PENDING if 'Version' not in props else props['Version']}"
    if resource.type == "AWS::Lambda::Alias":
        return f"{props['FunctionName']}:{props['Name']}"
    return resource.physical_name or resource.logical_id


def _context(target: Any, stack_name: str, names: ResourceNames, console: Any = None,
             on_created: Callable[[Live], None] | None = None) -> DriverContext:
    def progress(message: str) -> None:
        if console is not None:
            console.print(f"    {message}", highlight=False, soft_wrap=True)

    return DriverContext(target, stack_name, names, progress, on_created)


def _refuse_foreign(stack_name: str, resource_type: str, live: Live) -> None:
    owner = f"tagged {STACK_TAG}={live.owner}" if live.owner else f"not tagged {STACK_TAG}"
    raise ForeignResourceError(
        f"{resource_type} {live.name} already exists and is {owner}, not {STACK_TAG}={stack_name}: "
        "sagegate never updates or deletes a resource it does not own. Choose another stack name "
        f"(name=...) or remove that resource yourself.")


def plan_changes(stack: Stack, target: Any, *, sweep: bool = True) -> list[Change]:
    """Desired against live: one change per resource in dependency order, then the sweeper's deletes.

    ``sweep=False`` plans only the given resources (e.g. the roles a training job needs first).
    """
    ctx = _context(target, stack.name, stack.names)
    outputs: dict[str, dict[str, Any]] = {}
    changes: list[Change] = []
    endpoint_reconfigured = False
    desired_names: set[tuple[str, str]] = set()
    for resource in ordered(stack.resources):
        driver = driver_for(resource.type)
        props = resolve(resource.properties, outputs)
        name = _name(resource, props)
        live = driver.read(ctx, props)
        if live is not None and driver.tagged and live.owner != stack.name:
            _refuse_foreign(stack.name, resource.type, live)
        if live is None:
            change = Change("create", resource.logical_id, resource.type, name)
            predecessor = driver.predecessor(ctx, props)
            if predecessor is not None:
                details = [d for d in driver.diff(props, predecessor) if d != "Tags"] or ["content"]
                change = Change("replace", resource.logical_id, resource.type, name, details,
                                replaces=predecessor.name, live=predecessor)
        else:
            details = driver.diff(props, live)
            if live.name != name and resource.type == "AWS::Lambda::Version":
                name = live.name
            if resource.type.startswith("AWS::ApplicationAutoScaling::") and endpoint_reconfigured:
                action, details = "replace", details + ["re-registered around the endpoint update (AWS requires it)"]
            elif set(details) & driver.replace_on:
                action = "replace"
            else:
                action = "update" if details else "no-change"
            change = Change(action, resource.logical_id, resource.type, name, details, live=live)
            outputs[resource.logical_id] = dict(live.outputs)
        if resource.type == "AWS::SageMaker::Endpoint" and change.action == "update" \
                and "EndpointConfigName" in change.details:
            endpoint_reconfigured = True
        desired_names.add((resource.type, name))
        changes.append(change)

    superseded = {(c.type, c.replaces) for c in changes if c.replaces}
    for cls in reversed(KIND_ORDER) if sweep else ():
        for live in DRIVERS[cls.type].discover(ctx):
            if (cls.type, live.name) not in desired_names and (cls.type, live.name) not in superseded:
                changes.append(Change("delete", None, cls.type, live.name, ["no longer in the stack"], live=live))
    return changes


# -- executor --------------------------------------------------------------------------------
class _StopFlag:
    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def _interrupt_guard(console: Any) -> Iterator[_StopFlag]:
    """The first Ctrl-C asks to stop at the next resource boundary; a second one stops at once."""
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        if flag.requested:
            raise KeyboardInterrupt
        flag.requested = True
        if console is not None:
            console.print("[yellow]stopping after the current resource (Ctrl-C again to stop now)[/]")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


_SYMBOLS = {"create": "+", "update": "~", "replace": "±", "delete": "-", "no-change": "="}


def apply(stack: Stack, target: Any, *, rollback: bool = True, console: Any = None, sweep: bool = True) -> ApplyReport:
    """Make live state match the stack. Raises ``ApplyError`` (after rolling back) on failure.

    ``sweep=False`` leaves resources that are not in ``stack`` alone (partial applies).
    """
    report = ApplyReport()
    timeline: list[tuple[str, Any]] = []  # ("created", (driver, live)) | ("moved", (description, undo))

    def on_created(live: Live) -> None:
        timeline.append(("created", (DRIVERS[live.type], live)))
        report.created.append(live.describe())

    ctx = _context(target, stack.name, stack.names, console, on_created)
    current: Change | None = None
    try:
        ensure_bucket(target, stack.names)
        upload_function_code(target, stack)
        report.changes = plan_changes(stack, target, sweep=sweep)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as exc:
        report.error = _message(exc)
        raise ApplyError(f"apply could not start: {report.error}", report) from exc

    outputs: dict[str, dict[str, Any]] = {}
    with _interrupt_guard(console) as stop:
        try:
            for change in report.changes:
                if change.action == "delete":
                    continue
                resource = stack.resource(change.logical_id or "")
                driver = driver_for(resource.type)
                if change.action == "no-change":
                    outputs[resource.logical_id] = dict(change.live.outputs if change.live else {})
                    continue
                if stop.requested:
                    raise ApplyInterrupted
                current = change
                props = resolve(resource.properties, outputs)
                started = time.monotonic()
                _say(console, change)
                if change.action == "create":
                    live = driver.create(ctx, props)
                elif change.action == "update":
                    assert change.live is not None
                    undo = driver.update(ctx, props, change.live, change.details)
                    if undo is not None:
                        timeline.append(("moved", (change.describe(), undo)))
                    live = change.live
                    report.updated.append(f"{change.type} {change.name}")
                else:  # replace
                    if change.replaces is None and change.live is not None:
                        driver.delete(ctx, change.live)
                        report.deleted.append(change.live.describe())
                    live = driver.create(ctx, props)
                outputs[resource.logical_id] = {**(change.live.outputs if change.live else {}), **live.outputs}
                _done(console, started)

            for change in _sweep(report.changes) if sweep else ():
                if stop.requested:
                    raise ApplyInterrupted
                current = change
                _say(console, change)
                assert change.live is not None
                DRIVERS[change.type].delete(ctx, change.live)
                report.deleted.append(change.live.describe())
            current = None
        except (Exception, KeyboardInterrupt, ApplyInterrupted) as exc:
            report.interrupted = isinstance(exc, ApplyInterrupted | KeyboardInterrupt)
            report.failed = current.describe() if current else None
            report.error = "interrupted" if report.interrupted else _message(exc)
            _roll_back(ctx, timeline, report, rollback, console)
            raise ApplyError(_failure_message(report, rollback), report) from exc
    return report


def apply_only(stack: Stack, target: Any, logical_ids: list[str], *, console: Any = None) -> ApplyReport:
    """Apply some of the stack's resources (and nothing else): e.g. a training job's role first."""
    part = dataclasses.replace(stack, resources=[r for r in stack.resources if r.logical_id in set(logical_ids)])
    return apply(part, target, console=console, sweep=False)


def _sweep(changes: list[Change]) -> list[Change]:
    """What the sweeper deletes, children before parents: stale resources and superseded ones."""
    doomed = [c for c in changes if c.action == "delete"]
    for change in changes:
        if change.replaces and change.live is not None:
            doomed.append(Change("delete", None, change.type, change.replaces, [f"replaced by {change.name}"],
                                 live=change.live))
    return sorted(doomed, key=lambda c: -_KIND_RANK.get(c.type, 0))


def _roll_back(ctx: DriverContext, timeline: list[tuple[str, Any]], report: ApplyReport, rollback: bool,
               console: Any) -> None:
    created = [item for kind, item in timeline if kind == "created"]
    if not rollback:
        report.remaining = [live.describe() for _, live in created]
        return
    if console is not None and timeline:
        console.print("[yellow]rolling back what this run created[/]")
    quiet = DriverContext(ctx.target, ctx.stack_name, ctx.names, ctx._progress)
    for kind, item in reversed(timeline):
        if kind == "moved":
            description, undo = item
            try:
                undo()
            except Exception as exc:  # keep going: report what is left
                report.remaining.append(f"not undone: {description} ({_message(exc)})")
            continue
        driver, live = item
        try:
            driver.delete(quiet, live)
            report.rolled_back.append(live.describe())
        except Exception as exc:
            report.remaining.append(f"{live.describe()} (rollback failed: {_message(exc)})")


def _failure_message(report: ApplyReport, rollback: bool) -> str:
    head = "apply interrupted" if report.interrupted else "apply failed"
    lines = [f"{head}{' at ' + report.failed if report.failed else ''}: {report.error}"]
    lines.append(f"created by this run: {', '.join(report.created) or 'nothing'}")
    if rollback:
        lines.append(f"rolled back: {', '.join(report.rolled_back) or 'nothing'}")
    lines.append(f"remaining: {', '.join(report.remaining) or 'nothing'}"
                 + ("" if rollback or not report.remaining else " (the next apply converges from here)"))
    return "; ".join(lines)


def _message(exc: BaseException) -> str:
    code = error_code(exc) if isinstance(exc, Exception) else ""
    text = str(exc) or type(exc).__name__
    return f"{code}: {text}" if code and code not in text else text


def _say(console: Any, change: Change) -> None:
    if console is not None:
        console.print(f"  {_SYMBOLS.get(change.action, '?')} {change.describe()}", highlight=False, soft_wrap=True)


def _done(console: Any, started: float) -> None:
    if console is not None:
        console.print(f"    done ({time.monotonic() - started:.1f} s)", highlight=False, soft_wrap=True)


# -- destroy ---------------------------------------------------------------------------------
def destroy(settings: Settings, target: Any, *, delete_artifacts: bool = False, console: Any = None) -> DestroyReport:
    """Delete the stack's tagged resources, children first; S3 data and artifacts stay unless asked."""
    names = ResourceNames.for_settings(settings, target.account)
    ctx = _context(target, settings.name, names, console)
    report = DestroyReport()
    for cls in reversed(KIND_ORDER):
        driver = DRIVERS[cls.type]
        for live in driver.discover(ctx):
            if console is not None:
                console.print(f"  - delete {live.describe()}", highlight=False, soft_wrap=True)
            driver.delete(ctx, live)
            report.deleted.append(live.describe())
    bucket_state = _bucket_owner(target, names)
    if bucket_state is None:
        return report
    if bucket_state != settings.name:
        report.kept.append(f"s3://{names.bucket} (not tagged {STACK_TAG}={settings.name})")
    elif delete_artifacts:
        report.deleted_objects = _empty_bucket(target, names.bucket)
        target.client("s3").delete_bucket(Bucket=names.bucket)
        report.deleted.append(f"AWS::S3::Bucket {names.bucket} ({report.deleted_objects} objects)")
    else:
        report.kept.append(f"s3://{names.bucket} (model artifacts, data, code; destroy.delete_artifacts=true "
                           "deletes them)")
    return report


def _empty_bucket(target: Any, bucket: str) -> int:
    s3 = target.client("s3")
    count = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        objects = [{"Key": o["Key"], "VersionId": o["VersionId"]}
                   for o in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        for start in range(0, len(objects), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects[start:start + 1000], "Quiet": True})
        count += len(page.get("Versions", []))
    return count


# -- S3: the stack's bucket, artifacts and function code ---------------------------------------
def _bucket_owner(target: Any, names: ResourceNames) -> str | None:
    """None if the bucket does not exist; else the value of its stack tag ('' when untagged)."""
    s3 = target.client("s3")
    try:
        s3.head_bucket(Bucket=names.bucket)
    except s3.exceptions.ClientError as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return None
        if code in ("403", "AccessDenied", "Forbidden"):
            raise UserError(f"S3 bucket {names.bucket} exists but this account cannot use it "
                            "(bucket names are global): choose another stack name") from None
        raise
    try:
        tags = s3.get_bucket_tagging(Bucket=names.bucket).get("TagSet", [])
    except s3.exceptions.ClientError as exc:
        if error_code(exc) == "NoSuchTagSet":
            return ""
        raise
    return {t["Key"]: t["Value"] for t in tags}.get(STACK_TAG, "")


def ensure_bucket(target: Any, names: ResourceNames) -> None:
    """The stack's private, encrypted, tagged bucket (created once; a foreign one is refused)."""
    owner = _bucket_owner(target, names)
    if owner is not None:
        if owner != names.stack:
            raise ForeignResourceError(f"S3 bucket {names.bucket} exists but is not tagged {STACK_TAG}={names.stack}: "
                                       "sagegate will not use it. Choose another stack name (name=...).")
        return
    s3 = target.client("s3")
    request: dict[str, Any] = {"Bucket": names.bucket}
    if target.region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": target.region}
    s3.create_bucket(**request)
    try:
        s3.put_bucket_tagging(Bucket=names.bucket, Tagging={"TagSet": [{"Key": STACK_TAG, "Value": names.stack}]})
        s3.put_public_access_block(Bucket=names.bucket, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        s3.put_bucket_encryption(Bucket=names.bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    except BaseException:
        # An untagged bucket would be refused as foreign by the next run: take it away again.
        with contextlib.suppress(Exception):
            s3.delete_bucket(Bucket=names.bucket)
        raise


def _object_exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except s3.exceptions.ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def artifact_key(path: str | Path) -> str:
    """The content-addressed S3 key of a model artifact: known before anything is uploaded."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"artifacts/model-{digest.hexdigest()[:16]}.tar.gz"


def artifact_uri(names: ResourceNames, path: str | Path) -> str:
    return names.s3_uri(artifact_key(path))


def upload_artifact(target: Any, names: ResourceNames, path: str | Path) -> str:
    """Upload a model artifact under a content-addressed key (once); returns its s3:// URI."""
    path = Path(path)
    key = artifact_key(path)
    s3 = target.client("s3")
    if not _object_exists(s3, names.bucket, key):
        s3.upload_file(str(path), names.bucket, key)
    return names.s3_uri(key)


def upload_function_code(target: Any, stack: Stack) -> None:
    """The Lambda package at the S3 key the stack's function names (uploaded once)."""
    from runner.stack.function_package import build_function_package

    functions = stack.find("AWS::Lambda::Function")
    if not functions:
        return
    code = functions[0].properties["Code"]
    package = build_function_package()
    if package.sha256_hex[:16] not in code["S3Key"]:
        raise UserError(f"handlers/lambda_function.py changed after the stack was built "
                        f"(package {package.sha256_hex[:16]}, stack expects {code['S3Key']}): build the stack again")
    s3 = target.client("s3")
    if not _object_exists(s3, code["S3Bucket"], code["S3Key"]):
        s3.put_object(Bucket=code["S3Bucket"], Key=code["S3Key"], Body=package.zip_bytes)
