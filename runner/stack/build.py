"""The stack: the desired resources and the exact job requests of one configuration.

One model, three uses: ``Stack.template()`` renders the CloudFormation template that checkov
scans, the policy rules read the same resources and job requests, and the applier turns each
resource into boto3 calls. Every value is resolved here (names, ARNs, image URIs), so what is
checked is exactly what is sent.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from runner.core.names import LOCAL_ACCOUNT, STACK_TAG, ResourceNames
from runner.core.settings import Settings
from runner.stack import iam_policies as iam
from runner.stack.function_package import HANDLER, build_function_package
from runner.stack.model import JobSpec, Resource, Stack, content_hash

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
METRIC_DEFINITIONS = [
    {"Name": "Train Loss", "Regex": r"Train Loss: ([0-9\.]+)"},
    {"Name": "Validation Loss", "Regex": r"Validation Loss: ([0-9\.]+)"},
    {"Name": "Validation Accuracy", "Regex": r"Validation Accuracy: ([0-9\.]+)"},
    {"Name": "Test Loss", "Regex": r"Testing Loss: ([0-9\.]+)"},
    {"Name": "Test Accuracy", "Regex": r"Testing Accuracy: ([0-9\.]+)"},
]


@lru_cache(maxsize=32)
def image_uri(framework_version: str, py_version: str, region: str, instance_type: str, scope: str) -> str:
    """The PyTorch Deep Learning Container URI, from sagemaker-core's offline image database."""
    from sagemaker.core import image_uris  # ≈80 ms; only when a stack is built

    return image_uris.retrieve(
        "pytorch", region=region, version=framework_version, py_version=py_version,
        instance_type=instance_type, image_scope=scope,
    )


def _tags(settings: Settings) -> list[dict[str, str]]:
    tags = {**settings.tags, STACK_TAG: settings.name}
    return [{"Key": key, "Value": str(value)} for key, value in sorted(tags.items())]


def active_parts(settings: Settings) -> set[str]:
    parts = {"endpoint", "function"}
    if settings.training.launcher in ("sagemaker",):
        parts.add("training")
    if settings.training.launcher == "ec2":
        parts.add("ec2_training")
    if settings.notebook.enabled:
        parts.add("notebook")
    return parts


def _camel(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_"))


def build_stack(settings: Settings, account: str = LOCAL_ACCOUNT, model_data_url: str | None = None,
                run_id: str = "plan") -> Stack:
    """The desired state of one configuration.

    ``model_data_url`` is the trained artifact's S3 URI; before training it is where the deploy
    stage will upload it. ``run_id`` names this run's jobs (job names are unique in an account).
    """
    names = ResourceNames.for_settings(settings, account)
    region = settings.target.region
    tags = _tags(settings)
    e, a, f, t = settings.endpoint, settings.autoscaling, settings.function, settings.training
    model_data_url = model_data_url or names.s3_uri("artifacts/model.tar.gz")
    parts = active_parts(settings)

    hosting_image = image_uri(e.framework_version, e.py_version, region, e.instance_type, "inference")
    training_image = image_uri(t.framework_version, t.py_version, region,
                               t.instance_type if t.instance_type.startswith("ml.") else "ml." + t.instance_type,
                               "training")
    dlc_repositories = tuple(sorted({uri.split("/", 1)[1].split(":")[0] for uri in (hosting_image, training_image)}))

    resources: list[Resource] = []
    role_ids: dict[str, str] = {}
    for role_key, role in settings.iam.roles.items():
        if not parts.intersection(role.used_by):
            continue
        logical_id = f"Role{_camel(role_key)}"
        role_ids[role_key] = logical_id
        props: dict[str, Any] = {
            "RoleName": names.role_name(role_key),
            "Description": f"sagegate {settings.name}: {role_key} (used by {', '.join(role.used_by)})",
            "AssumeRolePolicyDocument": iam.trust_policy(role.trust),
            "Policies": [{"PolicyName": f"{role_key}-scopes",
                          "PolicyDocument": iam.role_policy(role_key, role, names, dlc_repositories)}],
            "MaxSessionDuration": 3600,
            "Tags": tags,
        }
        if role.managed_policy_arns:
            props["ManagedPolicyArns"] = list(role.managed_policy_arns)
        resources.append(Resource(logical_id, "AWS::IAM::Role", props, config_key=f"iam.roles.{role_key}"))

    def role_arn_for(part: str) -> tuple[str, str]:
        for role_key, role in settings.iam.roles.items():
            if part in role.used_by and role_key in role_ids:
                return names.role_arn(role_key), role_ids[role_key]
        raise ValueError(f"iam.roles: no role is declared with used_by: [{part}]")

    sm_role_arn, sm_role_id = role_arn_for("endpoint")
    container = {
        "Image": hosting_image,
        "ModelDataUrl": model_data_url,
        "Environment": {
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            "SAGEMAKER_REGION": region,
            # handlers/inference.py reads these (see its docstring).
            "SAGEGATE_TOP_K": str(e.top_k),
        },
    }
    model_name = f"{settings.name}-model-{content_hash([container, sm_role_arn])}"
    resources.append(Resource("Model", "AWS::SageMaker::Model", {
        "ModelName": model_name,
        "ExecutionRoleArn": sm_role_arn,
        "PrimaryContainer": container,
        # The artifact carries its inference code, so the container needs no network.
        "EnableNetworkIsolation": True,
        "Tags": tags,
    }, depends_on=[sm_role_id], config_key="endpoint"))

    variant: dict[str, Any] = {"VariantName": e.variant_name, "ModelName": model_name, "InitialVariantWeight": 1.0}
    if e.kind == "serverless":
        variant["ServerlessConfig"] = {"MemorySizeInMB": e.serverless_memory_mb,
                                       "MaxConcurrency": e.serverless_max_concurrency}
    else:
        variant["InstanceType"] = e.instance_type
        variant["InitialInstanceCount"] = e.initial_instance_count
    config_props: dict[str, Any] = {"ProductionVariants": [variant]}
    if e.kms_key_id and e.kind != "serverless":
        config_props["KmsKeyId"] = e.kms_key_id
    if e.data_capture:
        config_props["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": e.data_capture_percentage,
            "DestinationS3Uri": names.s3_uri("artifacts/data-capture"),
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        }
    # Endpoint configs are immutable: the name carries a hash of the content.
    config_name = f"{settings.name}-config-{content_hash(config_props)}"
    resources.append(Resource("EndpointConfig", "AWS::SageMaker::EndpointConfig",
                              {"EndpointConfigName": config_name, **config_props, "Tags": tags},
                              depends_on=["Model"], config_key="endpoint"))
    resources.append(Resource("Endpoint", "AWS::SageMaker::Endpoint", {
        "EndpointName": names.endpoint_name,
        "EndpointConfigName": config_name,
        "Tags": tags,
    }, depends_on=["EndpointConfig"], config_key="endpoint"))

    if a.enabled and e.kind != "serverless":
        resource_id = f"endpoint/{names.endpoint_name}/variant/{e.variant_name}"
        resources.append(Resource("ScalableTarget", "AWS::ApplicationAutoScaling::ScalableTarget", {
            "ServiceNamespace": "sagemaker",
            "ResourceId": resource_id,
            "ScalableDimension": SCALABLE_DIMENSION,
            "MinCapacity": a.min_capacity,
            "MaxCapacity": a.max_capacity,
        }, depends_on=["Endpoint"], config_key="autoscaling"))
        resources.append(Resource("ScalingPolicy", "AWS::ApplicationAutoScaling::ScalingPolicy", {
            "PolicyName": f"{settings.name}-invocations-target",
            "PolicyType": "TargetTrackingScaling",
            "ServiceNamespace": "sagemaker",
            "ResourceId": resource_id,
            "ScalableDimension": SCALABLE_DIMENSION,
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": a.target_value,
                "PredefinedMetricSpecification": {"PredefinedMetricType": a.metric},
                "ScaleInCooldown": a.scale_in_cooldown,
                "ScaleOutCooldown": a.scale_out_cooldown,
            },
        }, depends_on=["ScalableTarget"], config_key="autoscaling"))

    package = build_function_package()
    fn_role_arn, fn_role_id = role_arn_for("function")
    function_props: dict[str, Any] = {
        "FunctionName": names.function_name,
        "Description": f"sagegate {settings.name}: invokes {names.endpoint_name}",
        "Runtime": f.runtime,
        "Architectures": [f.architecture],
        "Handler": HANDLER,
        "Role": fn_role_arn,
        "Code": {"S3Bucket": names.bucket, "S3Key": f"code/function-{package.sha256_hex[:16]}.zip"},
        "MemorySize": f.memory_size,
        "Timeout": f.timeout,
        "ReservedConcurrentExecutions": f.reserved_concurrency,
        "Environment": {"Variables": {
            "ENDPOINT_NAME": names.endpoint_name,
            "TOP_K": str(e.top_k),
            "CONNECT_TIMEOUT_S": str(f.connect_timeout),
            "READ_TIMEOUT_S": str(f.read_timeout),
        }},
        "TracingConfig": {"Mode": "Active"},
        "Tags": tags,
    }
    if f.kms_key_arn:
        function_props["KmsKeyArn"] = f.kms_key_arn
    resources.append(Resource("InvokeFunction", "AWS::Lambda::Function", function_props,
                              depends_on=[fn_role_id], config_key="function"))
    resources.append(Resource("InvokeFunctionVersion", "AWS::Lambda::Version", {
        "FunctionName": names.function_name,
        # The version is published from this exact code and configuration.
        # Tags are not part of a version: a tag-only change publishes nothing on AWS.
        "Description": f"code {package.sha256_hex[:16]} config "
                       f"{content_hash({k: v for k, v in function_props.items() if k != 'Tags'})}",
    }, depends_on=["InvokeFunction"], config_key="function"))
    alias_props: dict[str, Any] = {
        "FunctionName": names.function_name,
        "Name": f.alias,
        "FunctionVersion": {"Fn::GetAtt": ["InvokeFunctionVersion", "Version"]},
    }
    if f.provisioned_concurrency > 0:
        alias_props["ProvisionedConcurrencyConfig"] = {"ProvisionedConcurrentExecutions": f.provisioned_concurrency}
    resources.append(Resource("InvokeFunctionAlias", "AWS::Lambda::Alias", alias_props,
                              depends_on=["InvokeFunctionVersion"], config_key="function"))

    if settings.notebook.enabled:
        n = settings.notebook
        nb_role_arn, nb_role_id = role_arn_for("notebook")
        nb_props: dict[str, Any] = {
            "NotebookInstanceName": names.notebook_name,
            "InstanceType": n.instance_type,
            "RoleArn": nb_role_arn,
            "VolumeSizeInGB": n.volume_size_gb,
            "DirectInternetAccess": n.direct_internet_access,
            "RootAccess": n.root_access,
            "InstanceMetadataServiceConfiguration": {"MinimumInstanceMetadataServiceVersion": "2"},
            "Tags": tags,
        }
        if n.kms_key_id:
            nb_props["KmsKeyId"] = n.kms_key_id
        resources.append(Resource("NotebookInstance", "AWS::SageMaker::NotebookInstance", nb_props,
                                  depends_on=[nb_role_id], config_key="notebook"))

    if "ec2_training" in parts:
        ec2_role_key = next(k for k, r in settings.iam.roles.items() if "ec2_training" in r.used_by)
        resources.append(Resource("InstanceProfileEc2Training", "AWS::IAM::InstanceProfile", {
            "InstanceProfileName": names.role_name(ec2_role_key),
            "Roles": [names.role_name(ec2_role_key)],
        }, depends_on=[role_ids[ec2_role_key]], config_key=f"iam.roles.{ec2_role_key}"))

    jobs = _jobs(settings, names, run_id, training_image, tags)
    return Stack(settings.name, account, region, names, resources, jobs, model_data_url)


def hyperparameters(settings: Settings) -> dict[str, str]:
    """What the training entry receives as ``--name value`` arguments (strings, as SageMaker sends)."""
    t, m, d = settings.training, settings.model, settings.data
    values: dict[str, Any] = {
        "epochs": t.epochs,
        "batch_size": t.batch_size,
        "learning_rate": t.learning_rate,
        "weight_decay": t.weight_decay,
        "patience": t.patience,
        "seed": t.seed,
        "arch": m.arch,
        "head_hidden": m.head_hidden,
        "freeze_backbone": m.freeze_backbone,
        "image_size": d.image_size,
        "on_bad_image": d.on_bad_image,
    }
    if m.weights:
        values["weights"] = m.weights
    return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in values.items()}


def _jobs(settings: Settings, names: ResourceNames, run_id: str, training_image: str,
          tags: list[dict[str, str]]) -> list[JobSpec]:
    t, h = settings.training, settings.hpo
    hps = hyperparameters(settings)
    if t.launcher == "local":
        return [JobSpec("Training", "local_training", None, {
            "HyperParameters": hps, "DataSource": settings.data.source, "InstanceCount": t.instance_count,
        })]

    source_uri = names.s3_uri("code/sourcedir.tar.gz")
    if t.launcher == "ec2":
        return [_ec2_run(settings, names, run_id, source_uri, hps)]

    role_arn = next(names.role_arn(k) for k, r in settings.iam.roles.items() if "training" in r.used_by)
    job_name = f"{settings.name}-{run_id}"[:63]
    script_mode = {
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": source_uri,
        "sagemaker_region": settings.target.region,
        "sagemaker_container_log_level": "20",
    }
    if t.instance_count > 1:
        script_mode["sagemaker_torch_distributed_enabled"] = "true"
    definition: dict[str, Any] = {
        "AlgorithmSpecification": {
            "TrainingImage": training_image,
            "TrainingInputMode": "File",
            "MetricDefinitions": METRIC_DEFINITIONS,
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "RoleArn": role_arn,
        "InputDataConfig": [{
            "ChannelName": "training",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": names.data_uri,
                                            "S3DataDistributionType": "FullyReplicated"}},
        }],
        "OutputDataConfig": {"S3OutputPath": names.s3_uri("artifacts/")},
        "ResourceConfig": {"InstanceType": t.instance_type, "InstanceCount": t.instance_count,
                           "VolumeSizeInGB": t.volume_size_gb},
        "StoppingCondition": {"MaxRuntimeInSeconds": t.max_runtime},
        "EnableNetworkIsolation": t.network_isolation,
        "EnableInterContainerTrafficEncryption": t.inter_container_encryption,
        "EnableManagedSpotTraining": t.use_spot,
    }
    if t.volume_kms_key_id:
        definition["ResourceConfig"]["VolumeKmsKeyId"] = t.volume_kms_key_id
        definition["OutputDataConfig"]["KmsKeyId"] = t.volume_kms_key_id
    if t.use_spot and t.max_wait:
        definition["StoppingCondition"]["MaxWaitTimeInSeconds"] = t.max_wait
    if t.checkpointing:
        definition["CheckpointConfig"] = {"S3Uri": names.s3_uri(f"checkpoints/{job_name}"),
                                          "LocalPath": CHECKPOINT_LOCAL_PATH}

    if not h.enabled:
        request = {"TrainingJobName": job_name, **definition,
                   "HyperParameters": {**hps, **script_mode}, "Tags": tags}
        return [JobSpec("TrainingJob", "training_job", "sagemaker:CreateTrainingJob", request)]

    static = {k: v for k, v in {**hps, **script_mode}.items() if k not in ("learning_rate", "batch_size")}
    tuning_name = f"{settings.name[:19]}-{content_hash(run_id, 12)}"  # AWS caps this name at 32
    request = {
        "HyperParameterTuningJobName": tuning_name,
        "HyperParameterTuningJobConfig": {
            "Strategy": h.strategy,
            "HyperParameterTuningJobObjective": {"Type": h.objective_type, "MetricName": h.objective_metric},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": h.max_jobs,
                               "MaxParallelTrainingJobs": h.max_parallel_jobs},
            "ParameterRanges": {
                "ContinuousParameterRanges": [{
                    "Name": "learning_rate", "MinValue": str(h.learning_rate.min),
                    "MaxValue": str(h.learning_rate.max), "ScalingType": h.learning_rate.scaling,
                }],
                "CategoricalParameterRanges": [{"Name": "batch_size", "Values": [str(b) for b in h.batch_size]}],
                "IntegerParameterRanges": [],
            },
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": {
            **definition,
            "AlgorithmSpecification": {
                # The tuning API's AlgorithmSpecification has no EnableSageMakerMetricsTimeSeries.
                **{k: v for k, v in definition["AlgorithmSpecification"].items()
                   if k != "EnableSageMakerMetricsTimeSeries"},
                "MetricDefinitions": [m for m in METRIC_DEFINITIONS if m["Name"] != h.objective_metric]
                + [{"Name": h.objective_metric, "Regex": h.objective_regex}],
            },
            "StaticHyperParameters": static,
        },
        "Tags": tags,
    }
    return [JobSpec("TuningJob", "tuning_job", "sagemaker:CreateHyperParameterTuningJob", request,
                    config_key="hpo")]


def _ec2_run(settings: Settings, names: ResourceNames, run_id: str, source_uri: str,
             hps: dict[str, str]) -> JobSpec:
    t = settings.training
    role_key = next(k for k, r in settings.iam.roles.items() if "ec2_training" in r.used_by)
    args = " ".join(f"--{k} {v}" for k, v in sorted(hps.items()))
    output_uri = names.s3_uri(f"artifacts/{settings.name}-{run_id}/model.tar.gz")
    minutes = max(1, t.max_runtime // 60)
    # The instance trains, uploads, and terminates itself; the hard limit stops a stuck run.
    user_data = "\n".join([
        "#!/bin/bash",
        "set -euxo pipefail",
        f"shutdown -h +{minutes}",
        "trap 'shutdown -h now' EXIT",
        "mkdir -p /opt/sagegate/code /opt/sagegate/data /opt/sagegate/model /opt/sagegate/output",
        f"aws s3 cp {source_uri} /opt/sagegate/sourcedir.tar.gz",
        "tar -xzf /opt/sagegate/sourcedir.tar.gz -C /opt/sagegate/code",
        f"aws s3 sync {names.data_uri} /opt/sagegate/data --only-show-errors",
        "cd /opt/sagegate/code",
        f"python3 train.py {args} --data_dir /opt/sagegate/data --model_dir /opt/sagegate/model "
        "--output_dir /opt/sagegate/output --checkpoint_dir /opt/sagegate/checkpoints",
        f"aws s3 cp /opt/sagegate/model/model.tar.gz {output_uri}",
    ]) + "\n"
    network: dict[str, Any] = {"DeviceIndex": 0, "AssociatePublicIpAddress": False}
    if t.ec2_subnet_id:
        network["SubnetId"] = t.ec2_subnet_id
    request = {
        "ImageId": t.ec2_image_id,
        "InstanceType": t.instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "IamInstanceProfile": {"Name": names.role_name(role_key)},
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1},
        "BlockDeviceMappings": [{
            "DeviceName": "/dev/xvda",
            "Ebs": {"VolumeSize": t.volume_size_gb, "VolumeType": "gp3", "Encrypted": True,
                    "DeleteOnTermination": True,
                    **({"KmsKeyId": t.volume_kms_key_id} if t.volume_kms_key_id else {})},
        }],
        "NetworkInterfaces": [network],
        "InstanceInitiatedShutdownBehavior": "terminate",
        "UserData": user_data,
        "TagSpecifications": [{"ResourceType": "instance",
                               "Tags": _tags(settings) + [{"Key": "Name", "Value": f"{settings.name}-train"}]}],
    }
    return JobSpec("Ec2TrainingRun", "ec2_run", "ec2:RunInstances", request)
