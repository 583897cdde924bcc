"""Fault injection: the k-th mutating call fails, for every k of a deploy from empty."""

from __future__ import annotations

import re

import pytest
from runner_helpers import CallLog, Killed, inventory, stack_for, watch, with_network

from runner.deploy import ApplyError, apply, ensure_bucket, upload_function_code


def _prepared(target, name, *overrides):
    """The stack, with its bucket and function code in place (not part of what apply rolls back)."""
    stack = stack_for(name, *overrides)
    ensure_bucket(target, stack.names)
    upload_function_code(target, stack)
    return stack


def _shape(items: set[str], name: str) -> set[str]:
    """An inventory with the stack name and content hashes taken out."""
    return {re.sub(r"-(model|config)-[0-9a-f]{8}$", r"-\1-HASH", item.replace(name, "NAME")) for item in items}


def _mutating_calls_of_a_clean_deploy(target, name, *overrides) -> list[str]:
    stack = _prepared(target, name, *overrides)
    log, remove = watch(target)
    apply(stack, target)
    remove()
    return log.mutating


@pytest.mark.parametrize("overrides", [(), ("notebook=t3_medium", "training=ec2")], ids=["default", "notebook-ec2"])
def test_every_failing_call_is_rolled_back(local_target, stack_name, overrides):
    overrides = with_network(local_target, *overrides)
    calls = _mutating_calls_of_a_clean_deploy(local_target, "r" + stack_name[1:], *overrides)
    assert len(calls) >= 12

    stack = _prepared(local_target, stack_name, *overrides)
    before = inventory(local_target, stack_name)
    assert before == set()
    for k in range(1, len(calls) + 1):
        log = CallLog(fail_mutating_call=k)
        _, remove = watch(local_target, log)
        with pytest.raises(ApplyError) as caught:
            apply(stack, local_target)
        remove()
        report = caught.value.report
        assert log.failed == f"{log.failed.split(':')[0]}:{calls[k - 1]}", (k, log.failed)
        assert report.remaining == [], (k, report.remaining)
        assert sorted(report.rolled_back) == sorted(report.created), k
        assert inventory(local_target, stack_name) == before, (k, log.failed)

    report = apply(stack, local_target)
    assert report.ok and len(report.created) == len(stack.resources)


def test_without_rollback_the_next_apply_converges(local_target, stack_name):
    calls = _mutating_calls_of_a_clean_deploy(local_target, "r" + stack_name[1:])
    reference = _shape(inventory(local_target, "r" + stack_name[1:]), "r" + stack_name[1:])
    for k in range(1, len(calls) + 1):
        name = f"{stack_name}-{k}"
        stack = _prepared(local_target, name)
        log = CallLog(fail_mutating_call=k)
        _, remove = watch(local_target, log)
        with pytest.raises(ApplyError) as caught:
            apply(stack, local_target, rollback=False)
        remove()
        report = caught.value.report
        assert report.rolled_back == [] and report.remaining == report.created, k
        if report.remaining:
            assert "the next apply converges" in str(caught.value)

        converged = apply(stack, local_target)
        assert converged.ok, k
        assert _shape(inventory(local_target, name), name) == reference, k
        log, remove = watch(local_target)
        apply(stack, local_target)
        remove()
        assert log.mutating == [], (k, log.mutating)


# -- issue 13, apply under faults ------------------------------------------------------------
_BRACKETS = ("1 validation error detected: Value 'ml.x' at 'instanceType' failed to satisfy constraint: "
             "Member must satisfy enum value set: [ml.t2.medium, ml.m5.large]; path [/opt/ml/model] [/]")


def _printed(renderable) -> str:
    from rich.console import Console

    console = Console(record=True, width=400, color_system=None)
    console.print(renderable, soft_wrap=True)
    return console.export_text()


def test_aws_messages_with_brackets_and_upload_faults_end_in_one_clean_line(local_target, stack_name, tmp_path):
    from rich.console import Console

    from runner.app.cli import error_line
    from runner.core.errors import UserError
    from runner.deploy import upload_artifact

    stack = _prepared(local_target, stack_name)
    # An upload that fails: a UserError (one line, exit 2), AWS's message verbatim, no traceback.
    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(b"not really a model")
    log = CallLog(fail_operation="PutObject", message=_BRACKETS)
    _, remove = watch(local_target, log)
    with pytest.raises(UserError) as caught:
        upload_artifact(local_target, stack.names, artifact)
    remove()
    assert _BRACKETS in str(caught.value)
    assert _printed(error_line("error", caught.value)).strip() == f"error: {caught.value}"

    # A failing create whose message holds brackets: verbatim in the error and in the progress lines.
    log = CallLog(fail_operation="CreateEndpointConfig", message=_BRACKETS)
    _, remove = watch(local_target, log)
    console = Console(record=True, width=400, color_system=None)
    with pytest.raises(ApplyError) as failed:
        apply(stack, local_target, console=console)
    remove()
    assert _BRACKETS in str(failed.value)
    assert _printed(error_line("error", failed.value)).strip() == f"error: {failed.value}"
    assert "rolling back what this run created" in console.export_text()
    assert inventory(local_target, stack_name) == set()


def _deploy_everything(target, stack):
    ensure_bucket(target, stack.names)
    upload_function_code(target, stack)
    return apply(stack, target)


def _bucket_tags(target, bucket: str) -> dict[str, str]:
    tags = target.client("s3").get_bucket_tagging(Bucket=bucket)["TagSet"]
    return {t["Key"]: t["Value"] for t in tags}


def test_killed_at_every_step_of_a_fresh_deploy_the_next_deploy_converges(local_target, stack_name):
    """kill -9 (no call leaves after the k-th mutating one, nothing cleans up) at every mutating call
    of a fresh deploy, the bucket's included: the next deploy converges to the reference inventory,
    the bucket is the stack's (tagged, private, encrypted), and one more deploy sends no mutating call."""
    from runner.core.names import STACK_TAG

    reference_name = "r" + stack_name[1:]
    log, remove = watch(local_target)
    _deploy_everything(local_target, stack_for(reference_name))
    remove()
    calls = log.mutating
    assert calls[0] == "CreateBucket" and "PutBucketTagging" not in calls  # tagged in the creating call
    reference = _shape(inventory(local_target, reference_name), reference_name)
    for k in range(1, len(calls) + 1):
        name = f"{stack_name}-{k}"
        stack = stack_for(name)
        log = CallLog(kill_at_mutating_call=k)
        _, remove = watch(local_target, log)
        with pytest.raises(Killed):
            _deploy_everything(local_target, stack)
        remove()
        assert log.failed and log.failed.endswith(calls[k - 1]), (k, log.failed)

        assert _deploy_everything(local_target, stack).ok, k
        assert _shape(inventory(local_target, name), name) == reference, k
        s3 = local_target.client("s3")
        assert _bucket_tags(local_target, stack.names.bucket)[STACK_TAG] == name, k
        assert all(s3.get_public_access_block(Bucket=stack.names.bucket)["PublicAccessBlockConfiguration"].values())
        assert s3.get_bucket_encryption(Bucket=stack.names.bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        log, remove = watch(local_target)
        _deploy_everything(local_target, stack)
        remove()
        assert log.mutating == [], (k, log.mutating)


def test_a_reserved_concurrency_change_converges(local_target, stack_name):
    """A change of function.reserved_concurrency is one PutFunctionConcurrency; no version is
    published, the alias stays, and the next deploy sends no mutating call."""
    assert _deploy_everything(local_target, stack_for(stack_name)).ok
    changed = stack_for(stack_name, "function.reserved_concurrency=7")
    log, remove = watch(local_target)
    report = _deploy_everything(local_target, changed)
    remove()
    assert report.ok and log.mutating == ["PutFunctionConcurrency"], log.mutating
    lam = local_target.client("lambda")
    assert lam.get_function(FunctionName=changed.names.function_name)["Concurrency"][
        "ReservedConcurrentExecutions"] == 7
    log, remove = watch(local_target)
    _deploy_everything(local_target, changed)
    remove()
    assert log.mutating == [], log.mutating
