"""The executor: carries out a plan with one driver per kind, in order, with waiters and progress.

It knows no resource type. Rules: idempotent (an unchanged stack makes no mutating call); a
failure rolls back what this run created and restores what it changed in place (an endpoint's
config and the autoscaling taken off for its update, an alias's version), in reverse order,
unless ``rollback=False``; Ctrl-C stops at the next resource boundary. A create whose answer was
lost (the resource exists, the client saw an error) is found by name and owner tag and rolled back
too. Once every change is in, deleting what it superseded is clean-up: a failure there rolls
nothing back (the stack is at its desired state) and the next apply deletes what is left, as
CloudFormation's cleanup phase. Modelled on Chalice's deployer (planner → executor → sweeper).
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from rich.console import Console

from runner.core.errors import UserError
from runner.deploy.drivers import DRIVERS, DriverContext, Live, driver_for
from runner.deploy.drivers.base import Driver, Undo, aws_message, error_code
from runner.deploy.planner import Change, driver_context, plan_changes, resolve
from runner.deploy.storage import ensure_bucket, upload_function_code
from runner.deploy.sweeper import doomed
from runner.stack.model import Stack
from runner.targets import Target


@dataclass
class ApplyReport:
    changes: list[Change] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # changes in place undone by a rollback
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
                "restored": self.restored, "remaining": self.remaining, "failed": self.failed, "error": self.error,
                "interrupted": self.interrupted}

    def summary(self) -> str:
        parts = [f"created {len(self.created)}", f"updated {len(self.updated)}", f"deleted {len(self.deleted)}"]
        if self.rolled_back:
            parts.append(f"rolled back {len(self.rolled_back)}")
        if self.restored:
            parts.append(f"restored {len(self.restored)}")
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



class _StopFlag:
    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def _interrupt_guard(console: Console | None) -> Iterator[_StopFlag]:
    """The first Ctrl-C asks to stop at the next resource boundary; a second one stops at once."""
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: FrameType | None) -> None:
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


def apply(stack: Stack, target: Target, *, rollback: bool = True, console: Console | None = None, sweep: bool = True) -> ApplyReport:
    """Make live state match the stack. Raises ``ApplyError`` (after rolling back) on failure.

    ``sweep=False`` leaves resources that are not in ``stack`` alone (partial applies).
    """
    report = ApplyReport()
    timeline: list[tuple[str, Any]] = []  # ("created", (driver, live)) | ("moved", (description, undo))

    def on_created(live: Live) -> None:
        timeline.append(("created", (DRIVERS[live.type], live)))
        report.created.append(live.describe())

    def on_moved(description: str, undo: Undo) -> None:
        timeline.append(("moved", (description, undo)))

    ctx = driver_context(target, stack.name, stack.names, console, on_created, on_moved)
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
                if change.action == "update":
                    assert change.live is not None
                    driver.update(ctx, props, change.live, change.details)
                    live = change.live
                    report.updated.append(f"{change.type} {change.name}")
                else:  # create, or replace
                    if change.action == "replace" and change.replaces is None and change.live is not None:
                        driver.delete(ctx, change.live)
                        report.deleted.append(change.live.describe())
                    live = _create(ctx, driver, props, stack.name, report)
                outputs[resource.logical_id] = {**(change.live.outputs if change.live else {}), **live.outputs}
                _done(console, started)
            current = None
        except (Exception, KeyboardInterrupt, ApplyInterrupted) as exc:
            report.interrupted = isinstance(exc, ApplyInterrupted | KeyboardInterrupt)
            report.failed = current.describe() if current else None
            report.error = "interrupted" if report.interrupted else _message(exc) + _config_key_of(stack, current, exc)
            _roll_back(ctx, timeline, report, rollback, console)
            raise ApplyError(_failure_message(report, rollback), report) from exc
        _clean_up(ctx, doomed(report.changes) if sweep else [], report, stop, console)
    return report


def _create(ctx: DriverContext, driver: Driver, props: dict[str, Any], stack_name: str, report: ApplyReport) -> Live:
    """``driver.create``; when it fails before recording the resource, the resource is looked up by
    name and owner tag: a create whose answer was lost (a timeout, a dropped connection) may have
    happened, and then it is this run's to roll back."""
    recorded = len(report.created)
    try:
        return driver.create(ctx, props)
    except BaseException as exc:
        # "Already exists" means another run made it (e.g. a parallel sweep job of the same stack
        # on a fresh account): never ours to delete. (A create retried after a timeout answers so
        # too; the resource is tagged as the stack's, and the next apply takes it over.)
        if len(report.created) == recorded and not _already_exists(exc):
            try:
                found = driver.read(ctx, props)
            except Exception as lookup:  # noqa: BLE001 - say so, and keep the create's own error
                report.remaining.append(f"{driver.type} {driver.name(props)} (could not check whether the failed "
                                        f"create made it: {_message(lookup)})")
            else:
                if found is not None and (found.owner == stack_name or not driver.tagged):
                    ctx.created(found)
        raise


def _clean_up(ctx: DriverContext, doomed: list[Change], report: ApplyReport, stop: _StopFlag,
              console: Console | None) -> None:
    """Delete what the stack no longer declares or what a replacement superseded; a failure here
    leaves the stack at its desired state, so nothing is rolled back."""
    for done, change in enumerate(doomed):
        try:
            if stop.requested:
                raise ApplyInterrupted
            _say(console, change)
            assert change.live is not None
            DRIVERS[change.type].delete(ctx, change.live)
            report.deleted.append(change.live.describe())
        except (Exception, KeyboardInterrupt, ApplyInterrupted) as exc:
            report.interrupted = isinstance(exc, ApplyInterrupted | KeyboardInterrupt)
            report.failed = change.describe()
            report.error = "interrupted" if report.interrupted else _message(exc)
            report.remaining = [c.live.describe() for c in doomed[done:] if c.live is not None]
            raise ApplyError(
                f"apply {'interrupted' if report.interrupted else 'failed'} while deleting what the stack no longer "
                f"uses, at {report.failed}: {report.error}; every change is in, nothing was rolled back; "
                f"remaining: {', '.join(report.remaining)} (the next apply deletes them)", report) from exc


def apply_only(stack: Stack, target: Target, logical_ids: list[str], *, console: Console | None = None) -> ApplyReport:
    """Apply some of the stack's resources (and nothing else): e.g. a training job's role first."""
    part = dataclasses.replace(stack, resources=[r for r in stack.resources if r.logical_id in set(logical_ids)])
    return apply(part, target, console=console, sweep=False)


def _roll_back(ctx: DriverContext, timeline: list[tuple[str, Any]], report: ApplyReport, rollback: bool,
               console: Console | None) -> None:
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
                report.restored.append(description)
            except Exception as exc:  # keep going: report what is left
                report.remaining.append(f"not restored: {description} ({_message(exc)})")
            continue
        driver, live = item
        try:
            driver.delete(quiet, live)
            report.rolled_back.append(live.describe())
        except Exception as exc:
            report.remaining.append(f"{live.describe()} (rollback failed: {_message(exc)})")
    if console is not None and report.restored:
        console.print(f"    restored: {', '.join(report.restored)}", highlight=False, soft_wrap=True, markup=False)


def _failure_message(report: ApplyReport, rollback: bool) -> str:
    head = "apply interrupted" if report.interrupted else "apply failed"
    lines = [f"{head}{' at ' + report.failed if report.failed else ''}: {report.error}"]
    lines.append(f"created by this run: {', '.join(report.created) or 'nothing'}")
    if rollback:
        lines.append(f"rolled back: {', '.join(report.rolled_back) or 'nothing'}")
        if report.restored:
            lines.append(f"restored: {', '.join(report.restored)}")
    lines.append(f"remaining: {', '.join(report.remaining) or 'nothing'}"
                 + ("" if rollback or not report.remaining else " (the next apply converges from here)"))
    return "; ".join(lines)


# What a create answers when the name is taken: IAM, SageMaker jobs, Lambda; SageMaker's models,
# endpoint configs and endpoints answer ValidationException "Cannot create already existing ..."
# (Application Auto Scaling registrations and Lambda versions are upserts).
_EXISTS = ("EntityAlreadyExists", "ResourceInUse", "ResourceConflictException")


def _already_exists(exc: BaseException) -> bool:
    if not isinstance(exc, Exception):
        return False
    return error_code(exc) in _EXISTS or "already exist" in aws_message(exc).lower()


# What AWS (or the request check before it) answers to a request it refuses as written.
_REFUSALS = ("ValidationException", "ValidationError", "InvalidParameterValueException", "InvalidParameterException",
             "InvalidParameterCombination", "InvalidRequestContentException")


def _config_key_of(stack: Stack, change: Change | None, exc: BaseException) -> str:
    """For a refused request: the config key the resource comes from, so the user knows what to change."""
    from runner.targets.request_validation import RequestRejected

    refused = isinstance(exc, RequestRejected) or (isinstance(exc, Exception) and error_code(exc) in _REFUSALS)
    if not refused or change is None or change.action == "delete" or not change.logical_id:
        return ""
    key = stack.resource(change.logical_id).config_key
    if isinstance(exc, RequestRejected) and all(v.path.startswith("Tags") for v in exc.violations):
        key = "tags"  # every resource carries the stack's tags
    return f" (set by config key {key})" if key else ""


def _message(exc: BaseException) -> str:
    code = error_code(exc) if isinstance(exc, Exception) else ""
    text = str(exc) or type(exc).__name__
    return f"{code}: {text}" if code and code not in text else text


def _say(console: Console | None, change: Change) -> None:
    if console is not None:
        console.print(f"  {_SYMBOLS.get(change.action, '?')} {change.describe()}", highlight=False, soft_wrap=True, markup=False)


def _done(console: Console | None, started: float) -> None:
    if console is not None:
        console.print(f"    done ({time.monotonic() - started:.1f} s)", highlight=False, soft_wrap=True, markup=False)
