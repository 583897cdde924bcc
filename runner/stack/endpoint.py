"""AWS::SageMaker::Model, ::EndpointConfig and ::Endpoint: the model behind its production variants.

Models and endpoint configs are immutable on SageMaker, so their names carry a hash of their
content: a change is a new resource that the endpoint is moved to.
"""

from __future__ import annotations

from typing import Any

from runner.core.variants import Variant, production_variants
from runner.stack.model import Resource, content_hash
from runner.stack.parts import StackParts


def build_endpoint(parts: StackParts, model_data_url: str) -> list[Resource]:
    settings, names = parts.settings, parts.names
    e = settings.endpoint
    role_arn, role_id = parts.role_for("endpoint")
    variants = production_variants(settings)
    resources: list[Resource] = []
    # One model per distinct image (a CPU and a GPU variant need different containers).
    model_names: dict[str, str] = {}
    for image in dict.fromkeys(parts.hosting_images[v.instance_type] for v in variants):
        container = {
            "Image": image,
            "ModelDataUrl": model_data_url,
            "Environment": {
                "SAGEMAKER_PROGRAM": "inference.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                "SAGEMAKER_REGION": parts.region,
                # handlers/inference.py reads these (see its docstring).
                "SAGEGATE_TOP_K": str(e.top_k),
            },
        }
        model_names[image] = f"{settings.name}-model-{content_hash([container, role_arn])}"
        logical_id = "Model" if not resources else f"Model{len(resources) + 1}"
        resources.append(Resource(logical_id, "AWS::SageMaker::Model", {
            "ModelName": model_names[image],
            "ExecutionRoleArn": role_arn,
            "PrimaryContainer": container,
            # The artifact carries its inference code, so the container needs no network; Serverless
            # Inference does not support network isolation (SG-AWS-005), so there it is off.
            "EnableNetworkIsolation": e.kind != "serverless",
            "Tags": parts.tags,
        }, depends_on=[role_id], config_key="endpoint"))

    config_props: dict[str, Any] = {"ProductionVariants": [
        _variant(parts, v, model_names[parts.hosting_images[v.instance_type]]) for v in variants]}
    if e.kms_key_id and e.kind != "serverless":
        config_props["KmsKeyId"] = e.kms_key_id
    if e.data_capture:
        config_props["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": e.data_capture_percentage,
            "DestinationS3Uri": names.s3_uri("artifacts/data-capture"),
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        }
    config_name = f"{settings.name}-config-{content_hash(config_props)}"
    resources.append(Resource("EndpointConfig", "AWS::SageMaker::EndpointConfig",
                              {"EndpointConfigName": config_name, **config_props, "Tags": parts.tags},
                              depends_on=[r.logical_id for r in resources], config_key="endpoint"))
    resources.append(Resource("Endpoint", "AWS::SageMaker::Endpoint", {
        "EndpointName": names.endpoint_name,
        "EndpointConfigName": config_name,
        "Tags": parts.tags,
    }, depends_on=["EndpointConfig"], config_key="endpoint"))
    return resources


def _variant(parts: StackParts, variant: Variant, model_name: str) -> dict[str, Any]:
    e = parts.settings.endpoint
    spec: dict[str, Any] = {"VariantName": variant.name, "ModelName": model_name,
                            "InitialVariantWeight": float(variant.weight)}
    if e.kind == "serverless":
        spec["ServerlessConfig"] = {"MemorySizeInMB": e.serverless_memory_mb,
                                    "MaxConcurrency": e.serverless_max_concurrency}
    else:
        spec["InstanceType"] = variant.instance_type
        spec["InitialInstanceCount"] = variant.initial_instance_count
    return spec
