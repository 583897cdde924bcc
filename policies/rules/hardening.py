"""Hardening where checkov has no CloudFormation check, and on the job requests it never sees."""

from __future__ import annotations

from collections.abc import Iterable

from policies.rules import Context, Outcome, Rule
from policies.rules.instance_storage import has_instance_storage


def _aws_managed(key_id: object) -> bool:
    """``alias/aws/sagemaker`` (or its ARN): the AWS-managed key, no more control than none."""
    return isinstance(key_id, str) and (key_id.startswith("alias/aws/") or ":alias/aws/" in key_id)


def _kms_problem(key_id: object, what: str) -> str | None:
    if not key_id:
        return f"no KMS key: {what} use an AWS-managed key"
    if _aws_managed(key_id):
        return f"{key_id} is the AWS-managed key: {what} are encrypted, but not under a key you control"
    return None


def endpoint_kms(ctx: Context) -> Iterable[Outcome]:
    for config in ctx.stack.find("AWS::SageMaker::EndpointConfig"):
        variants = config.properties.get("ProductionVariants", [])
        with_volumes = [v["InstanceType"] for v in variants
                        if v.get("InstanceType") and not has_instance_storage(v["InstanceType"])]
        problem = _kms_problem(config.properties.get("KmsKeyId"),
                               f"the ML storage volumes of {', '.join(with_volumes)}") if with_volumes else None
        yield Outcome(config.logical_id, "endpoint.kms_key_id", problem)


def notebook_kms(ctx: Context) -> Iterable[Outcome]:
    for notebook in ctx.stack.find("AWS::SageMaker::NotebookInstance"):
        yield Outcome(notebook.logical_id, "notebook.kms_key_id",
                      _kms_problem(notebook.properties.get("KmsKeyId"), "the notebook's volume and data"))


def training_volume_kms(ctx: Context) -> Iterable[Outcome]:
    for job, definition in ctx.training_definitions():
        resources = definition.get("ResourceConfig", {})
        instance_type = resources.get("InstanceType", "")
        problem = None if has_instance_storage(instance_type) else _kms_problem(
            resources.get("VolumeKmsKeyId"), f"the {instance_type} training volumes")
        yield Outcome(job.logical_id, "training.volume_kms_key_id", problem)


def notebook_internet(ctx: Context) -> Iterable[Outcome]:
    for notebook in ctx.stack.find("AWS::SageMaker::NotebookInstance"):
        # CloudFormation's default is Enabled: only an explicit Disabled passes.
        value = notebook.properties.get("DirectInternetAccess", "Enabled")
        yield Outcome(notebook.logical_id, "notebook.direct_internet_access",
                      None if value == "Disabled" else f"DirectInternetAccess is {value}: the notebook "
                      "reaches (and is reachable from) the internet outside any VPC control")


def notebook_root(ctx: Context) -> Iterable[Outcome]:
    for notebook in ctx.stack.find("AWS::SageMaker::NotebookInstance"):
        value = notebook.properties.get("RootAccess", "Enabled")
        yield Outcome(notebook.logical_id, "notebook.root_access",
                      None if value == "Disabled" else f"RootAccess is {value}: notebook users can change the "
                      "instance, its credentials handling and installed software")


def _ec2_runs(ctx: Context):
    return [j for j in ctx.stack.jobs if j.kind == "ec2_run"]


def ec2_imdsv2(ctx: Context) -> Iterable[Outcome]:
    for job in _ec2_runs(ctx):
        options = job.request.get("MetadataOptions", {})
        ok = options.get("HttpTokens") == "required" or options.get("HttpEndpoint") == "disabled"
        yield Outcome(job.logical_id, "training.launcher", None if ok else
                      "MetadataOptions.HttpTokens is not 'required': IMDSv1 lets any SSRF read the "
                      "instance role's credentials")


def ec2_encrypted_volumes(ctx: Context) -> Iterable[Outcome]:
    for job in _ec2_runs(ctx):
        mappings = job.request.get("BlockDeviceMappings", [])
        plain = [m.get("DeviceName", "?") for m in mappings if "Ebs" in m and not m["Ebs"].get("Encrypted")]
        problems = []
        if not mappings:
            problems.append("no BlockDeviceMappings: the AMI's root volume is used as it is (encryption "
                            "depends on the AMI and the account default)")
        if plain:
            problems.append(f"EBS volume(s) {', '.join(plain)} not encrypted")
        yield Outcome(job.logical_id, "training.volume_kms_key_id", "; ".join(problems) or None)


def ec2_public_ip(ctx: Context) -> Iterable[Outcome]:
    for job in _ec2_runs(ctx):
        interfaces = job.request.get("NetworkInterfaces")
        if not interfaces:
            yield Outcome(job.logical_id, "training.ec2_subnet_id",
                          "no NetworkInterfaces with AssociatePublicIpAddress=false: a default-VPC subnet "
                          "gives the instance a public IP", severity="medium")
        elif any(i.get("AssociatePublicIpAddress", True) for i in interfaces):
            yield Outcome(job.logical_id, "training.ec2_subnet_id", "the instance gets a public IP address")
        else:
            yield Outcome(job.logical_id, "training.ec2_subnet_id")


def training_network_isolation(ctx: Context) -> Iterable[Outcome]:
    for job, definition in ctx.training_definitions():
        yield Outcome(job.logical_id, "training.network_isolation",
                      None if definition.get("EnableNetworkIsolation") else
                      "EnableNetworkIsolation is off: the training container can call out to the network")


def inter_container_encryption(ctx: Context) -> Iterable[Outcome]:
    for job, definition in ctx.training_definitions():
        count = int(definition.get("ResourceConfig", {}).get("InstanceCount", 1))
        if count > 1 and not definition.get("EnableInterContainerTrafficEncryption"):
            yield Outcome(job.logical_id, "training.inter_container_encryption",
                          f"{count} instances exchange gradients unencrypted "
                          "(EnableInterContainerTrafficEncryption is off)")
        else:
            yield Outcome(job.logical_id, "training.inter_container_encryption")


RULES = (
    Rule("SG-HARD-001", "low", "Endpoint config without a customer KMS key", "endpoint.kms_key_id",
         "Set endpoint.kms_key_id to a customer-managed KMS key to control and audit access to the "
         "endpoint's volumes.", endpoint_kms),
    Rule("SG-HARD-002", "low", "Notebook without a customer KMS key", "notebook.kms_key_id",
         "Set notebook.kms_key_id to a customer-managed KMS key.", notebook_kms),
    Rule("SG-HARD-003", "low", "Training volumes without a customer KMS key", "training.volume_kms_key_id",
         "Set training.volume_kms_key_id to a customer-managed KMS key (not for instance types with "
         "local NVMe storage).", training_volume_kms),
    Rule("SG-HARD-004", "high", "Notebook with direct internet access", "notebook.direct_internet_access",
         "Set notebook.direct_internet_access=Disabled and reach the internet through the VPC, if at all.",
         notebook_internet),
    Rule("SG-HARD-005", "medium", "Notebook with root access", "notebook.root_access",
         "Set notebook.root_access=Disabled; install packages through lifecycle configurations.", notebook_root),
    Rule("SG-HARD-006", "high", "EC2 instance without IMDSv2", "training.launcher",
         "Launch with MetadataOptions.HttpTokens=required.", ec2_imdsv2),
    Rule("SG-HARD-007", "high", "EC2 volumes not encrypted", "training.volume_kms_key_id",
         "Declare every EBS volume with Encrypted=true (optionally training.volume_kms_key_id).",
         ec2_encrypted_volumes),
    Rule("SG-HARD-008", "high", "EC2 instance with a public IP", "training.ec2_subnet_id",
         "Launch into a private subnet (training.ec2_subnet_id) with AssociatePublicIpAddress=false.",
         ec2_public_ip),
    Rule("SG-HARD-009", "medium", "Training without network isolation", "training.network_isolation",
         "Set training.network_isolation=true; the training code reads its data from the S3 channels.",
         training_network_isolation),
    Rule("SG-HARD-010", "medium", "Multi-instance training without inter-container encryption",
         "training.inter_container_encryption",
         "Set training.inter_container_encryption=true for jobs on more than one instance.",
         inter_container_encryption),
)
