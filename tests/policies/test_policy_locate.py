"""Reports point at the conf file (and line) where a key is set."""

from __future__ import annotations

from policies.locate import CONF_DIR, default_choices, locate


def line_of(location) -> str:
    return (CONF_DIR.parent / location.path).read_text().splitlines()[location.line - 1]


def test_defaults_list_gives_the_choices():
    choices = default_choices()
    assert choices["endpoint"] == "realtime" and choices["policy"] == "default"


def test_group_option_file_and_line():
    where = locate("endpoint.variants.AllTraffic.instance_type")
    assert where.path == "conf/endpoint/realtime.yaml" and line_of(where).strip().startswith("instance_type:")


def test_experiment_wins_when_it_sets_the_key():
    choices = {**default_choices(), "experiment": "production", "policy": "strict"}
    where = locate("autoscaling.max_capacity", choices)
    assert where.path == "conf/experiment/production.yaml" and line_of(where).strip().startswith("max_capacity:")
    # A key the experiment does not set stays in its group's file.
    assert locate("endpoint.kms_key_id", choices).path == "conf/endpoint/realtime.yaml"
    # strict.yaml inherits its suppressions from default.yaml (options state only differences).
    assert locate("policy.suppress", choices).path == "conf/policy/default.yaml"
    assert locate("policy.fail_on", choices).path == "conf/policy/strict.yaml"


def test_nested_keys_and_list_indices():
    where = locate("iam.roles.notebook.scopes[1]")
    assert where.path == "conf/iam/least_privilege.yaml"
    assert line_of(where).strip() == "scopes:"
    lines = (CONF_DIR / "iam" / "least_privilege.yaml").read_text().splitlines()
    assert lines[where.line - 3].strip() == "used_by: [notebook]"  # the notebook role's scopes, not another's


def test_unknown_key_falls_back_to_the_group_file():
    where = locate("function.no_such_key")
    assert where.path == "conf/function/invoke_endpoint.yaml"


def test_an_inherited_key_points_at_the_option_that_writes_it():
    # serverless.yaml inherits realtime.yaml (defaults: [realtime]) and writes only its differences.
    inherited = locate("endpoint.variants.AllTraffic.instance_type", {"endpoint": "serverless"})
    assert inherited.path == "conf/endpoint/realtime.yaml"
    assert line_of(inherited).strip().startswith("instance_type:")
    own = locate("endpoint.serverless_memory_mb", {"endpoint": "serverless"})
    assert own.path == "conf/endpoint/serverless.yaml" and line_of(own).strip().startswith("serverless_memory_mb:")
    # Two levels up: sagemaker_multi -> sagemaker -> local.
    deep = locate("training.max_runtime", {"training": "sagemaker_multi"})
    assert deep.path == "conf/training/local.yaml" and line_of(deep).strip().startswith("max_runtime:")
