"""Targets: the embedded emulator's lifetime, attaching to `python -m runner.local`, AWS without credentials,
and the gap filler's API shapes."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from runner_helpers import settings_for, stack_for

from runner.core.errors import UserError
from runner.deploy import apply
from runner.targets import open_target
from runner.targets.emulator import emulator_is_running

REPO = Path(__file__).resolve().parents[3]


def test_local_target_starts_and_stops_its_emulator(stack_name):
    settings = settings_for(stack_name)
    with open_target(settings) as target:
        assert target.kind == "local" and target.account == "123456789012"
        assert target.endpoint_url.startswith("http://127.0.0.1:")
        assert emulator_is_running(target.endpoint_url)
        assert target.client("sts").get_caller_identity()["Account"] == target.account
        env = target.child_env()
        assert env["AWS_ENDPOINT_URL"] == target.endpoint_url and env["AWS_REGION"] == "us-east-1"
        url = target.endpoint_url
    assert not emulator_is_running(url, timeout_s=0.5)


def test_attaching_to_runner_local_keeps_state_between_runs(stack_name):
    process = subprocess.Popen([sys.executable, "-m", "runner.local", "--port", "0", "--no-data-plane"], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.SimpleQueue[str] = queue.SimpleQueue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        first = lines.get(timeout=60)
        url = first.split(" on ", 1)[1].strip()
        assert emulator_is_running(url)
        settings = settings_for(stack_name)
        settings.target.endpoint_url = url
        stack = stack_for(stack_name)
        with open_target(settings) as target:
            apply(stack, target)
        with open_target(settings) as target:  # a second run sees the first one's resources
            report = apply(stack, target)
            assert {c.action for c in report.changes} == {"no-change"}
        assert emulator_is_running(url)  # attaching never stops it
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0


def test_endpoint_url_without_an_emulator_is_a_clear_error(stack_name):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = settings_for(stack_name)
    settings.target.endpoint_url = f"http://127.0.0.1:{port}"
    with pytest.raises(UserError, match="python -m runner.local"), open_target(settings):
        pass


def test_aws_target_without_credentials_is_a_clear_error(stack_name, monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings = settings_for(stack_name, "target=aws")
    with pytest.raises(UserError, match="no usable AWS credentials"), open_target(settings):
        pass


def test_gap_filler_speaks_the_real_api_shapes(local_target, stack_name):
    stack = stack_for(stack_name)
    apply(stack, local_target)
    sm, lam = local_target.client("sagemaker"), local_target.client("lambda")
    names = stack.names
    with pytest.raises(ClientError) as caught:
        sm.update_endpoint(EndpointName=names.endpoint_name, EndpointConfigName="no-such-config")
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as caught:
        sm.update_endpoint(EndpointName="no-such-endpoint", EndpointConfigName="x")
    assert caught.value.response["Error"]["Code"] == "ValidationException"

    with pytest.raises(lam.exceptions.InvalidParameterValueException):
        lam.put_provisioned_concurrency_config(FunctionName=names.function_name, Qualifier="$LATEST",
                                               ProvisionedConcurrentExecutions=1)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_provisioned_concurrency_config(FunctionName=names.function_name, Qualifier="no-such-alias")
    listed = lam.list_provisioned_concurrency_configs(FunctionName=names.function_name)
    assert [(c["FunctionArn"].rsplit(":", 1)[1], c["RequestedProvisionedConcurrentExecutions"], c["Status"])
            for c in listed["ProvisionedConcurrencyConfigs"]] == [("live", 2, "READY")]
    lam.delete_provisioned_concurrency_config(FunctionName=names.function_name, Qualifier="live")
    with pytest.raises(lam.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        lam.get_provisioned_concurrency_config(FunctionName=names.function_name, Qualifier="live")
    # The next apply notices and puts it back.
    report = apply(stack, local_target)
    assert [(c.logical_id, c.details) for c in report.changes if c.action != "no-change"] == [
        ("InvokeFunctionAlias", ["ProvisionedConcurrentExecutions"])]
    assert lam.get_provisioned_concurrency_config(FunctionName=names.function_name, Qualifier="live")["Status"] == "READY"
