"""What each part of the stack calls at run time, as whom, on which resources: its needs, declared once.

AWS does not check at create time that a role can do what its service will do with it later (bar
a few checks, runner/core/aws_rules.py): a model whose role cannot read its artifact is created,
and the endpoint fails to start twenty minutes later. So every part states the calls its service
makes with the part's role, with a representative resource ARN and the request context those
calls carry, and the source page that says so. The gate (policies/rules/iam/role_needs.py,
unused_permissions.py) checks each role against the needs of the parts it serves: a need the role
does not grant fails, and a permission no need of those parts uses is reported as unused.
"""

from __future__ import annotations

from runner.stack.model import Need
from runner.stack.parts import PARTS, StackParts

SAGEMAKER_ROLES = "https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html"
TRAINING_PERMS = f"{SAGEMAKER_ROLES}#sagemaker-roles-createtrainingjob-perms"
MODEL_PERMS = f"{SAGEMAKER_ROLES}#sagemaker-roles-createmodel-perms"
NOTEBOOK_PERMS = f"{SAGEMAKER_ROLES}#sagemaker-roles-createnotebookinstance-perms"
LAMBDA_ROLE = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html"
LAMBDA_XRAY = "https://docs.aws.amazon.com/lambda/latest/dg/services-xray.html#services-xray-permissions"
LAMBDA_VPC = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html#configuration-vpc-permissions"
LAMBDA_KMS = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html"
# "If you use a KMS key ID or an alias of your KMS key, the SageMaker execution role must include
# permissions to call kms:Encrypt."
TRAINING_KMS = "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_OutputDataConfig.html"
INVOKE_ENDPOINT = "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html"
EC2_USER_DATA = "runner/stack/ec2_user_data.py (the calls the instance's script makes)"


def _arn(parts: StackParts, reference: str) -> str:
    """One concrete ARN under a scope reference (``data`` -> an object of the data set)."""
    names = parts.names
    objects = {"data": f"arn:aws:s3:::{names.data_bucket}/{names.data_prefix}/train/0/image.png",
               "code": f"arn:aws:s3:::{names.bucket}/code/sourcedir.tar.gz",
               "artifacts": f"arn:aws:s3:::{names.bucket}/artifacts/model.tar.gz",
               "checkpoints": f"arn:aws:s3:::{names.bucket}/checkpoints/job/checkpoint.pt"}
    return objects[reference]


def _log_group(parts: StackParts, group: str) -> str:
    return f"arn:aws:logs:{parts.region}:{parts.names.account}:log-group:{group}:*"


def _logs(parts: StackParts, part: str, group: str, source: str, describe: bool = False) -> list[Need]:
    actions = ["CreateLogGroup", "CreateLogStream", "PutLogEvents"] + (["DescribeLogStreams"] if describe else [])
    return [Need(part, f"logs in {group}", f"logs:{a}", _log_group(parts, group), source) for a in actions]


def _image_pull(parts: StackParts, part: str, image: str, source: str) -> list[Need]:
    registry, _, path = image.partition("/")
    account, region = registry.split(".")[0], registry.split(".")[3]
    repository = f"arn:aws:ecr:{region}:{account}:repository/{path.split(':')[0]}"
    return [Need(part, "pull the container image", "ecr:GetAuthorizationToken", "*", source),
            *[Need(part, "pull the container image", f"ecr:{a}", repository, source)
              for a in ("BatchGetImage", "GetDownloadUrlForLayer", "BatchCheckLayerAvailability")]]


def _metrics(part: str, namespace: str, source: str) -> Need:
    return Need(part, f"metrics in {namespace}", "cloudwatch:PutMetricData", "*", source,
                {"cloudwatch:namespace": namespace})


def _training(parts: StackParts) -> list[Need]:
    bucket = f"arn:aws:s3:::{parts.names.data_bucket}"
    needs = [
        Need("training", "read the training channel", "s3:ListBucket", bucket, TRAINING_PERMS),
        Need("training", "read the training channel", "s3:GetObject", _arn(parts, "data"), TRAINING_PERMS),
        Need("training", "read the source bundle", "s3:GetObject", _arn(parts, "code"), TRAINING_PERMS),
        Need("training", "write the model artifact", "s3:PutObject", _arn(parts, "artifacts"), TRAINING_PERMS),
        Need("training", "save checkpoints", "s3:PutObject", _arn(parts, "checkpoints"), TRAINING_PERMS),
        Need("training", "resume from checkpoints", "s3:GetObject", _arn(parts, "checkpoints"), TRAINING_PERMS),
        Need("training", "resume from checkpoints", "s3:ListBucket", f"arn:aws:s3:::{parts.names.bucket}",
             TRAINING_PERMS),
        *_logs(parts, "training", "/aws/sagemaker/TrainingJobs", TRAINING_PERMS, describe=True),
        _metrics("training", "/aws/sagemaker/TrainingJobs", TRAINING_PERMS),
        *_image_pull(parts, "training", parts.training_image, TRAINING_PERMS),
    ]
    key = parts.settings.training.volume_kms_key_id
    # The stack encrypts the job's output with the volume's key (runner/stack/jobs.py). An AWS
    # managed key (alias/aws/...) is used through the service under its own key policy, which
    # allows every principal of the account: no identity permission is needed for it.
    if key and "alias/aws/" not in key:
        needs.append(Need("training", "encrypt the model artifact with training.volume_kms_key_id", "kms:Encrypt",
                          parts.names.kms_key_arn(key), TRAINING_KMS))
    return needs


def _endpoint(parts: StackParts) -> list[Need]:
    group = f"/aws/sagemaker/Endpoints/{parts.names.endpoint_name}"
    needs = [Need("endpoint", "read the model artifact", "s3:GetObject", _arn(parts, "artifacts"), MODEL_PERMS),
             *_logs(parts, "endpoint", group, MODEL_PERMS, describe=True),
             _metrics("endpoint", "/aws/sagemaker/Endpoints", MODEL_PERMS)]
    for image in dict.fromkeys(parts.hosting_images.values()):
        needs += _image_pull(parts, "endpoint", image, MODEL_PERMS)
    return needs


def _function(parts: StackParts) -> list[Need]:
    f = parts.settings.function
    endpoint = parts.names.arn("endpoint")[0]
    needs = [Need("function", "invoke the endpoint", "sagemaker:InvokeEndpoint", endpoint, INVOKE_ENDPOINT),
             *_logs(parts, "function", f"/aws/lambda/{parts.names.function_name}", LAMBDA_ROLE),
             *[Need("function", "X-Ray tracing (TracingConfig Active)", a, "*", LAMBDA_XRAY)
               for a in ("xray:PutTraceSegments", "xray:PutTelemetryRecords")]]
    if f.subnet_ids:
        needs += [Need("function", "run in the VPC", a, "*", LAMBDA_VPC) for a in
                  ("ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface")]
    if f.kms_key_arn:
        needs.append(Need("function", "decrypt its environment", "kms:Decrypt", parts.names.kms_key_arn(f.kms_key_arn),
                          LAMBDA_KMS))
    return needs


def _ec2_training(parts: StackParts) -> list[Need]:
    bucket = f"arn:aws:s3:::{parts.names.data_bucket}"
    return [Need("ec2_training", "fetch the source bundle", "s3:GetObject", _arn(parts, "code"), EC2_USER_DATA),
            Need("ec2_training", "sync the data set", "s3:ListBucket", bucket, EC2_USER_DATA),
            Need("ec2_training", "sync the data set", "s3:GetObject", _arn(parts, "data"), EC2_USER_DATA),
            Need("ec2_training", "upload the model artifact", "s3:PutObject", _arn(parts, "artifacts"), EC2_USER_DATA),
            Need("ec2_training", "save checkpoints", "s3:PutObject", _arn(parts, "checkpoints"), EC2_USER_DATA),
            Need("ec2_training", "resume from checkpoints", "s3:GetObject", _arn(parts, "checkpoints"), EC2_USER_DATA)]


def _notebook(parts: StackParts) -> list[Need]:
    names = parts.names
    job = f"arn:aws:sagemaker:{parts.region}:{names.account}:training-job/{names.stack}-notebook-job"
    execution = names.role_arn(parts.role_key_for("training")) if any(
        "training" in r.used_by for r in parts.settings.iam.roles.values()) else ""
    needs = [*_logs(parts, "notebook", "/aws/sagemaker/NotebookInstances", NOTEBOOK_PERMS, describe=True),
             *[Need("notebook", "run training jobs from the notebook", f"sagemaker:{a}", job, NOTEBOOK_PERMS)
               for a in ("CreateTrainingJob", "DescribeTrainingJob", "StopTrainingJob")],
             Need("notebook", "read the data set", "s3:ListBucket", f"arn:aws:s3:::{names.data_bucket}", NOTEBOOK_PERMS),
             Need("notebook", "read the data set", "s3:GetObject", _arn(parts, "data"), NOTEBOOK_PERMS),
             Need("notebook", "read model artifacts", "s3:GetObject", _arn(parts, "artifacts"), NOTEBOOK_PERMS),
             Need("notebook", "read model artifacts", "s3:ListBucket", f"arn:aws:s3:::{names.bucket}", NOTEBOOK_PERMS),
             Need("notebook", "save notebooks and results to the stack's bucket", "s3:PutObject",
                  f"arn:aws:s3:::{names.bucket}/notebooks/analysis.ipynb", NOTEBOOK_PERMS)]
    if execution:
        needs.append(Need("notebook", "pass the execution role to its training jobs", "iam:PassRole", execution,
                          NOTEBOOK_PERMS, {"iam:PassedToService": "sagemaker.amazonaws.com"}))
    return needs


_BY_PART = {"training": _training, "endpoint": _endpoint, "function": _function, "ec2_training": _ec2_training,
            "notebook": _notebook}
assert set(_BY_PART) == set(PARTS)


def build_needs(parts: StackParts) -> list[Need]:
    """The needs of every part a declared role serves (active or not: a role is judged by its parts)."""
    served = {part for role in parts.settings.iam.roles.values() for part in role.used_by}
    return [need for part in PARTS if part in served for need in _BY_PART[part](parts)]
