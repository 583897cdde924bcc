import hashlib
import tarfile
from pathlib import Path

from training_helpers import REPO_ROOT, run_python

from training.archive import pack_directory, safe_extract
from training.bundle import ENTRY_POINT, build_source_bundle


def test_source_bundle_is_reproducible(tmp_path: Path) -> None:
    first = build_source_bundle(tmp_path / "a")
    second = build_source_bundle(tmp_path / "b")
    assert first.name == "sourcedir.tar.gz"
    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()


def test_source_bundle_holds_the_entry_the_package_and_the_handler(tmp_path: Path) -> None:
    with tarfile.open(build_source_bundle(tmp_path)) as tar:
        names = tar.getnames()
        assert all(m.mtime == 0 and m.uid == 0 and m.isfile() for m in tar.getmembers())
    assert names[0] == ENTRY_POINT or ENTRY_POINT in names
    assert {"training/__init__.py", "training/entry.py", "training/model.py", "handlers/__init__.py"} <= set(names)
    assert ("handlers/inference.py" in names) == (REPO_ROOT / "handlers" / "inference.py").exists()
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]


def test_entry_from_the_unpacked_bundle_documents_the_contract(tmp_path: Path) -> None:
    safe_extract(build_source_bundle(tmp_path / "bundle"), tmp_path / "code")
    result = run_python([ENTRY_POINT, "--help"], cwd=tmp_path / "code")
    assert result.returncode == 0
    for word in ("--learning_rate", "--data_dir", "--checkpoint_dir", "SM_CHANNEL_TRAINING", "SM_MODEL_DIR",
                 "SM_HPS", "Testing Loss"):
        assert word in result.stdout


def test_python_m_training_help() -> None:
    result = run_python(["-m", "training", "--help"])
    assert result.returncode == 0 and "SM_OUTPUT_DATA_DIR" in result.stdout and "--on_bad_image" in result.stdout


def test_packed_model_directory_is_reproducible(tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "code").mkdir(parents=True)
    (model / "model.json").write_text("{}")
    (model / "code" / "inference.py").write_text("# handler")
    first = pack_directory(model, tmp_path / "one" / "model.tar.gz").read_bytes()
    (model / "model.json").touch()  # a newer mtime must not change the bytes
    assert pack_directory(model, tmp_path / "two" / "model.tar.gz").read_bytes() == first
    assert not list((tmp_path / "one").glob("*.partial"))
