"""AWS::SageMaker::NotebookInstance, when notebook=... enables one."""

from __future__ import annotations

from typing import Any

from runner.stack.model import Resource
from runner.stack.parts import StackParts


def build_notebook(parts: StackParts) -> list[Resource]:
    n = parts.settings.notebook
    if not n.enabled:
        return []
    role_arn, role_id = parts.role_for("notebook")
    props: dict[str, Any] = {
        "NotebookInstanceName": parts.names.notebook_name,
        "InstanceType": n.instance_type,
        "RoleArn": role_arn,
        "VolumeSizeInGB": n.volume_size_gb,
        "DirectInternetAccess": n.direct_internet_access,
        "RootAccess": n.root_access,
        "InstanceMetadataServiceConfiguration": {"MinimumInstanceMetadataServiceVersion": "2"},
        "Tags": parts.tags,
    }
    if n.kms_key_id:
        props["KmsKeyId"] = n.kms_key_id
    if n.subnet_id:
        props["SubnetId"] = n.subnet_id
        props["SecurityGroupIds"] = list(n.security_group_ids)
    return [Resource("NotebookInstance", "AWS::SageMaker::NotebookInstance", props, depends_on=[role_id],
                     config_key="notebook")]
