"""The entry and loop, run in this process on the tiny digits tree (16 px, 2 epochs)."""

import json
import re
from pathlib import Path

import pytest
import torch
from training_helpers import tiny_args

from training.config import DataLocation, Hyperparameters
from training.data import load_splits, normalizer
from training.entry import main
from training.model import IMAGENET_MEAN, IMAGENET_STD, build_model, load_state

# One thread: tests share this machine's two cores, and OpenMP threads that wait on a busy core
# slow a run down many times over.
ONE_CPU = {"SM_NUM_CPUS": "1"}


def run(data: Path, out: Path, capsys: pytest.CaptureFixture, *extra: str) -> tuple[int, str, dict]:
    code = main(tiny_args(data, out, *extra), env=ONE_CPU)
    captured = capsys.readouterr()
    meta_path = out / "model" / "model.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return code, captured.out + captured.err, meta


def test_metric_lines_once_per_epoch_then_testing(tiny_digits: Path, tmp_path: Path, capsys) -> None:
    code, log, meta = run(tiny_digits, tmp_path, capsys)
    assert code == 0
    assert len(re.findall(r"^Train Loss: [0-9.]+$", log, re.M)) == 2
    assert len(re.findall(r"^Validation Loss: [0-9.]+$", log, re.M)) == 2
    assert len(re.findall(r"^Validation Accuracy: [0-9.]+$", log, re.M)) == 2
    objective = re.findall(r"Testing Loss: ([0-9\.]+)", log)  # the HPO objective regex
    assert len(objective) == 1
    assert float(objective[0]) == pytest.approx(meta["metrics"]["test_loss"], abs=1e-6)
    accuracy = re.findall(r"^Testing Accuracy: ([0-9.]+)$", log, re.M)
    assert float(accuracy[0]) == pytest.approx(meta["metrics"]["test_accuracy"], abs=1e-6)


def test_model_directory_layout_and_metadata(tiny_digits: Path, tmp_path: Path, capsys) -> None:
    code, _, meta = run(tiny_digits, tmp_path, capsys, "--head_hidden", "32")
    assert code == 0
    model_dir = tmp_path / "model"
    files = sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file())
    expected = ["code/requirements.txt", "code/training/__init__.py", "code/training/model.py", "model.json", "model.pth"]
    if (Path(__file__).parents[2] / "handlers" / "inference.py").exists():
        expected.insert(0, "code/inference.py")
    assert files == expected
    assert meta["format_version"] == 1
    assert (meta["arch"], meta["head_hidden"], meta["num_classes"], meta["image_size"]) == ("resnet18", 32, 10, 16)
    assert meta["classes"] == [str(d) for d in range(10)]  # index order
    assert meta["normalize"] == {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    assert {"test_loss", "test_accuracy", "best_epoch", "best_valid_loss", "epochs_run"} <= set(meta["metrics"])
    assert 0.0 <= meta["metrics"]["test_accuracy"] <= 1.0
    assert meta["hyperparameters"]["epochs"] == 2 and meta["hyperparameters"]["batch_size"] == 16
    assert set(meta["versions"]) == {"torch", "torchvision", "python"}
    net = load_state(build_model("resnet18", 10, head_hidden=32), str(model_dir / "model.pth"))
    assert all(t.is_contiguous() for t in net.state_dict().values())
    history = json.loads((tmp_path / "output" / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]


def test_same_seed_same_metrics(tiny_digits: Path, tmp_path: Path, capsys) -> None:
    _, _, first = run(tiny_digits, tmp_path / "a", capsys)
    _, _, second = run(tiny_digits, tmp_path / "b", capsys)
    _, _, other_seed = run(tiny_digits, tmp_path / "c", capsys, "--seed", "7")
    keys = ("test_loss", "test_accuracy", "best_valid_loss", "final_train_loss")
    assert [first["metrics"][k] for k in keys] == [second["metrics"][k] for k in keys]
    assert first["metrics"]["final_train_loss"] != other_seed["metrics"]["final_train_loss"]


def _valid_loss_of_saved_model(data: Path, model_dir: Path) -> float:
    meta = json.loads((model_dir / "model.json").read_text())
    splits = load_splits(DataLocation(root=str(data)), Hyperparameters(image_size=16), data, warn=lambda _m: None)
    net = load_state(build_model("resnet18", 10, meta["head_hidden"]), str(model_dir / "model.pth")).eval()
    with torch.inference_mode():
        logits = net(normalizer(IMAGENET_MEAN, IMAGENET_STD)(splits.valid.images))
    return torch.nn.functional.cross_entropy(logits, splits.valid.labels).item()


def test_early_stopping_restores_the_best_epoch(tiny_digits: Path, tmp_path: Path, capsys) -> None:
    # A min_delta no improvement can reach: epoch 1 is the best, patience 1 stops after epoch 2.
    code, log, meta = run(tiny_digits, tmp_path, capsys, "--epochs", "5", "--patience", "1", "--min_delta", "1e9")
    assert code == 0
    metrics = meta["metrics"]
    assert (metrics["epochs_run"], metrics["stopped_early"], metrics["best_epoch"]) == (2, True, 1)
    assert len(re.findall(r"^Train Loss:", log, re.M)) == 2
    assert "early stopping after epoch 2" in log
    history = json.loads((tmp_path / "output" / "metrics.json").read_text())["history"]
    # The artifact holds epoch 1's weights, not the last epoch's.
    saved = _valid_loss_of_saved_model(tiny_digits, tmp_path / "model")
    assert saved == pytest.approx(history[0]["valid_loss"], rel=1e-4)
    assert saved != pytest.approx(history[1]["valid_loss"], rel=1e-4)


def test_patience_zero_never_stops(tiny_digits: Path, tmp_path: Path, capsys) -> None:
    _, _, meta = run(tiny_digits, tmp_path, capsys, "--epochs", "3", "--patience", "0", "--min_delta", "1e9")
    assert meta["metrics"]["epochs_run"] == 3 and meta["metrics"]["stopped_early"] is False


def test_feature_cache_is_the_same_math(tiny_digits: Path, tmp_path: Path, capsys) -> None:
    frozen = ("--freeze_backbone", "true", "--epochs", "3", "--learning_rate", "0.01")
    code, log, cached = run(tiny_digits, tmp_path / "cached", capsys, *frozen)
    assert code == 0 and "computing backbone features once" in log
    _, log, direct = run(tiny_digits, tmp_path / "direct", capsys, *frozen, "--feature_cache", "false")
    assert "computing backbone features once" not in log
    for key in ("test_loss", "test_accuracy", "best_valid_loss", "final_train_loss"):
        assert cached["metrics"][key] == pytest.approx(direct["metrics"][key], rel=1e-4, abs=1e-6)


def test_frozen_backbone_changes_only_the_head(tiny_digits: Path, tmp_path: Path, capsys) -> None:
    run(tiny_digits, tmp_path, capsys, "--freeze_backbone", "true", "--augment", "true")
    torch.manual_seed(42)
    initial = build_model("resnet18", 10).state_dict()
    trained = torch.load(tmp_path / "model" / "model.pth", weights_only=True)
    for name, tensor in initial.items():
        assert trained[name].equal(tensor) is (not name.startswith("fc.")), name


def test_bad_data_exits_2_naming_the_path(make_tree, tmp_path: Path, capsys) -> None:
    root = make_tree()
    (root / "test" / "3").rename(root / "test" / "three")
    code, log, _ = run(root, tmp_path / "out", capsys)
    assert code == 2
    assert "class folders differ" in log and str(root / "test") in log
    assert not (tmp_path / "out" / "model" / "model.json").exists()


def test_failure_reason_goes_where_sagemaker_reads_it(tmp_path: Path, capsys) -> None:
    output_data = tmp_path / "output" / "data"
    code = main(["--data_dir", str(tmp_path / "nowhere")],
                env={**ONE_CPU, "SM_MODEL_DIR": str(tmp_path / "model"), "SM_OUTPUT_DATA_DIR": str(output_data)})
    assert code == 2
    assert str(tmp_path / "nowhere") in (tmp_path / "output" / "failure").read_text()
    assert str(tmp_path / "nowhere") in capsys.readouterr().err
