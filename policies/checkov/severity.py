"""Severities and remediations for checkov's checks.

Offline, checkov reports no severity (they come from its platform), so the gate assigns them:
a curated table for the checks this stack's resources meet, and ``medium`` for any other failed
check, so that an unknown failure is never silently below a strict gate's threshold.
"""

from __future__ import annotations

from policies.model import SEVERITIES

DEFAULT_SEVERITY = "medium"
POLICY_INDEX = "https://www.checkov.io/5.Policy%20Index/cloudformation.html"

# id -> (severity, remediation)
CHECKS: dict[str, tuple[str, str]] = {
    # sagegate's own checks (policies/checkov/checks/)
    "CKV_SG_001": ("high", "Set function.reserved_concurrency between 1 and policy.max_reserved_concurrency."),
    "CKV_SG_002": ("high", "Pick the instance types of endpoint.variants / notebook.instance_type from "
                           "policy.allowed_instance_types (hosting / notebook)."),
    # IAM
    "CKV_AWS_60": ("high", "Trust only the specific service principal that assumes the role."),
    "CKV_AWS_61": ("high", "Trust only the specific service principal that assumes the role."),
    "CKV_AWS_62": ("critical", "Remove statements that allow '*' actions on '*' resources."),
    "CKV_AWS_63": ("high", "List the exact actions instead of '*'."),
    "CKV_AWS_107": ("high", "Remove actions that expose credentials (e.g. iam:CreateAccessKey, sts:GetSessionToken)."),
    "CKV_AWS_108": ("high", "Scope read actions that can exfiltrate data to this stack's resources."),
    "CKV_AWS_109": ("high", "Scope permissions-management actions to named resources."),
    "CKV_AWS_110": ("high", "Remove the actions that allow privilege escalation."),
    "CKV_AWS_111": ("high", "Scope write actions to this stack's resources or add conditions."),
    "CKV_AWS_356": ("high", "Scope the actions to this stack's resources instead of '*'."),
    # Lambda
    "CKV_AWS_115": ("medium", "Set function.reserved_concurrency."),
    "CKV_AWS_116": ("low", "Configure a dead-letter queue for asynchronous invocations, or suppress with a reason."),
    "CKV_AWS_117": ("low", "Run the function in a VPC, or suppress with a reason."),
    "CKV_AWS_173": ("medium", "Set function.kms_key_arn to encrypt environment variables with a customer key, "
                              "or suppress with a reason when they hold nothing secret."),
    "CKV_AWS_363": ("high", "Use a supported function.runtime."),
    "CKV_AWS_45": ("critical", "Keep secrets out of the function's environment: read them from Secrets Manager."),
    "CKV2_AWS_75": ("high", "Do not allow every origin in the function URL's CORS configuration."),
    # SageMaker
    "CKV_AWS_187": ("low", "Set notebook.kms_key_id."),
    "CKV2_AWS_68": ("high", "Scope the SageMaker role's policies to this stack's resources instead of '*'."),
    "CKV_AWS_122": ("high", "Set notebook.direct_internet_access=Disabled."),
    "CKV_AWS_307": ("medium", "Set notebook.root_access=Disabled."),
    "CKV_AWS_370": ("medium", "Enable network isolation on the model (EnableNetworkIsolation)."),
    "CKV_AWS_371": ("medium", "Require IMDSv2 on the notebook (InstanceMetadataServiceConfiguration "
                              "MinimumInstanceMetadataServiceVersion: '2')."),
    # EC2 / S3
    "CKV_AWS_8": ("high", "Encrypt every EBS volume."),
    "CKV_AWS_79": ("high", "Require IMDSv2 (MetadataOptions.HttpTokens=required)."),
    "CKV_AWS_88": ("high", "Do not associate a public IP address."),
    "CKV_AWS_18": ("low", "Enable S3 access logging."),
    "CKV_AWS_21": ("low", "Enable S3 versioning."),
    "CKV_AWS_53": ("medium", "Block public ACLs on the bucket."),
    "CKV_AWS_54": ("medium", "Block public policies on the bucket."),
    "CKV_AWS_55": ("medium", "Ignore public ACLs on the bucket."),
    "CKV_AWS_56": ("medium", "Restrict public buckets."),
}


def severity_for(check_id: str, reported: str | None = None) -> str:
    """checkov's own severity when it has one (with a platform key), else the curated table."""
    if reported and reported.lower() in SEVERITIES:
        return reported.lower()
    return CHECKS.get(check_id, (DEFAULT_SEVERITY, ""))[0]


def remediation_for(check_id: str, check_name: str) -> str:
    known = CHECKS.get(check_id)
    if known:
        return known[1]
    return f"{check_name}; see {check_id} in checkov's policy index ({POLICY_INDEX})."
