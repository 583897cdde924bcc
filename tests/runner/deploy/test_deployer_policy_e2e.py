"""The deployer's policy is enough and every statement of it is needed, as the local target enforces it.

A role "deployer" holds only the generated policy (policies/deployer_policy.py); the deploy (bucket,
artifact, apply) and the destroy (with its artifacts) run with that role's AssumeRole credentials,
so the emulator's authoriser (runner/targets/iam_enforcement.py with iam_requests.py) checks every
call, PassRole and tag-on-create included. With all statements the deploy and destroy succeed; with
any one removed the run fails, and the first refusal names an action of that statement on a
resource of it. A removal case stops at its first failure (a fresh stack name each time).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import boto3
import pytest
from runner_helpers import settings_for

from policies.deployer_policy import deployer_policy
from runner.core import iam_eval
from runner.core.names import ResourceNames
from runner.deploy import artifact_uri, deploy, destroy
from runner.stack.build import build_stack
from runner.stack.deployer_calls import deployer_grants
from runner.targets import Target
from runner.targets import local_target as make_target
from runner.targets.emulator import Emulator

OVERRIDES = ("destroy.delete_artifacts=true",)
SIDS = [g.sid for g in deployer_grants(build_stack(settings_for("sids", *OVERRIDES)), delete_artifacts=True)]
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emulator = Emulator().start()
    try:
        yield emulator
    finally:
        emulator.stop()
        if TIMES:
            print("\ndeployer policy e2e (s): " + ", ".join(f"{k} {v:.1f}" for k, v in TIMES.items()))


def _as_deployer(emulator: Emulator, role: str, policy: dict) -> Target:
    """A target whose every call is signed as ``role``, which holds only ``policy``."""
    admin = make_target(emulator.url)
    iam = admin.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                      "Principal": {"AWS": f"arn:aws:iam::{admin.account}:root"}}]}
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=role, PolicyName="deployer", PolicyDocument=json.dumps(policy))
    env = admin.role_environment(f"arn:aws:iam::{admin.account}:role/{role}", "ci")
    session = boto3.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                            aws_session_token=env["AWS_SESSION_TOKEN"], region_name=admin.region)
    return Target("local", admin.account, admin.region, session, endpoint_url=admin.endpoint_url)


def _run(emulator: Emulator, name: str, tmp_path, drop: str | None) -> tuple[BaseException | None, dict]:
    settings = settings_for(name, *OVERRIDES)
    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(b"a trained model")
    names = ResourceNames.for_settings(settings, "123456789012")
    stack = build_stack(settings, model_data_url=artifact_uri(names, artifact))
    policy = deployer_policy(stack, delete_artifacts=True)
    removed = next((s for s in policy["Statement"] if s["Sid"] == drop), {})
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != drop]
    target = _as_deployer(emulator, f"{name}-deployer", policy)
    try:
        deploy(stack, target, artifact)
        destroy(settings, target, delete_artifacts=True)
    except Exception as exc:  # noqa: BLE001 - what failed is the point of the test
        return exc, removed
    finally:
        target.close()
    return None, removed


def test_the_generated_policy_is_enough_to_deploy_and_destroy(emulator, tmp_path):
    started, denied = time.monotonic(), len(emulator.authorizer.denied)
    failure, _ = _run(emulator, "dpl-all", tmp_path, None)
    TIMES["full policy"] = time.monotonic() - started
    assert failure is None, failure
    assert emulator.authorizer.denied[denied:] == []


@pytest.mark.parametrize("sid", SIDS)
def test_without_any_one_statement_the_deploy_or_destroy_is_denied_naming_it(emulator, tmp_path, sid):
    started, denied = time.monotonic(), len(emulator.authorizer.denied)
    failure, removed = _run(emulator, f"dpl-{SIDS.index(sid):02d}", tmp_path, sid)
    TIMES[sid] = time.monotonic() - started
    assert removed, sid
    assert failure is not None, f"deploy and destroy succeeded without {sid}"
    refusals = emulator.authorizer.denied[denied:]
    assert refusals, f"{sid}: failed without an AccessDenied: {failure}"
    _, action, resource = refusals[0]
    assert iam_eval.action_matches(action, removed["Action"]), (sid, action)
    resources = removed["Resource"] if isinstance(removed["Resource"], list) else [removed["Resource"]]
    assert iam_eval.statement_matches({"Action": removed["Action"], "Resource": resources}, action, resource), \
        (sid, resource)
