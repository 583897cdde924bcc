"""The EC2 instance profile's role allows exactly what the user data does with S3: fetch the bundle,
list and read the data set, put the artifact (AWS would answer AccessDenied otherwise; the emulator
does not check the role's resources, so this test does)."""

from __future__ import annotations

import fnmatch

import pytest
from runner_helpers import settings_for

from runner.stack.build import build_stack
from runner.stack.ec2_user_data import artifact_uri_of


def _assignment(user_data: str, name: str) -> str:
    return next(line.split("=", 1)[1] for line in user_data.splitlines() if line.startswith(f"{name}="))


def _allows(statements: list[dict], action: str, arn: str) -> bool:
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if statement["Effect"] == "Allow" and action in actions and any(fnmatch.fnmatchcase(arn, r) for r in resources):
            return True
    return False


def _arn(uri: str) -> str:
    return "arn:aws:s3:::" + uri[len("s3://"):]


# data=dog_images reads its data set from its own s3:// bucket, not the stack's.
@pytest.mark.parametrize("overrides", [(), ("data=dog_images",)], ids=["digits", "dog-images-in-s3"])
def test_the_instance_role_allows_every_s3_call_of_the_user_data(overrides):
    settings = settings_for("ec2role", *overrides, "training=ec2")
    stack = build_stack(settings, run_id="r1")
    (job,) = [j for j in stack.jobs if j.kind == "ec2_run"]
    user_data = job.request["UserData"]
    role = stack.resource("RoleEc2Training")
    assert job.request["IamInstanceProfile"]["Name"] == role.properties["RoleName"]
    statements = [s for p in role.properties["Policies"] for s in p["PolicyDocument"]["Statement"]]
    source, data = _assignment(user_data, "SOURCE_URI"), _assignment(user_data, "DATA_URI")
    data_bucket = data[len("s3://"):].split("/", 1)[0]
    needed = [("s3:GetObject", _arn(source)),
              ("s3:ListBucket", f"arn:aws:s3:::{data_bucket}"),
              ("s3:GetObject", _arn(data) + "/train/0/0000.png"),
              ("s3:PutObject", _arn(artifact_uri_of(user_data)))]
    missing = [(action, arn) for action, arn in needed if not _allows(statements, action, arn)]
    assert not missing, missing
