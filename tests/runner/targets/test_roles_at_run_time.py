"""The default roles hold exactly what the services do with them at run time, on the local target.

For every permission of the default config's roles that a need declares (runner/stack/needs.py),
the deployed role loses it and the data plane runs again: the first call that needs it is refused
with AccessDenied naming the action and the resource, whether sagegate's code makes it (the
function's InvokeEndpoint) or the service does (the endpoint's image pull and artifact read, its
logs and metrics; the function's logs and X-Ray traces: runner/targets/service_calls.py). The gate
side of the same removals is tests/policies/rules/iam/test_role_needs.py."""

from __future__ import annotations

import copy
import io
import json
import re
import urllib.error
import urllib.request
from fnmatch import fnmatchcase
from typing import Any

from runner_helpers import settings_for

from runner.core import iam_eval
from runner.core.errors import UserError
from runner.deploy import apply, ensure_bucket, upload_artifact
from runner.stack.build import build_stack
from runner.stack.parts import active_parts
from runner.targets.dataplane import start_data_plane


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (20, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def _run_once(settings, target, stack, artifact, log_dir) -> tuple[int | None, str]:
    """Start the data plane, send one image through the function: (HTTP status or None when the
    endpoint did not start, what the local target refused)."""
    try:
        plane = start_data_plane(settings, target, stack, artifact, log_dir=log_dir)
    except UserError as exc:
        return None, str(exc)
    with plane:
        request = urllib.request.Request(plane.function_url, data=_png(), method="POST",
                                         headers={"Content-Type": "image/png"})
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                status = answer.status
        except urllib.error.HTTPError as error:
            status = error.code
        return status, "; ".join(plane.refused())


def _needed_grants(stack, settings) -> list[tuple[str, str, int, str, Any]]:
    """(role name, policy name, statement index, action, the need) of every granted permission a
    need of the config's active parts uses."""
    active = active_parts(settings)
    grants = []
    for role in stack.find("AWS::IAM::Role"):
        served = set(settings.iam.roles[role.config_key.rsplit(".", 1)[-1]].used_by) & active
        policy = role.properties["Policies"][0]
        for i, statement in enumerate(policy["PolicyDocument"]["Statement"]):
            for action in statement["Action"]:
                need = next((n for n in stack.needs if n.part in served and iam_eval.statement_matches(
                    {**statement, "Action": action}, n.action, n.resource, n.context)), None)
                if need is not None:
                    grants.append((role.properties["RoleName"], policy["PolicyName"], i, action, need))
    return grants


def test_every_needed_permission_of_the_default_roles_is_needed_at_run_time(local_target, stack_name, artifact,
                                                                            tmp_path):
    settings = settings_for(stack_name)
    names = build_stack(settings).names
    ensure_bucket(local_target, names)
    stack = build_stack(settings, model_data_url=upload_artifact(local_target, names, artifact))
    apply(stack, local_target)
    assert _run_once(settings, local_target, stack, artifact, tmp_path / "baseline") == (200, "")

    iam = local_target.client("iam")
    grants = _needed_grants(stack, settings)
    assert {n.part for *_, n in grants} == {"endpoint", "function"}
    assert len(grants) >= 15, grants  # artifact, image pull x4, logs, metrics; invoke, logs x3, X-Ray x2
    misses = []
    for n, (role, policy, index, action, need) in enumerate(grants):
        original = json.loads(json.dumps(iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]))
        reduced = copy.deepcopy(original)
        statement = reduced["Statement"][index]
        statement["Action"] = [a for a in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]) if a != action]
        if not statement["Action"]:
            reduced["Statement"].pop(index)
        iam.put_role_policy(RoleName=role, PolicyName=policy, PolicyDocument=json.dumps(reduced))
        try:
            status, refused = _run_once(settings, local_target, stack, artifact, tmp_path / f"case{n}")
        finally:
            iam.put_role_policy(RoleName=role, PolicyName=policy, PolicyDocument=json.dumps(original))
        # The refused resource is one the removed grant covered (the need's ARN is representative only).
        granted = original["Statement"][index]["Resource"]
        named = re.findall(r"arn:[^\s;),]+|(?<=on )\*|(?<=resource: )\*", refused)
        if action not in refused or not any(fnmatchcase(arn, pattern) for arn in named
                                            for pattern in (granted if isinstance(granted, list) else [granted])):
            misses.append(f"{role} without {action} ({need.feature}): status {status}, refused: {refused or 'nothing'}")
    assert not misses, "\n".join(misses)
