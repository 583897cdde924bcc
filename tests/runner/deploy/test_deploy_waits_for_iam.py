"""A fresh deploy creates roles, their policies and the services that use them in one run: on AWS
(and on the emulator with ``iam_propagation_s`` > 0) the services refuse the roles for a few
seconds, and the applier retries (``retry_while_propagating``), bounded, saying so."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import pytest
from rich.console import Console
from runner_helpers import inventory, settings_for

from runner.deploy import ApplyError, apply
from runner.deploy.drivers import base
from runner.stack.build import build_stack
from runner.targets.emulator import set_iam_propagation

PROPAGATION_ANSWERS = ("The role defined for the function cannot be assumed by Lambda.",
                       "The provided execution role does not have permissions to call PutTraceSegments on XRAY",
                       "Could not assume role ")


@pytest.fixture
def propagation(emulator_url: str) -> Iterator[Callable[[float], None]]:
    previous: list[float] = []

    def set_delay(delay_s: float) -> None:
        old = set_iam_propagation(emulator_url, delay_s)
        if not previous:
            previous.append(old)

    yield set_delay
    if previous:
        set_iam_propagation(emulator_url, previous[0])


@pytest.fixture
def answers(local_target) -> list[tuple[str, str, str]]:
    """(operation, error code, message) of every error response the emulator gives this target."""
    seen: list[tuple[str, str, str]] = []

    def after_call(http_response, parsed, model, **_):
        if http_response.status_code >= 300:
            error = parsed.get("Error", {})
            seen.append((model.name, str(error.get("Code", "")), str(error.get("Message", ""))))

    local_target.register("after-call", after_call)
    return seen


def _propagation_errors(answers: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    return [a for a in answers if a[2].startswith(PROPAGATION_ANSWERS)]


def test_a_fresh_deploy_succeeds_once_the_new_roles_have_propagated(local_target, stack_name, propagation, answers):
    """Roles, their policies and a traced function in one run, with a 2 s propagation delay."""
    propagation(2.0)
    stack = build_stack(settings_for(stack_name))
    assert stack.resource("InvokeFunction").properties["TracingConfig"] == {"Mode": "Active"}
    out = io.StringIO()
    apply(stack, local_target, console=Console(file=out, width=300, color_system=None))

    refused = _propagation_errors(answers)
    assert refused, answers  # the emulator did refuse the fresh roles at least once ...
    assert {operation for operation, _, _ in refused} <= {"CreateModel", "CreateFunction"}
    assert "IAM changes take seconds to propagate; retrying in" in out.getvalue()  # ... the wait was shown ...
    assert f"function:{stack.names.function_name}" in inventory(local_target, stack_name)  # ... and it worked


def test_without_the_retry_the_deploy_fails_with_awss_answer(local_target, stack_name, propagation, monkeypatch):
    propagation(2.0)
    monkeypatch.setattr(base, "PROPAGATION_TIMEOUT_S", 0.0)
    with pytest.raises(ApplyError, match=r"Could not assume role arn:aws:iam::123456789012:role/.*Please ensure that "
                                         r"the role exists and allows principal 'sagemaker.amazonaws.com' to assume "
                                         r"the role\.|The role defined for the function cannot be assumed by Lambda"):
        apply(build_stack(settings_for(stack_name)), local_target)
    assert not inventory(local_target, stack_name)  # rolled back


def test_a_delay_longer_than_the_retry_bound_fails_with_awss_answer(local_target, stack_name, propagation,
                                                                    monkeypatch, answers):
    propagation(3.0)
    monkeypatch.setattr(base, "PROPAGATION_TIMEOUT_S", 1.0)
    with pytest.raises(ApplyError, match=r"Could not assume role|cannot be assumed by Lambda"):
        apply(build_stack(settings_for(stack_name)), local_target)
    assert len(_propagation_errors(answers)) >= 2  # it did retry, within its bound


def test_a_permission_the_role_really_lacks_is_not_retried(local_target, stack_name, answers):
    """AWS's X-Ray answer is the same for a permission not yet propagated and one never granted:
    the applier retries it only while IAM itself reports the role allows the call."""
    without_xray = ('iam.roles.lambda_invoke.scopes=[{service:sagemaker,actions:[InvokeEndpoint],'
                    'resources:[endpoint]},{service:logs,actions:[CreateLogStream,PutLogEvents],'
                    'resources:[function_log_group]}]')
    with pytest.raises(ApplyError, match="does not have permissions to call PutTraceSegments on XRAY"):
        apply(build_stack(settings_for(stack_name, without_xray)), local_target)
    assert [a[0] for a in answers if "PutTraceSegments" in a[2]] == ["CreateFunction"]  # once
