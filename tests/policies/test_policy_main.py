"""`python -m policies scan-iam`: the analyser on policies this tool did not write."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from policy_helpers import FULL_ACCESS, NOTEBOOK, make

from policies.__main__ import main
from policies.checkov.runner import render_template

LEAST_PRIVILEGE = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::bucket/artifacts/*"},
    {"Effect": "Allow", "Action": "sagemaker:CreateTrainingJob",
     "Resource": "arn:aws:sagemaker:us-east-1:123456789012:training-job/demo-*"},
    {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::123456789012:role/demo-exec",
     "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}},
]}
ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
MEDIUM_ONLY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}


def write(tmp_path: Path, name: str, value) -> Path:
    path = tmp_path / name
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


def test_least_privilege_policy_exits_0(tmp_path, capsys):
    assert main(["scan-iam", str(write(tmp_path, "lp.json", LEAST_PRIVILEGE))]) == 0
    assert "no findings" in capsys.readouterr().out


def test_medium_findings_do_not_fail(tmp_path, capsys):
    assert main(["scan-iam", str(write(tmp_path, "read.json", MEDIUM_ONLY))]) == 0
    assert "SG-IAM-003" in capsys.readouterr().out


def test_admin_policy_exits_1_with_rule_ids_in_json(tmp_path, capsys):
    assert main(["scan-iam", "--json", str(write(tmp_path, "admin.json", ADMIN))]) == 1
    findings = json.loads(capsys.readouterr().out)
    assert {"SG-IAM-001", "SG-IAM-003", "SG-IAM-005", "SG-IAM-006"} <= {f["rule_id"] for f in findings}
    assert {f["severity"] for f in findings if f["rule_id"] == "SG-IAM-001"} == {"critical"}
    assert all(f["file"].endswith("admin.json") and f["remediation"] for f in findings)


def test_trust_policy_open_to_anyone_exits_1(tmp_path, capsys):
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}
    assert main(["scan-iam", str(write(tmp_path, "trust.json", trust))]) == 1
    assert "SG-IAM-007" in capsys.readouterr().out


def test_get_policy_version_output_is_understood(tmp_path, capsys):
    wrapped = {"PolicyVersion": {"Document": urllib.parse.quote(json.dumps(ADMIN)), "VersionId": "v1"}}
    assert main(["scan-iam", "--json", str(write(tmp_path, "version.json", wrapped))]) == 1
    assert "SG-IAM-001" in {f["rule_id"] for f in json.loads(capsys.readouterr().out)}


def test_cloudformation_template_of_the_default_stack_is_clean(tmp_path, capsys):
    i = make(*NOTEBOOK)  # includes the notebook's CreateTrainingJob + scoped PassRole
    path = write(tmp_path, "template.json", render_template(i.settings, i.stack))
    assert main(["scan-iam", "--json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_cloudformation_template_with_full_access_exits_1(tmp_path, capsys):
    i = make(FULL_ACCESS)
    path = write(tmp_path, "template.json", render_template(i.settings, i.stack))
    assert main(["scan-iam", "--json", str(path)]) == 1
    findings = json.loads(capsys.readouterr().out)
    assert [(f["rule_id"], f["resource"].split("#")[1]) for f in findings] == [("SG-IAM-004", "RoleSagemakerExecution")]


@pytest.mark.parametrize("content", ["{not json", json.dumps({"Statement": [{"Effect": "Perhaps"}]}),
                                     json.dumps({"no": "statement"})])
def test_unreadable_policy_exits_2(tmp_path, capsys, content):
    assert main(["scan-iam", str(write(tmp_path, "bad.json", content))]) == 2
    assert "bad.json" in capsys.readouterr().err


def test_the_real_command(tmp_path):
    """As CI calls it: a separate process; several files; the worst decides the exit code."""
    files = [str(write(tmp_path, "lp.json", LEAST_PRIVILEGE)), str(write(tmp_path, "admin.json", ADMIN))]
    done = subprocess.run([sys.executable, "-m", "policies", "scan-iam", *files], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert done.returncode == 1, done.stderr
    assert "lp.json: no findings" in done.stdout and "CRITICAL SG-IAM-001" in done.stdout
    alone = subprocess.run([sys.executable, "-m", "policies", "scan-iam", files[0]], capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert alone.returncode == 0


def test_deployer_policy_command_writes_the_stacks_policy_checked_by_the_catalogue(tmp_path):
    out = tmp_path / "deployer-policy.json"
    assert main(["deployer-policy", "name=ci-deployer", "endpoint=serverless", "autoscaling=none",
                 "--out", str(out)]) == 0
    policy = json.loads(out.read_text())
    sids = {s["Sid"] for s in policy["Statement"]}
    assert {"StackBucket", "ManageStackRoles", "PassStackRolesToSageMaker", "ManageStackFunction"} <= sids
    assert "ManageEndpointScaling" not in sids  # autoscaling=none: no scaling calls, no scaling grant
    assert all("ci-deployer" in str(s["Resource"]) or s["Resource"] == "*" for s in policy["Statement"]
               if s["Sid"].startswith(("Manage", "Pass")))
    assert main(["deployer-policy", "target=aws"]) == 2  # the account must be given
    assert main(["deployer-policy", "no_such_key=1"]) == 2
