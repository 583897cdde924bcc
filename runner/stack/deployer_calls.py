"""Every call the deployer makes for a stack, as the identity that runs sagegate: its grants, declared once.

The identity that runs ``stage=deploy``/``destroy`` (a CI role) needs exactly these: the bucket
setup and uploads (runner/deploy/storage.py), the planner's reads of live state and the sweeper's
discovery (each driver's ``read``/``discover``), the executor's creates, updates and deletes
(runner/deploy/drivers/*.py), and what AWS checks on the caller without a call of its own
(``iam:PassRole`` when a request names a role, tag permissions when a create carries tags, the
alarms and service-linked role of target tracking). One ``Grant`` is one policy statement
(policies/deployer_policy.py writes them; the catalogue checks each action takes its resources).

Resources are this stack's exact ARNs, with three kinds of exception, each commented where it is
declared: actions that take no resource (``List*``/``Describe*`` of some services: ``"*"`` is the
only resource AWS accepts), content-addressed names (models, endpoint configs, artifacts: the
sweeper deletes the one a new one replaces, whose hash no plan knows) and names AWS assigns
(scalable targets, alarms). ``operations`` lists the wire calls (``service:Operation`` as the
request log records them) a grant covers; tests/runner/deploy/test_deployer_calls.py deploys and
destroys configurations on the emulator and fails on a recorded call that no grant declares.

Not declared (left): the training stage's launches (CreateTrainingJob, tuning, RunInstances and
their polling), KMS grants for a customer key on the endpoint config or the function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.stack.model import Stack

STORAGE = "runner/deploy/storage.py"
IAM_DRIVER = "runner/deploy/drivers/iam.py"
SM_DRIVER = "runner/deploy/drivers/sagemaker.py"
AAS_DRIVER = "runner/deploy/drivers/autoscaling.py"
LAMBDA_DRIVER = "runner/deploy/drivers/lambda_.py"
SWEEPER = "runner/deploy/sweeper.py"
PASS_ROLE = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html"
IAM_TAGS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_tags.html#id_tags_control-tagging"
SM_TAGS = "https://docs.aws.amazon.com/sagemaker/latest/dg/security_iam_id-based-policy-examples.html"
AAS_PERMS = ("https://docs.aws.amazon.com/autoscaling/application/userguide/"
             "security_iam_id-based-policy-examples.html#security-iam-id-based-policies-additional-permissions")
AAS_SLR = "https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-service-linked-roles.html"
LAMBDA_VPC = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html#configuration-vpc-permissions"
LAMBDA_QUALIFIED = ("https://docs.aws.amazon.com/lambda/latest/dg/"
                    "lambda-api-permissions-ref.html#permissions-resources-functions")
SAR = "https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html"

# The role Application Auto Scaling creates at the first registration of a SageMaker variant.
AAS_SAGEMAKER_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"
AAS_SAGEMAKER_SLR = f"aws-service-role/{AAS_SAGEMAKER_SERVICE}/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"


@dataclass(frozen=True)
class Grant:
    """One statement of the deployer's policy: actions on resources, and the calls that need them."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    operations: tuple[str, ...]  # "service:Operation" on the wire; () when AWS checks it on another call
    source: str
    why: str  # what it is for; for a wildcard, why no exact ARN can be given
    condition: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def _role_trust_service(stack: Stack, role_arn: str) -> str | None:
    for role in stack.find("AWS::IAM::Role"):
        if role_arn.endswith(f":role/{role.properties['RoleName']}"):
            principal = role.properties["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"]
            return principal if isinstance(principal, str) else principal[0]
    return None


def passed_roles(stack: Stack) -> dict[str, list[str]]:
    """Roles the deploy passes to a service (service principal -> role ARNs): CreateModel's
    ExecutionRoleArn, CreateNotebookInstance's RoleArn, CreateFunction's Role, and the role an
    instance profile carries (AddRoleToInstanceProfile lists iam:PassRole as a dependent action)."""
    passed: dict[str, list[str]] = {}
    keys = {"AWS::SageMaker::Model": "ExecutionRoleArn", "AWS::SageMaker::NotebookInstance": "RoleArn",
            "AWS::Lambda::Function": "Role"}
    for resource in stack.resources:
        arns: list[str] = []
        if resource.type in keys and isinstance(resource.properties.get(keys[resource.type]), str):
            arns = [resource.properties[keys[resource.type]]]
        elif resource.type == "AWS::IAM::InstanceProfile":
            arns = [f"arn:aws:iam::{stack.account}:role/{name}" for name in resource.properties.get("Roles", [])]
        for arn in arns:
            service = _role_trust_service(stack, arn)
            if service is not None and arn not in passed.setdefault(service, []):
                passed[service].append(arn)
    return passed


def _ops(service: str, *operations: str) -> tuple[str, ...]:
    return tuple(f"{service}:{o}" for o in operations)


def _storage(stack: Stack, delete_artifacts: bool) -> list[Grant]:
    names = stack.names
    bucket = f"arn:aws:s3:::{names.bucket}"
    grants = [
        Grant("StackBucket", ("s3:ListBucket", "s3:GetBucketTagging", "s3:CreateBucket", "s3:PutBucketTagging",
                              "s3:PutBucketPublicAccessBlock", "s3:PutEncryptionConfiguration"), (bucket,),
              # HeadBucket is authorised as s3:ListBucket (S3 API reference, HeadBucket "Permissions").
              _ops("s3", "HeadBucket", "GetBucketTagging", "CreateBucket", "PutBucketTagging",
                   "PutPublicAccessBlock", "PutBucketEncryption"),
              STORAGE, "the stack's private, encrypted, tagged bucket"),
    ]
    objects = [f"{bucket}/artifacts/model-*"]  # content-addressed: the trained artifact's hash is not in a plan
    for function in stack.find("AWS::Lambda::Function"):
        code = function.properties["Code"]
        objects.append(f"arn:aws:s3:::{code['S3Bucket']}/{code['S3Key']}")
    grants.append(Grant("StackArtifacts", ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"),
                        tuple(objects),
                        # HeadObject is s3:GetObject; a multipart upload's parts are s3:PutObject.
                        _ops("s3", "HeadObject", "GetObject", "PutObject", "CreateMultipartUpload", "UploadPart",
                             "CompleteMultipartUpload", "AbortMultipartUpload"),
                        STORAGE, "upload the model artifact and the function's code once (content-addressed keys: "
                        "artifacts/model-<sha256> is known only after training)"))
    if delete_artifacts:
        grants += [
            Grant("EmptyStackBucket", ("s3:ListBucketVersions", "s3:DeleteBucket"), (bucket,),
                  _ops("s3", "ListObjectVersions", "DeleteBucket"), SWEEPER,
                  "destroy.delete_artifacts=true: list every version, then delete the bucket"),
            Grant("EmptyStackBucketObjects", ("s3:DeleteObject", "s3:DeleteObjectVersion"), (f"{bucket}/*",),
                  # DeleteObjects is authorised per key (s3:DeleteObject, with a version s3:DeleteObjectVersion).
                  _ops("s3", "DeleteObjects"), SWEEPER,
                  "destroy.delete_artifacts=true empties the bucket: every object in it (data, code, artifacts)"),
        ]
    return grants


def _iam(stack: Stack) -> list[Grant]:
    account, prefix = stack.account, stack.name
    roles = tuple(f"arn:aws:iam::{account}:role/{r.properties['RoleName']}" for r in stack.find("AWS::IAM::Role"))
    grants = [
        Grant("ListRolesAndProfiles", ("iam:ListRoles", "iam:ListInstanceProfiles"), ("*",),
              _ops("iam", "ListRoles", "ListInstanceProfiles"), IAM_DRIVER,
              "the sweeper lists roles and instance profiles to find the stack's; List actions take no resource "
              "(\"*\" is the only one AWS accepts)"),
        Grant("ReadStackRoles", ("iam:GetRole", "iam:ListRoleTags", "iam:ListRolePolicies", "iam:GetRolePolicy",
                                 "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole"),
              (f"arn:aws:iam::{account}:role/{prefix}-*",),
              _ops("iam", "GetRole", "ListRoleTags", "ListRolePolicies", "GetRolePolicy",
                   "ListAttachedRolePolicies", "ListInstanceProfilesForRole"), IAM_DRIVER,
              "read the stack's roles; the sweeper reads every role named <stack>-* to find the ones tagged as "
              "this stack's (a role the config no longer declares has a name no plan knows)"),
    ]
    if roles:
        grants.append(Grant(
            "ManageStackRoles", ("iam:CreateRole", "iam:TagRole", "iam:UntagRole", "iam:PutRolePolicy",
                                 "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy",
                                 "iam:UpdateAssumeRolePolicy", "iam:UpdateRole", "iam:DeleteRole"), roles,
            # CreateRole with Tags is authorised for iam:TagRole as well (IAM_TAGS).
            _ops("iam", "CreateRole", "TagRole", "UntagRole", "PutRolePolicy", "DeleteRolePolicy", "AttachRolePolicy",
                 "DetachRolePolicy", "UpdateAssumeRolePolicy", "UpdateRole", "DeleteRole"), IAM_DRIVER,
            "create, update and delete the stack's roles"))
    profiles = tuple(f"arn:aws:iam::{account}:instance-profile/{p.properties['InstanceProfileName']}"
                     for p in stack.find("AWS::IAM::InstanceProfile"))
    if profiles:
        grants.append(Grant(
            "ManageStackInstanceProfiles", ("iam:GetInstanceProfile", "iam:CreateInstanceProfile",
                                            "iam:TagInstanceProfile", "iam:AddRoleToInstanceProfile",
                                            "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"),
            profiles, _ops("iam", "GetInstanceProfile", "CreateInstanceProfile", "TagInstanceProfile",
                           "AddRoleToInstanceProfile", "RemoveRoleFromInstanceProfile", "DeleteInstanceProfile"),
            IAM_DRIVER, "the EC2 training instance's profile"))
    for service, arns in sorted(passed_roles(stack).items()):
        label = service.split(".")[0].capitalize()
        grants.append(Grant(
            f"PassStackRolesTo{label.replace('Sagemaker', 'SageMaker')}", ("iam:PassRole",), tuple(arns), (),
            PASS_ROLE, f"hand the stack's roles to {service} (checked on the call that names the role)",
            {"StringEquals": {"iam:PassedToService": service}}))
    return grants


def _sagemaker(stack: Stack) -> list[Grant]:
    names = stack.names
    sm = f"arn:aws:sagemaker:{names.region}:{names.account}"
    low = stack.name.lower()  # SageMaker writes names in lower case in its ARNs
    endpoint = f"{sm}:endpoint/{names.endpoint_name.lower()}"
    configs = f"{sm}:endpoint-config/{low}-config-*"
    grants = [
        Grant("ListSageMakerModelsAndConfigs", ("sagemaker:ListModels", "sagemaker:ListEndpointConfigs"), ("*",),
              _ops("sagemaker", "ListModels", "ListEndpointConfigs"), SM_DRIVER,
              "the sweeper lists models and endpoint configs to find the stack's; List actions take no resource"),
        Grant("ReadStackEndpoint", ("sagemaker:DescribeEndpoint", "sagemaker:ListTags"), (endpoint,),
              _ops("sagemaker", "DescribeEndpoint", "ListTags"), SM_DRIVER,
              "the planner and the sweeper read the stack's endpoint (whether or not it declares one)"),
        Grant("ReadStackNotebook", ("sagemaker:DescribeNotebookInstance", "sagemaker:ListTags"),
              (f"{sm}:notebook-instance/{names.notebook_name.lower()}",),
              _ops("sagemaker", "DescribeNotebookInstance"), SM_DRIVER,
              "the sweeper looks for the stack's notebook (whether or not it declares one)"),
    ]
    if stack.find("AWS::SageMaker::Model"):
        grants.append(Grant(
            "ManageStackModels", ("sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:ListTags",
                                  "sagemaker:AddTags", "sagemaker:DeleteTags", "sagemaker:DeleteModel"),
            (f"{sm}:model/{low}-model-*",),
            # CreateModel with Tags is authorised for sagemaker:AddTags as well (SM_TAGS).
            _ops("sagemaker", "CreateModel", "DescribeModel", "ListTags", "AddTags", "DeleteTags", "DeleteModel"),
            SM_DRIVER, "models are content-addressed (<stack>-model-<hash>): the sweeper deletes the one a new "
            "model replaces, whose hash no plan knows"))
    if stack.find("AWS::SageMaker::EndpointConfig"):
        grants.append(Grant(
            "ManageStackEndpointConfigs", ("sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig",
                                           "sagemaker:ListTags", "sagemaker:AddTags", "sagemaker:DeleteTags",
                                           "sagemaker:DeleteEndpointConfig"), (configs,),
            _ops("sagemaker", "CreateEndpointConfig", "DescribeEndpointConfig", "ListTags", "AddTags", "DeleteTags",
                 "DeleteEndpointConfig"),
            SM_DRIVER, "endpoint configs are content-addressed (<stack>-config-<hash>), as models are"))
    if stack.find("AWS::SageMaker::Endpoint"):
        grants += [
            Grant("DeployStackEndpoint", ("sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"),
                  (endpoint, configs),
                  # Both take the endpoint and the endpoint config they point it at (SAR).
                  _ops("sagemaker", "CreateEndpoint", "UpdateEndpoint"), SM_DRIVER,
                  "create the endpoint on a config of this stack, or move it to a new one"),
            Grant("ManageStackEndpoint", ("sagemaker:AddTags", "sagemaker:DeleteTags", "sagemaker:DeleteEndpoint",
                                          "sagemaker:UpdateEndpointWeightsAndCapacities"), (endpoint,),
                  _ops("sagemaker", "AddTags", "DeleteTags", "DeleteEndpoint"), SM_DRIVER,
                  "tag and delete the endpoint; UpdateEndpointWeightsAndCapacities is what registering its "
                  f"autoscaling needs of the caller ({AAS_PERMS})"),
        ]
    if stack.find("AWS::SageMaker::NotebookInstance"):
        grants.append(Grant(
            "ManageStackNotebook", ("sagemaker:CreateNotebookInstance", "sagemaker:AddTags", "sagemaker:DeleteTags",
                                    "sagemaker:StopNotebookInstance", "sagemaker:DeleteNotebookInstance"),
            (f"{sm}:notebook-instance/{names.notebook_name.lower()}",),
            _ops("sagemaker", "CreateNotebookInstance", "AddTags", "DeleteTags", "StopNotebookInstance",
                 "DeleteNotebookInstance"), SM_DRIVER, "the stack's notebook"))
    return grants


def _autoscaling(stack: Stack) -> list[Grant]:
    names = stack.names
    grants = [Grant("ReadScaling", ("application-autoscaling:DescribeScalableTargets",
                                    "application-autoscaling:DescribeScalingPolicies"), ("*",),
                    _ops("application-autoscaling", "DescribeScalableTargets", "DescribeScalingPolicies"), AAS_DRIVER,
                    "read the endpoint's scaling (planner, sweeper); Describe actions take no resource")]
    targets = stack.find("AWS::ApplicationAutoScaling::ScalableTarget")
    if not targets:
        return grants
    dimension = targets[0].properties["ScalableDimension"]
    alarms = f"arn:aws:cloudwatch:{names.region}:{names.account}:alarm:TargetTracking-endpoint/{names.endpoint_name}/*"
    grants += [
        Grant("ManageEndpointScaling", ("application-autoscaling:RegisterScalableTarget",
                                        "application-autoscaling:PutScalingPolicy",
                                        "application-autoscaling:DeleteScalingPolicy",
                                        "application-autoscaling:DeregisterScalableTarget"),
              # A scalable target's ARN ends in an id AWS assigns at registration: no plan knows it. The
              # conditions bound it to SageMaker variants' instance counts.
              (f"arn:aws:application-autoscaling:{names.region}:{names.account}:scalable-target/*",),
              _ops("application-autoscaling", "RegisterScalableTarget", "PutScalingPolicy", "DeleteScalingPolicy",
                   "DeregisterScalableTarget"), AAS_DRIVER, "the endpoint variant's scaling",
              {"StringEquals": {"application-autoscaling:service-namespace": "sagemaker",
                                "application-autoscaling:scalable-dimension": dimension}}),
        Grant("TargetTrackingAlarms", ("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms",
                                       "cloudwatch:DeleteAlarms"), (alarms,), (), AAS_PERMS,
              "a target-tracking policy's alarms, made and deleted as the caller; AWS names them "
              "TargetTracking-<resource id>-Alarm<High|Low>-<uuid>"),
        Grant("ScalingServiceLinkedRole", ("iam:CreateServiceLinkedRole",),
              (f"arn:aws:iam::{names.account}:role/{AAS_SAGEMAKER_SLR}",), (), AAS_SLR,
              "the first registration of a SageMaker variant creates Application Auto Scaling's service-linked role",
              {"StringEquals": {"iam:AWSServiceName": AAS_SAGEMAKER_SERVICE}}),
    ]
    return grants


def _lambda(stack: Stack) -> list[Grant]:
    names = stack.names
    function = f"arn:aws:lambda:{names.region}:{names.account}:function:{names.function_name}"
    grants = [Grant("ReadStackFunction", ("lambda:GetFunction",), (function,), _ops("lambda", "GetFunction"),
                    LAMBDA_DRIVER, "the planner and the sweeper read the stack's function")]
    functions = stack.find("AWS::Lambda::Function")
    if not functions:
        return grants
    actions = ("lambda:CreateFunction", "lambda:GetFunctionConfiguration", "lambda:DeleteFunction",
               "lambda:PutFunctionConcurrency", "lambda:DeleteFunctionConcurrency", "lambda:UpdateFunctionCode",
               "lambda:UpdateFunctionConfiguration", "lambda:TagResource", "lambda:UntagResource",
               "lambda:ListVersionsByFunction", "lambda:PublishVersion", "lambda:CreateAlias", "lambda:GetAlias",
               "lambda:UpdateAlias", "lambda:DeleteAlias")
    grants.append(Grant(
        "ManageStackFunction", actions,
        # Calls on a version or an alias are authorised on the qualified ARN function:<name>:<qualifier>
        # (LAMBDA_QUALIFIED): the versions' numbers are Lambda's to assign.
        (function, f"{function}:*"),
        _ops("lambda", *(a.partition(":")[2] for a in actions)), LAMBDA_DRIVER,
        "the function, its versions and its alias"))
    if stack.find("AWS::Lambda::Alias"):
        grants.append(Grant(
            "StackFunctionProvisionedConcurrency", ("lambda:GetProvisionedConcurrencyConfig",
                                                    "lambda:PutProvisionedConcurrencyConfig",
                                                    "lambda:DeleteProvisionedConcurrencyConfig"),
            (f"{function}:*",),
            _ops("lambda", "GetProvisionedConcurrencyConfig", "PutProvisionedConcurrencyConfig",
                 "DeleteProvisionedConcurrencyConfig"), LAMBDA_DRIVER,
            "provisioned concurrency is set on the alias (these actions take only a qualified ARN)"))
    if functions[0].properties.get("VpcConfig"):
        grants.append(Grant(
            "FunctionVpcLookups", ("ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"), ("*",),
            (), LAMBDA_VPC, "Lambda checks the function's subnets and groups as the caller; Describe actions of "
            "EC2 take no resource"))
    return grants


def deployer_grants(stack: Stack, *, delete_artifacts: bool = False) -> list[Grant]:
    """Every grant the deployer needs to deploy, update and destroy ``stack``."""
    return [*_storage(stack, delete_artifacts), *_iam(stack), *_sagemaker(stack), *_autoscaling(stack),
            *_lambda(stack)]


def declared_operations(grants: list[Grant]) -> set[str]:
    return {operation for grant in grants for operation in grant.operations}
