"""stage=simulate (runner/app/simulate.py): the files it writes and their shape (the names users
and CI scripts rely on, issue 14), its exit codes, and its refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from rich.console import Console
from runner_helpers import settings_for

from runner.app.context import RunContext
from runner.app.simulate import simulate_stage
from runner.core.errors import EXIT_OK, EXIT_VIOLATIONS, ConfigError, UserError

SUMMARY_KEYS = {"requests", "served", "throttled", "rejected", "error_rate", "p50_ms", "p95_ms", "p99_ms",
                "max_instances", "instance_hours", "cost_usd_day", "cost_usd_month", "slo_met"}
MINUTE_KEYS = {"t", "arrivals", "instances", "throttled", "rejected", "p50_ms", "p99_ms"}


def _run(tmp_path: Path, *overrides: str) -> tuple[int, RunContext]:
    settings = settings_for("sim", *overrides)
    settings.workdir = str(tmp_path / "work")
    context = RunContext(settings, tmp_path / "run", Console(record=True, width=200))
    return simulate_stage(context), context


def test_the_default_config_simulates_a_day_and_writes_json_csv_and_png(tmp_path):
    code, context = _run(tmp_path)
    assert code == EXIT_OK
    record = json.loads((tmp_path / "run" / "simulation.json").read_text())
    assert set(record["summary"]) == SUMMARY_KEYS
    assert len(record["minutes"]) == 1440 and set(record["minutes"][0]) == MINUTE_KEYS
    s = record["summary"]
    assert s["requests"] == sum(m["arrivals"] for m in record["minutes"]) > 0
    assert s["served"] + s["throttled"] + s["rejected"] == pytest.approx(s["requests"], abs=2)
    assert 0 < s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"]
    assert 1 <= s["max_instances"] <= 3 and s["slo_met"] is None
    # Every instance is billed for the day at least: min capacity 1 x 24 h x $0.115.
    assert s["cost_usd_day"] >= 24 * 0.115 and s["cost_usd_month"] == pytest.approx(s["cost_usd_day"] * 730 / 24, rel=1e-3)
    with (tmp_path / "run" / "simulation.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1440 and set(rows[0]) == MINUTE_KEYS
    assert (tmp_path / "run" / "simulation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert context.result["simulation"] == s
    assert "a month" in context.console.export_text()


def test_a_day_that_misses_its_slo_exits_1(tmp_path):
    # 200 requests a second against reserved concurrency 5 (at most 50 invocations a second).
    code, context = _run(tmp_path, "traffic=constant", "traffic.rps=200.0", "traffic.minutes=60",
                         "slo.p99_ms=200.0", "slo.error_rate=0.01")
    summary = context.result["simulation"]
    assert code == EXIT_VIOLATIONS and summary["slo_met"] is False
    assert summary["error_rate"] > 0.01


def test_a_light_day_meets_its_slo(tmp_path):
    code, context = _run(tmp_path, "traffic=constant", "traffic.rps=0.1", "traffic.minutes=120",
                         "slo.p99_ms=500.0", "slo.error_rate=0.01")
    assert code == EXIT_OK and context.result["simulation"]["slo_met"] is True


@pytest.mark.parametrize(("overrides", "key"), [
    (["endpoint=serverless"], "endpoint"),
    (["endpoint=ab_test"], "endpoint.variants"),
])
def test_configs_the_model_does_not_cover_are_refused_naming_the_key(tmp_path, overrides, key):
    with pytest.raises(ConfigError) as caught:
        _run(tmp_path, *overrides)
    assert str(caught.value).startswith(f"{key}: ")


def test_calibration_needs_a_trained_model(tmp_path):
    with pytest.raises(UserError) as caught:
        _run(tmp_path, "simulate.calibrate=true")
    assert str(caught.value).startswith("simulate.calibrate: ") and "stage=train" in str(caught.value)


def test_check_with_an_slo_records_the_day_the_gate_judged(tmp_path):
    """stage=check with SLOs set: the SG-CAP rules simulate, and run.json carries that day's summary
    (what a check sweep's rows show), failing the gate when the day misses the SLO."""
    from runner.app import stages

    settings = settings_for("simchk", "policy.checkov.enabled=false", "traffic=constant", "traffic.rps=200.0",
                            "traffic.minutes=30", "slo.error_rate=0.01")
    settings.workdir = str(tmp_path / "work")
    context = RunContext(settings, tmp_path / "run", Console(record=True, width=200))
    assert stages.check(context) == EXIT_VIOLATIONS
    assert set(context.result["simulation"]) == SUMMARY_KEYS and context.result["simulation"]["slo_met"] is False
    assert context.result["slo"] == {"p99_ms": None, "error_rate": 0.01}
    assert "SG-CAP-001" in context.result["gate"]["top_finding"]


def test_the_service_time_follows_the_model_and_its_image_size(tmp_path):
    from runner.capacity import service_time
    from runner.capacity.path import path_params

    default, _, _ = path_params(settings_for("svc"))
    assert default.service_ms == service_time.SHIPPED[("resnet18", 64)].mean_ms  # ml.m5.large: factor 1
    big, _, used = path_params(settings_for("svc", "model=resnet50", "data=dog_images"))
    assert big.service_ms == service_time.SHIPPED[("resnet50", 224)].mean_ms and "resnet50 @224" in used.source
    faster, _, _ = path_params(settings_for("svc", "endpoint.variants.AllTraffic.instance_type=ml.c5.large"))
    assert faster.service_ms == pytest.approx(default.service_ms * service_time.FAMILY_SPEED["c5"])
    with pytest.raises(ConfigError) as caught:  # no figure for ResNet50 at 64 px: say how to get one
        path_params(settings_for("svc", "model=resnet50"))
    assert str(caught.value).startswith("simulate.service_ms: ") and "simulate.calibrate=true" in str(caught.value)
    given, _, _ = path_params(settings_for("svc", "model=resnet50", "simulate.service_ms=40.0",
                                           "simulate.service_cv=0.2"))
    assert (given.service_ms, given.service_cv) == (40.0, 0.2)


def test_calibrate_measures_the_trained_artifact_once(tmp_path, monkeypatch):
    """simulate.calibrate=true: the artifact through the local endpoint server, cached by its hash."""
    import runner.app.calibrate as calibrate

    settings = settings_for("cal", "simulate.calibrate=true", "traffic.minutes=60")
    settings.workdir = str(tmp_path / "work")
    state = tmp_path / "work" / "cal"
    state.mkdir(parents=True)
    built = calibrate._untrained_artifact(state, "resnet18", 64)
    assert built == state / "model.tar.gz"
    context = RunContext(settings, tmp_path / "run", Console(record=True, width=200))
    assert simulate_stage(context) == EXIT_OK
    inputs = json.loads((tmp_path / "run" / "simulation.json").read_text())["inputs"]
    assert inputs["service_source"].startswith("measured ") and 1 < inputs["service_ms"] < 2000
    assert len(list((tmp_path / "work" / "calibration").glob("*.json"))) == 1
    monkeypatch.setattr(calibrate, "measure", lambda *a, **k: pytest.fail("measured twice"))
    context = RunContext(settings, tmp_path / "run2", Console(record=True, width=200))
    assert simulate_stage(context) == EXIT_OK  # from the cache
    again = json.loads((tmp_path / "run2" / "simulation.json").read_text())["inputs"]
    assert again["service_ms"] == inputs["service_ms"]


def test_the_instance_catalogue_beside_the_prices_covers_every_hosting_type():
    from omegaconf import OmegaConf

    from runner.app.compose import compose_config
    from runner.core.settings import load_settings

    config = OmegaConf.to_container(compose_config([]), resolve=True)
    assert set(config["pricing"]["vcpus"]) == set(config["pricing"]["hosting"])
    del config["pricing"]["vcpus"]["ml.c5.large"]
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert str(caught.value).startswith("pricing.vcpus: ") and "ml.c5.large" in str(caught.value)
    workers = {t: settings_for("cpu", f"endpoint.variants.AllTraffic.instance_type={t}").pricing.vcpus[t]
               for t in ("ml.m5.large", "ml.c5.xlarge")}
    assert workers == {"ml.m5.large": 2, "ml.c5.xlarge": 4}
