"""The job requests of a configuration: exactly what CreateTrainingJob, CreateHyperParameterTuningJob
or RunInstances will be sent (or, for local training, the hyperparameters and data it runs on)."""

from __future__ import annotations

from typing import Any

from runner.core.settings import Settings
from runner.stack.ec2_job import ec2_run
from runner.stack.model import JobSpec, content_hash
from runner.stack.parts import StackParts
from training.metrics import sagemaker_metric_definitions

CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
# Under network isolation the container cannot fetch the bundle from S3: the SageMaker Python SDK
# (v2, src/sagemaker/estimator.py, Framework._prepare_for_training / EstimatorBase
# ._stage_user_code_in_s3; src/sagemaker/job.py, _Job._load_config) then adds the bundle as its own
# input channel, named "code", whose S3Uri is the tarball's key (an S3Prefix channel with no
# InputMode of its own), and sends the tarball's path inside the container as
# sagemaker_submit_directory; the training toolkit unpacks that local tarball into /opt/ml/code.
CODE_CHANNEL = "code"
CODE_CHANNEL_SOURCEDIR = f"/opt/ml/input/data/{CODE_CHANNEL}/sourcedir.tar.gz"
METRIC_DEFINITIONS = sagemaker_metric_definitions()


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


def code_channel(source_uri: str) -> dict[str, Any]:
    """The source bundle as an input channel, as the SageMaker Python SDK sends it under isolation."""
    return {"ChannelName": CODE_CHANNEL,
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source_uri,
                                            "S3DataDistributionType": "FullyReplicated"}}}


def build_jobs(parts: StackParts, run_id: str) -> list[JobSpec]:
    """The training run of this configuration: local, a SageMaker training or tuning job, or EC2."""
    settings, names = parts.settings, parts.names
    t, h = settings.training, settings.hpo
    hps = hyperparameters(settings)
    if t.launcher == "local":
        return [JobSpec("Training", "local_training", None, {
            "HyperParameters": hps, "DataSource": settings.data.source, "InstanceCount": t.instance_count,
        })]

    source_uri = names.s3_uri("code/sourcedir.tar.gz")
    if t.launcher == "ec2":
        return [ec2_run(parts, run_id, source_uri, hps)]

    role_arn = names.role_arn(parts.role_key_for("training"))
    job_name = f"{settings.name}-{run_id}"[:63]
    isolated = t.network_isolation
    script_mode = {
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": CODE_CHANNEL_SOURCEDIR if isolated else source_uri,
        "sagemaker_region": settings.target.region,
        "sagemaker_container_log_level": "20",
    }
    if t.instance_count > 1:
        script_mode["sagemaker_torch_distributed_enabled"] = "true"
    definition: dict[str, Any] = {
        "AlgorithmSpecification": {
            "TrainingImage": parts.training_image,
            "TrainingInputMode": "File",
            "MetricDefinitions": METRIC_DEFINITIONS,
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "RoleArn": role_arn,
        "InputDataConfig": [{
            "ChannelName": "training",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": names.data_uri,
                                            "S3DataDistributionType": "FullyReplicated"}},
        }] + ([code_channel(source_uri)] if isolated else []),
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
        # A tuning job gives every trial this same S3Uri: the training package keeps each job's
        # checkpoints under its own TRAINING_JOB_NAME folder (training/config.py).
        definition["CheckpointConfig"] = {"S3Uri": names.s3_uri(f"checkpoints/{job_name}"),
                                          "LocalPath": CHECKPOINT_LOCAL_PATH}

    if not h.enabled:
        request = {"TrainingJobName": job_name, **definition,
                   "HyperParameters": {**hps, **script_mode}, "Tags": parts.tags}
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
        "Tags": parts.tags,
    }
    return [JobSpec("TuningJob", "tuning_job", "sagemaker:CreateHyperParameterTuningJob", request,
                    config_key="hpo")]
