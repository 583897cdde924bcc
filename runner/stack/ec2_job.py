"""The EC2 training run: the exact RunInstances request whose user data trains, uploads and stops.

The image is chosen in runner/stack/ec2_image.py, the user data rendered in
runner/stack/ec2_user_data.py; the subnet (training.ec2_subnet_id) must reach S3 (checked by the
launcher before it sends the request, runner/launchers/ec2_reachability.py).
"""

from __future__ import annotations

from typing import Any

from runner.stack.ec2_image import image_for
from runner.stack.ec2_user_data import render_user_data
from runner.stack.model import JobSpec
from runner.stack.parts import StackParts


def ec2_run(parts: StackParts, run_id: str, source_uri: str, hps: dict[str, str]) -> JobSpec:
    settings, names = parts.settings, parts.names
    t = settings.training
    role_key = parts.role_key_for("ec2_training")
    output_uri = names.s3_uri(f"artifacts/{settings.name}-{run_id}/model.tar.gz")
    image = image_for(settings)
    user_data = render_user_data(source_uri=source_uri, data_uri=names.data_uri, artifact_uri=output_uri,
                                 region=settings.target.region, hyperparameters=hps, max_runtime_s=t.max_runtime,
                                 checkpointing=t.checkpointing)
    network: dict[str, Any] = {"DeviceIndex": 0, "AssociatePublicIpAddress": False}
    if t.ec2_subnet_id:
        network["SubnetId"] = t.ec2_subnet_id
    request = {
        "ImageId": image.image_id,
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
                               "Tags": parts.tags + [{"Key": "Name", "Value": f"{settings.name}-train"}]}],
    }
    return JobSpec("Ec2TrainingRun", "ec2_run", "ec2:RunInstances", request, max_runtime_s=t.max_runtime)
