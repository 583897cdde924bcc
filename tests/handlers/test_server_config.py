"""handlers/server_config.py: the region and production variant settings, and their validation."""

from __future__ import annotations

import pytest

from handlers.server_config import ServerConfig, parse_variant


def config(**fields) -> ServerConfig:
    return ServerConfig(model_dir="model", **fields)


def test_the_default_is_one_all_traffic_variant():
    assert config().validate().variants == (("AllTraffic", 1.0),)


def test_region_comes_from_aws_region_else_us_east_1(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert config().region == "eu-central-1"
    assert config(region="ap-south-1").region == "ap-south-1"
    monkeypatch.delenv("AWS_REGION")
    assert config().region == "us-east-1"


def test_variants_given_as_lists_become_a_hashable_tuple():
    settings = config(variants=[["Blue", 2], ["Green", "0.5"]]).validate()
    assert settings.variants == (("Blue", 2.0), ("Green", 0.5))
    assert hash(settings)


@pytest.mark.parametrize(
    ("text", "expected"), [("Blue=1", ("Blue", 1.0)), ("canary-2=0.05", ("canary-2", 0.05)), ("A=0", ("A", 0.0))]
)
def test_parse_variant(text, expected):
    assert parse_variant(text) == expected


@pytest.mark.parametrize("text", ["Blue", "Blue=", "Blue=heavy"])
def test_parse_variant_refuses_malformed_flags(text):
    with pytest.raises(ValueError):
        parse_variant(text)


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ((), "at least one production variant"),
        ((("A", 1), ("A", 2)), "unique"),
        ((("bad_name", 1),), "not a valid SageMaker variant name"),
        ((("A", -1),), "finite number >= 0"),
        ((("A", float("nan")),), "finite number >= 0"),
        ((("A", float("inf")),), "finite number >= 0"),
        ((("A", 0), ("B", 0)), "at least one weight must be above 0"),
    ],
)
def test_invalid_variants_are_refused(variants, message):
    with pytest.raises(ValueError, match=message):
        config(variants=variants).validate()


@pytest.mark.parametrize("region", ["", "moon", "us-east", "US-EAST-1", "us-east-1/../x"])
def test_invalid_regions_are_refused(region):
    with pytest.raises(ValueError, match="region"):
        config(region=region).validate()


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-3", "cn-north-1", "us-gov-west-1", "il-central-1"])
def test_real_region_names_are_accepted(region):
    assert config(region=region).validate().region == region
