"""Every rejection of the schema, with the key it names."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException

from runner.app.compose import compose_settings
from runner.core.errors import ConfigError


def test_defaults_are_the_reference_values() -> None:
    s = compose_settings()
    assert (s.target.kind, s.data.name, s.model.arch, s.data.image_size) == ("local", "digits", "resnet18", 64)
    assert s.model.weights is None and s.model.freeze_backbone is False
    assert (s.endpoint.instance_type, s.endpoint.initial_instance_count) == ("ml.m5.large", 1)
    a = s.autoscaling
    assert (a.min_capacity, a.max_capacity, a.target_value, a.scale_in_cooldown, a.scale_out_cooldown) == (1, 3, 20.0, 30, 30)
    assert (s.function.reserved_concurrency, s.function.provisioned_concurrency) == (5, 2)


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        (["function.timeout=abc"], "function.timeout", "'abc' is not valid: Input should be a valid integer"),
        (["training.use_spot=maybe"], "training.use_spot", "valid boolean"),
        (["iam.roles.lambda_invoke.scopes=[{service: s3}]"], "iam.roles.lambda_invoke.scopes[0].actions",
         "a value is required"),
        (["+endpoint.colour=red"], "endpoint.colour", "unknown key"),
        (["endpoint.instance_type=ml.m5.huge"], "endpoint.instance_type", "unknown hosting instance type"),
        (["endpoint.instance_type=ml.t3.medium"], "endpoint.instance_type", "known (hosting)"),
        (["training=sagemaker", "training.instance_type=m5.xlarge"], "training.instance_type", "unknown training instance type"),
        (["training=ec2", "training.instance_type=ml.m5.xlarge"], "training.instance_type", "unknown ec2 instance type"),
        (["notebook=t3_medium", "notebook.instance_type=ml.m5.large"], "notebook.instance_type", "unknown notebook instance type"),
        (["autoscaling.min_capacity=4"], "autoscaling.min_capacity", "must be <= autoscaling.max_capacity (3)"),
        (["autoscaling.max_capacity=0", "autoscaling.min_capacity=0"], "autoscaling.max_capacity", "must be >= 1"),
        (["function.provisioned_concurrency=6"], "function.provisioned_concurrency", "must be <= function.reserved_concurrency (5)"),
        (["function.reserved_concurrency=901"], "function.reserved_concurrency", "allowed: 1 to 900"),
        (["autoscaling.scale_in_cooldown=-1"], "autoscaling.scale_in_cooldown", "out of range"),
        (["autoscaling.scale_out_cooldown=100000"], "autoscaling.scale_out_cooldown", "out of range"),
        (["autoscaling.target_value=0"], "autoscaling.target_value", "out of range"),
        (["hpo.learning_rate.min=0.5", "hpo.learning_rate.max=0.1"], "hpo.learning_rate", "must be < max"),
        (["hpo.batch_size=[]"], "hpo.batch_size", "at least one value"),
        (["hpo.max_parallel_jobs=3", "hpo.max_jobs=2"], "hpo.max_parallel_jobs", "must be <= hpo.max_jobs (2)"),
        (["function.timeout=901"], "function.timeout", "allowed: 1 to 900"),
        (["function.memory_size=64"], "function.memory_size", "allowed: 128 to 10240"),
        (["function.memory_size=20000"], "function.memory_size", "allowed: 128 to 10240"),
        (["stage=launch"], "stage", "allowed: check, plan"),
        (["name=Bad_Name"], "name", "must be 3-24 characters"),
        (["policy.fail_on=severe"], "policy.fail_on", "allowed: info, low"),
        (["endpoint.initial_instance_count=5"], "endpoint.initial_instance_count", "within autoscaling bounds"),
        (["training.use_spot=true"], "training.use_spot", "sagemaker launcher"),
        (["training=sagemaker", "training.max_wait=60"], "training.max_wait", "must be >= training.max_runtime"),
        (["hpo=sagemaker_tuner"], "hpo", "needs training=sagemaker"),
        (["hpo.objective_regex=Testing Loss"], "hpo.objective_regex", "one capture group"),
    ],
)
def test_rejections_name_the_key(overrides: list[str], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        compose_settings(overrides)
    message = str(caught.value)
    assert message.startswith(f"{key}:"), message
    assert fragment in message, message
    assert "\n" not in message


def test_unknown_key_without_plus_is_refused_at_compose() -> None:
    with pytest.raises(ConfigCompositionException, match="endpoint.colour"):
        compose_settings(["endpoint.colour=red"])


@pytest.mark.parametrize("preset", ["reference_2023", "production"])
def test_presets_validate(preset: str) -> None:
    s = compose_settings([f"experiment={preset}"])
    assert s.training.launcher == "sagemaker"


def test_reference_preset_holds_the_original_choices() -> None:
    s = compose_settings(["experiment=reference_2023"])
    assert (s.data.name, s.data.num_classes, s.model.arch) == ("dog_images", 133, "resnet50")
    assert s.training.instance_type == "ml.g4dn.xlarge"
    assert (s.hpo.enabled, s.hpo.max_jobs, s.hpo.max_parallel_jobs) == (True, 2, 1)
    assert (s.hpo.learning_rate.min, s.hpo.learning_rate.max) == (0.001, 0.1)
    assert s.hpo.batch_size == [32, 64, 128, 256, 512]
    assert s.hpo.objective_regex == r"Testing Loss: ([0-9\.]+)"
    assert (s.endpoint.instance_type, s.endpoint.initial_instance_count) == ("ml.m5.large", 1)
    assert (s.autoscaling.max_capacity, s.autoscaling.target_value) == (3, 20.0)
    assert (s.autoscaling.scale_in_cooldown, s.autoscaling.scale_out_cooldown) == (30, 30)
    assert (s.function.reserved_concurrency, s.function.provisioned_concurrency) == (5, 2)
    assert (s.notebook.enabled, s.notebook.instance_type) == (True, "ml.t3.medium")
