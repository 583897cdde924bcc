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

The training stage's launches are declared too (``stage=train`` with a remote launcher: the job's
roles first, then runner/launchers/sagemaker.py or ec2.py): the inputs' uploads, the SageMaker
training or tuning job and its polling (its CloudWatch log when a console shows it), or the EC2
instance, its tags and its image, and the artifact's download; job names and instance ids carry a
run id or are AWS's to assign, so those ARNs end in a wildcard after the stack's name, or are
bounded by the stack's tag. A customer KMS key on the endpoint config or the EC2 training volume
adds what AWS checks on the caller for it. tests/runner/deploy/test_deployer_calls.py also launches
training on the emulator and compares its recorded calls.

Not declared (left): a customer key on the function (Lambda's documentation names no permission of
the caller) and on the notebook; StopTrainingJob (the launcher never stops a job: its
MaxRuntimeInSeconds does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.core.names import STACK_TAG
from runner.stack.ec2_image import SSM_PREFIX
from runner.stack.model import JobSpec, Stack

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
SM_LAUNCHER = "runner/launchers/sagemaker.py"
EC2_LAUNCHER = "runner/launchers/ec2.py"
EC2_REACHABILITY = "runner/launchers/ec2_reachability.py"
SM_TUNING_TAGS = "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateHyperParameterTuningJob.html#API_CreateHyperParameterTuningJob_RequestSyntax"
SM_OUTPUT_KMS = "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_OutputDataConfig.html"
SM_ENDPOINT_KMS = "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html#sagemaker-CreateEndpointConfig-request-KmsKeyId"
AWS_MANAGED_KEYS = "https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-key"
KMS_GRANTS = "https://docs.aws.amazon.com/kms/latest/developerguide/grants.html"
EBS_KMS = "https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html#ebs-encryption-permissions"
EC2_TAG_ON_CREATE = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html"
EC2_SSM_AMI = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/finding-an-ami-parameter-store.html"
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
    ExecutionRoleArn, CreateNotebookInstance's RoleArn, CreateFunction's Role, a training or tuning
    job's RoleArn, and the role an instance profile carries (RunInstances passes it too) (AddRoleToInstanceProfile lists iam:PassRole as a dependent action)."""
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
    for job in stack.jobs:  # CreateTrainingJob's RoleArn, CreateHyperParameterTuningJob's definition's
        arn = job.request.get("TrainingJobDefinition", job.request).get("RoleArn")
        service = _role_trust_service(stack, arn) if isinstance(arn, str) else None
        if service is not None and arn not in passed.setdefault(service, []):
            passed[service].append(arn)
    return passed


def _ops(service: str, *operations: str) -> tuple[str, ...]:
    return tuple(f"{service}:{o}" for o in operations)


def _storage(stack: Stack, delete_artifacts: bool) -> list[Grant]:
    names = stack.names
    bucket = f"arn:aws:s3:::{names.bucket}"
    grants = [
        Grant("StackBucket", ("s3:ListBucket", "s3:GetBucketTagging", "s3:CreateBucket", "s3:TagResource",
                              "s3:GetBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock",
                              "s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration"), (bucket,),
              # HeadBucket is authorised as s3:ListBucket (S3 API reference, HeadBucket "Permissions");
              # CreateBucket with CreateBucketConfiguration.Tags also needs s3:TagResource (API_CreateBucket).
              _ops("s3", "HeadBucket", "GetBucketTagging", "CreateBucket", "GetPublicAccessBlock",
                   "PutPublicAccessBlock", "GetBucketEncryption", "PutBucketEncryption"),
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


def _key_resources(stack: Stack, key_id: str) -> tuple[tuple[str, ...], dict[str, Any]]:
    """A customer key as IAM names it: key/<id>. An alias (or alias ARN) names no key: key/* bound to
    the keys that alias names (kms:ResourceAliases), as KMS authorises key actions on the key's ARN."""
    names = stack.names
    if key_id.startswith("arn:") and ":key/" in key_id:
        return (key_id,), {}
    alias = key_id.split(":", 5)[-1] if key_id.startswith("arn:") else key_id
    if alias.startswith("alias/"):
        return ((f"arn:aws:kms:{names.region}:{names.account}:key/*",),
                {"ForAnyValue:StringEquals": {"kms:ResourceAliases": alias}})
    return (f"arn:aws:kms:{names.region}:{names.account}:key/{key_id}",), {}


def _customer_key(key_id: str | None) -> bool:
    """A key the caller needs IAM permissions for: not an AWS managed key (alias/aws/<service>), whose key
    policy already allows every principal of the account to use it through that service (AWS_MANAGED_KEYS)."""
    return bool(key_id) and not str(key_id).split(":", 5)[-1].startswith("alias/aws/")


def _endpoint_keys(stack: Stack) -> list[Grant]:
    keys = sorted({c.properties["KmsKeyId"] for c in stack.find("AWS::SageMaker::EndpointConfig")
                   if _customer_key(c.properties.get("KmsKeyId"))})
    grants = []
    for i, key in enumerate(keys):
        resources, condition = _key_resources(stack, key)
        # "The KMS key policy must grant permission to the IAM role that you specify in your
        # CreateEndpoint, UpdateEndpoint requests" (SM_ENDPOINT_KMS): the caller. AWS names no action;
        # SageMaker gets the use of the key for the endpoint's volumes by a grant the caller creates
        # (KMS_GRANTS), bounded to grants for AWS resources.
        grants += [
            Grant(f"EndpointVolumeKeyGrant{i or ''}", ("kms:CreateGrant",), resources, (), SM_ENDPOINT_KMS,
                  "the endpoint config's customer key: SageMaker encrypts the endpoint's volumes with it under a "
                  "grant made as the caller of CreateEndpoint/UpdateEndpoint, only for an AWS resource",
                  {**condition, "Bool": {"kms:GrantIsForAWSResource": "true"}}),
            Grant(f"EndpointVolumeKeyDescribe{i or ''}", ("kms:DescribeKey",), resources, (), SM_ENDPOINT_KMS,
                  "the endpoint config's customer key, read before the grant", condition),
        ]
    return grants


def _training_inputs(stack: Stack, job: JobSpec) -> list[Grant]:
    """prepare_inputs (SM_LAUNCHER, used by both launchers) and the artifact's download."""
    names = stack.names
    bucket = f"arn:aws:s3:::{names.bucket}"
    data_objects = f"arn:aws:s3:::{names.data_bucket}/{names.data_prefix}/*"
    uploads_data = names.data_bucket == names.bucket  # local and built-in data sets go to the stack's bucket
    # The job or instance writes under artifacts/<job name>/ (a tuning job: artifacts/<tuning name>/);
    # both names end in the run's id, which no plan knows.
    run_prefix = (job.request["HyperParameterTuningJobName"].rsplit("-", 1)[0] if job.kind == "tuning_job"
                  else stack.name)
    return [
        Grant("TrainingCodeBundle", ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"),
              (f"{bucket}/code/sourcedir.tar.gz",),
              # HeadObject compares the bundle's sha256 first; GetObject is the code channel's download
              # when the emulator runs an isolated job here (on AWS SageMaker reads it as the job's role).
              _ops("s3", "HeadObject", "GetObject", "PutObject", "CreateMultipartUpload", "UploadPart",
                   "CompleteMultipartUpload", "AbortMultipartUpload"), SM_LAUNCHER,
              "upload the training source bundle where the job's request points"),
        Grant("TrainingDataListing", ("s3:ListBucket",), (f"arn:aws:s3:::{names.data_bucket}",),
              _ops("s3", "ListObjectsV2"), SM_LAUNCHER,
              "list the data set's prefix (what is there already; or what to download for an s3:// data set)",
              {"StringLike": {"s3:prefix": [f"{names.data_prefix}/*"]}}),
        Grant("TrainingDataObjects", ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload") if uploads_data
              else ("s3:GetObject",), (data_objects,),
              _ops("s3", "GetObject", "PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
                   "AbortMultipartUpload") if uploads_data else _ops("s3", "GetObject"), SM_LAUNCHER,
              "upload a local data set under the stack's data prefix (new or changed files only), or read an "
              "s3:// one for the local copy the launcher keeps"),
        Grant("TrainedArtifact", ("s3:GetObject",), (f"{bucket}/artifacts/{run_prefix}-*",),
              _ops("s3", "HeadObject", "GetObject"), SM_LAUNCHER,
              "wait for and download the artifact the job or instance wrote under artifacts/<job name>/, a "
              "name that ends in the run's id"),
    ]


def _sagemaker_training(stack: Stack, job: JobSpec) -> list[Grant]:
    names = stack.names
    sm = f"arn:aws:sagemaker:{names.region}:{names.account}"
    logs = f"arn:aws:logs:{names.region}:{names.account}:log-group:/aws/sagemaker/TrainingJobs"
    if job.kind == "tuning_job":
        # <stack[:19]>-<hash of the run id>: the run's name; its training jobs are named by SageMaker
        # <tuning job name>-<NNN>-<suffix> and carry the tuning job's tags (SM_TUNING_TAGS).
        prefix = job.request["HyperParameterTuningJobName"].rsplit("-", 1)[0].lower()
    else:
        prefix = stack.name.lower()  # <stack>-<run id>: the run id is the run's
    grants = [Grant(
        "RunStackTrainingJobs", ("sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:AddTags"),
        (f"{sm}:training-job/{prefix}-*",),
        # CreateTrainingJob with Tags is authorised for sagemaker:AddTags as well (SM_TAGS).
        _ops("sagemaker", "CreateTrainingJob", "DescribeTrainingJob"), SM_LAUNCHER,
        "send the stack's training job and poll it (a tuning job's: describe its best training job); job "
        "names end in the run's id")]
    if job.kind == "tuning_job":
        grants.append(Grant(
            "RunStackTuningJobs", ("sagemaker:CreateHyperParameterTuningJob",
                                   "sagemaker:DescribeHyperParameterTuningJob", "sagemaker:AddTags"),
            (f"{sm}:hyper-parameter-tuning-job/{prefix}-*",),
            _ops("sagemaker", "CreateHyperParameterTuningJob", "DescribeHyperParameterTuningJob"), SM_LAUNCHER,
            "send the stack's tuning job and poll it until its best training job is known; the name ends in a "
            "hash of the run's id"))
    grants += [
        Grant("ListTrainingJobLogStreams", ("logs:DescribeLogStreams",), (f"{logs}:*",),
              _ops("logs", "DescribeLogStreams"), SM_LAUNCHER,
              "find the job's log streams (with a console): log-group actions are authorised on the group's "
              "ARN with ':*'"),
        Grant("ReadTrainingJobLogs", ("logs:GetLogEvents",), (f"{logs}:log-stream:{prefix}-*",),
              _ops("logs", "GetLogEvents"), SM_LAUNCHER,
              "print the job's log (streams <job name>/algo-<n>-<time>: the job name ends in the run's id)"),
    ]
    # A customer key on the training volume or output (training.volume_kms_key_id): its key policy must
    # allow the job's role, which the gate checks (SM_OUTPUT_KMS); nothing more of the caller.
    return grants


def _ec2_training(stack: Stack, job: JobSpec) -> list[Grant]:
    names = stack.names
    request = job.request
    ec2 = f"arn:aws:ec2:{names.region}:{names.account}"
    tagged = {"StringEquals": {f"aws:ResourceTag/{STACK_TAG}": stack.name}}
    subnet = next((n["SubnetId"] for n in request.get("NetworkInterfaces", []) if n.get("SubnetId")), None)
    image = str(request["ImageId"])
    grants = [
        Grant("LaunchStackTrainingInstance", ("ec2:RunInstances",), (f"{ec2}:instance/*",),
              _ops("ec2", "RunInstances"), EC2_LAUNCHER,
              "the training instance: its id is EC2's to assign, so the grant is bounded by the stack's tag the "
              "request carries", {"StringEquals": {f"aws:RequestTag/{STACK_TAG}": stack.name}}),
        Grant("TrainingInstanceVolume", ("ec2:RunInstances",), (f"{ec2}:volume/*",), (), EC2_LAUNCHER,
              "the instance's root volume (an id EC2 assigns), only encrypted", {"Bool": {"ec2:Encrypted": "true"}}),
        Grant("TrainingInstanceNetwork", ("ec2:RunInstances",),
              (f"{ec2}:network-interface/*", f"{ec2}:security-group/*",
               f"{ec2}:subnet/{subnet}" if subnet else f"{ec2}:subnet/*"), (), EC2_LAUNCHER,
              "the instance's network interface (an id EC2 assigns) in the configured subnet (none configured: "
              "the default VPC's, EC2's choice) with the VPC's default security group (the request names none)"),
        Grant("TagTrainingInstanceOnLaunch", ("ec2:CreateTags",), (f"{ec2}:instance/*",), (), EC2_TAG_ON_CREATE,
              "RunInstances with TagSpecifications is authorised for ec2:CreateTags on the new instance",
              {"StringEquals": {"ec2:CreateAction": "RunInstances"}}),
        Grant("WatchStackTrainingInstance", ("ec2:GetConsoleOutput", "ec2:TerminateInstances"), (f"{ec2}:instance/*",),
              _ops("ec2", "GetConsoleOutput", "TerminateInstances"), EC2_LAUNCHER,
              "read the instance's console (its training log) and terminate it past its deadline; bounded by the "
              "stack's tag (the instance id is EC2's)", tagged),
        Grant("DescribeTrainingInstances", ("ec2:DescribeInstances",), ("*",), _ops("ec2", "DescribeInstances"),
              EC2_LAUNCHER, "poll the instance's state; Describe actions of EC2 take no resource"),
    ]
    if image.startswith(SSM_PREFIX):
        parameter = image[len(SSM_PREFIX):].lstrip("/")
        grants += [
            # resolve:ssm: EC2 reads the public parameter as the caller (EC2_SSM_AMI; ssm:GetParameters is a
            # dependent action of RunInstances). Public parameters' ARNs have no account: '*' matches it.
            Grant("ResolveTrainingImage", ("ssm:GetParameters",),
                  (f"arn:aws:ssm:{names.region}:*:parameter/{parameter}",), (), EC2_SSM_AMI,
                  "the Deep Learning AMI's public parameter that the request's ImageId names"),
            Grant("TrainingImage", ("ec2:RunInstances",), (f"arn:aws:ec2:{names.region}::image/*",), (), EC2_SSM_AMI,
                  "the AMI the parameter resolves to at launch (AWS's to publish), owned by Amazon",
                  {"StringEquals": {"ec2:Owner": "amazon"}}),
        ]
    else:
        grants.append(Grant("TrainingImage", ("ec2:RunInstances",), (f"arn:aws:ec2:{names.region}::image/{image}",),
                            (), EC2_LAUNCHER, "the image the request names"))
    if subnet:
        grants.append(Grant(
            "TrainingSubnetRoute", ("ec2:DescribeSubnets", "ec2:DescribeRouteTables", "ec2:DescribeVpcEndpoints",
                                    "ec2:DescribeNatGateways"), ("*",),
            _ops("ec2", "DescribeSubnets", "DescribeRouteTables", "DescribeVpcEndpoints", "DescribeNatGateways"),
            EC2_REACHABILITY, "check that the subnet reaches S3 before launching; Describe actions of EC2 take no "
            "resource"))
    keys = sorted({m["Ebs"]["KmsKeyId"] for m in request.get("BlockDeviceMappings", [])
                   if _customer_key(m.get("Ebs", {}).get("KmsKeyId"))})
    for i, key in enumerate(keys):
        resources, condition = _key_resources(stack, key)
        via = {"StringEquals": {"kms:ViaService": f"ec2.{names.region}.amazonaws.com"}}
        # The EBS guide's permissions for users of a customer key (EBS_KMS), CreateGrant only for AWS resources.
        grants += [
            Grant(f"TrainingVolumeKeyGrant{i or ''}", ("kms:CreateGrant",), resources, (), EBS_KMS,
                  "EC2 uses the key for the training instance's root volume under a grant made as the caller",
                  {**condition, "Bool": {"kms:GrantIsForAWSResource": "true"}}),
            Grant(f"TrainingVolumeKeyUse{i or ''}", ("kms:Decrypt", "kms:DescribeKey",
                                                     "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom",
                                                     "kms:ReEncryptTo"), resources, (), EBS_KMS,
                  "what EBS encryption with a customer key needs of the caller (ReEncrypt: both halves), through EC2",
                  {**condition, **via}),
        ]
    return grants


def _training(stack: Stack) -> list[Grant]:
    """The training stage's launch (training.launcher=sagemaker or ec2; local makes no AWS call)."""
    grants: list[Grant] = []
    for job in stack.jobs:
        if job.kind in ("training_job", "tuning_job"):
            grants += [*_training_inputs(stack, job), *_sagemaker_training(stack, job)]
        elif job.kind == "ec2_run":
            grants += [*_training_inputs(stack, job), *_ec2_training(stack, job)]
    return grants


def deployer_grants(stack: Stack, *, delete_artifacts: bool = False) -> list[Grant]:
    """Every grant the deployer needs to train (a remote launcher), deploy, update and destroy ``stack``."""
    return [*_storage(stack, delete_artifacts), *_iam(stack), *_sagemaker(stack), *_endpoint_keys(stack),
            *_autoscaling(stack), *_lambda(stack), *_training(stack)]


def declared_operations(grants: list[Grant]) -> set[str]:
    return {operation for grant in grants for operation in grant.operations}
