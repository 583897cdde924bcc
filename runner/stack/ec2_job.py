"""The EC2 training run: the exact RunInstances request whose user data trains, uploads and stops."""

from __future__ import annotations

from typing import Any

from runner.stack.model import JobSpec
from runner.stack.parts import StackParts


def ec2_run(parts: StackParts, run_id: str, source_uri: str, hps: dict[str, str]) -> JobSpec:
    settings, names = parts.settings, parts.names
    t = settings.training
    role_key = parts.role_key_for("ec2_training")
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
                               "Tags": parts.tags + [{"Key": "Name", "Value": f"{settings.name}-train"}]}],
    }
    return JobSpec("Ec2TrainingRun", "ec2_run", "ec2:RunInstances", request, max_runtime_s=t.max_runtime)
