"""What one training run is asked to do: hyperparameters, paths and the process's place in a job.

Everything comes from SageMaker script mode's contract (``--name value`` arguments, ``SM_*``
environment variables, ``/opt/ml/checkpoints``) and every path can be overridden by an argument,
so the same entry runs in a SageMaker container, on EC2 and on a laptop. Precedence: argument,
then environment, then default. Import-light (no torch): launchers import it too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from training.errors import ConfigError

ARCH_CHOICES = ("resnet18", "resnet50")
LR_SCHEDULES = ("cosine", "constant")
ON_BAD_IMAGE = ("skip", "fail")
NONE_WORDS = ("", "none", "null")
# Where the SageMaker container mounts the checkpoint prefix it syncs with S3.
SAGEMAKER_CHECKPOINT_DIR = Path("/opt/ml/checkpoints")
# The training job's name, set by SageMaker in the container (sagemaker-training-toolkit params.py).
# Every trial of a tuning job gets the tuning job's CheckpointConfig.S3Uri unchanged, so each job
# checkpoints (and resumes) under its own folder: /opt/ml/checkpoints/<job name>/.
TRAINING_JOB_ENV = "TRAINING_JOB_NAME"


def _hp(default: object, help: str, choices: Sequence[str] | None = None) -> object:
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class Hyperparameters:
    """Every hyperparameter the entry accepts (``--name value``; booleans as true/false)."""

    arch: str = _hp("resnet18", "backbone architecture", ARCH_CHOICES)
    head_hidden: int = _hp(256, "hidden width of the head Linear -> ReLU -> Linear(num_classes)")
    weights: str | None = _hp(None, "torchvision weights name (e.g. IMAGENET1K_V1) or null (random init; offline)")
    freeze_backbone: bool = _hp(False, "train the head only (the backbone's BatchNorm statistics stay fixed too)")
    image_size: int = _hp(64, "images are resized to image_size x image_size")
    epochs: int = _hp(3, "maximum number of epochs")
    batch_size: int = _hp(64, "batch size per process")
    learning_rate: float = _hp(2e-3, "AdamW learning rate (peak of the schedule)")
    weight_decay: float = _hp(1e-4, "AdamW weight decay")
    lr_schedule: str = _hp("cosine", "per-step learning-rate schedule", LR_SCHEDULES)
    patience: int = _hp(3, "early stopping: epochs without a better validation loss before stopping (0: never)")
    min_delta: float = _hp(0.0, "early stopping: the smallest decrease of validation loss that counts")
    seed: int = _hp(42, "seed of initialisation, shuffling and augmentation (same seed, same metrics)")
    augment: bool = _hp(False, "random flips and shifts of training images")
    num_workers: int = _hp(0, "processes decoding images (once, before the first epoch)")
    channels_last: bool = _hp(True, "channels_last memory format (about 1.5x faster convolutions on CPU)")
    compile: bool = _hp(False, "torch.compile the network (pays off only after a few epochs)")
    bf16: bool = _hp(False, "bfloat16 autocast (several times slower on CPUs without bf16 hardware)")
    feature_cache: bool = _hp(True, "with a frozen backbone and no augmentation, compute backbone features once")
    on_bad_image: str = _hp("skip", "an unreadable image is skipped and counted, or fails the run", ON_BAD_IMAGE)
    train_split: str = _hp("train", "name of the training split folder")
    valid_split: str = _hp("valid", "name of the validation split folder")
    test_split: str = _hp("test", "name of the test split folder")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise ConfigError(f"--{f.name}: {getattr(self, f.name)!r} is not one of {list(choices)}")
        _positive("epochs", self.epochs)
        _positive("batch_size", self.batch_size)
        _positive("head_hidden", self.head_hidden)
        _positive("learning_rate", self.learning_rate)
        if self.image_size < 8:
            raise ConfigError(f"--image_size: {self.image_size} is too small (at least 8)")
        for name in ("weight_decay", "patience", "min_delta", "num_workers"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name}: {getattr(self, name)} must not be negative")

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"--{name}: {value} must be positive")


@dataclass(frozen=True)
class DataLocation:
    """Where the ImageFolder splits are: one root holding them, or one folder per split."""

    root: str | None = None  # local folder or s3:// URI holding train/ valid/ test/
    train: str | None = None
    valid: str | None = None
    test: str | None = None


@dataclass(frozen=True)
class RunPaths:
    data: DataLocation
    model_dir: Path
    output_dir: Path | None
    checkpoint_dir: Path | None
    cache_dir: Path  # where an s3:// dataset is synced down


@dataclass(frozen=True)
class ProcessPlace:
    """This process's place in the job: torchrun's variables, SageMaker's hosts."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    hosts: tuple[str, ...] = ()
    current_host: str = ""
    num_cpus: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_primary(self) -> bool:
        """Only one process writes artifacts: rank 0 of a DDP job, or the first of independent hosts."""
        if self.distributed or not self.hosts:
            return self.rank == 0
        return self.current_host == sorted(self.hosts)[0]

    @property
    def threads(self) -> int:
        # Processes sharing a host share its cores; oversubscription makes every one slower.
        return max(1, self.num_cpus // max(1, self.local_world_size))


@dataclass(frozen=True)
class RunSpec:
    hyperparameters: Hyperparameters
    paths: RunPaths
    place: ProcessPlace


def parse_bool(text: str) -> bool:
    """SageMaker sends every hyperparameter as a string: "true"/"false" (any case), 1/0, yes/no."""
    lowered = str(text).strip().lower()
    if lowered in ("true", "1", "yes", "y", "on"):
        return True
    if lowered in ("false", "0", "no", "n", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean (true/false)")


def _optional_str(text: str) -> str | None:
    return None if str(text).strip().lower() in NONE_WORDS else str(text)


def _converter(name: str) -> typing.Callable[[str], object]:
    hint = typing.get_type_hints(Hyperparameters)[name]
    if hint is bool:
        return parse_bool
    if hint is int:
        return lambda text: int(float(text)) if float(text).is_integer() else int(text)
    if hint is float:
        return float
    if isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint):
        return _optional_str
    return str


def _convert(name: str, value: object) -> object:
    """Arguments are strings; SM_HPS values are JSON (numbers, booleans, null) or strings."""
    text = "null" if value is None else value if isinstance(value, str) else str(value)
    try:
        return _converter(name)(text)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--{name}: cannot read {value!r}: {exc}") from None


PATH_ARGUMENTS = {
    "data_dir": "dataset root holding the split folders, local or s3:// (default: $SM_CHANNEL_TRAINING, "
    "or $SM_CHANNEL_TRAIN/$SM_CHANNEL_VALID/$SM_CHANNEL_TEST)",
    "model_dir": "where model.pth, model.json and code/ are written (default: $SM_MODEL_DIR)",
    "output_dir": "where metrics.json (per-epoch history) is written (default: $SM_OUTPUT_DATA_DIR)",
    "checkpoint_dir": "checkpoint every epoch here and resume from it (default: /opt/ml/checkpoints, "
    "i.e. the checkpoints folder beside $SM_MODEL_DIR, when it exists, in a folder named "
    "$TRAINING_JOB_NAME when that is set; 'none' disables)",
    "cache_dir": "where an s3:// dataset is synced down (default: a folder in the temp dir)",
}

EPILOG = """\
SageMaker script-mode contract:
  hyperparameters   --name value (booleans as true/false); $SM_HPS (JSON) fills the ones not given
  data              $SM_CHANNEL_TRAINING/{train,valid,test}/<class>/<images>, or one channel per
                    split ($SM_CHANNEL_TRAIN, $SM_CHANNEL_VALID, $SM_CHANNEL_TEST)
  model             $SM_MODEL_DIR: model.pth, model.json, code/ (SageMaker packs it as model.tar.gz)
  output            $SM_OUTPUT_DATA_DIR: metrics.json; on failure the reason goes to ../failure
  checkpoints       /opt/ml/checkpoints/$TRAINING_JOB_NAME (or /opt/ml/checkpoints without a job
                    name): one checkpoint per epoch, resumed when present
  distribution      WORLD_SIZE/RANK/LOCAL_RANK (torchrun) -> DistributedDataParallel over gloo;
                    $SM_HOSTS/$SM_CURRENT_HOST name the hosts; only the primary process writes
Every path has an argument that wins over its variable, so plain paths work on EC2 or a laptop.

Metric lines on stdout (SageMaker metric definitions):
  Train Loss: <float>, Validation Loss: <float>, Validation Accuracy: <float>   every epoch
  Testing Loss: <float>, Testing Accuracy: <float>                              at the end
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train an image classifier (torchvision ResNet) on ImageFolder splits, the same way "
        "in a SageMaker training job, on EC2 or locally.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    hp = parser.add_argument_group("hyperparameters")
    for f in dataclasses.fields(Hyperparameters):
        default = f.default if f.default is not None else "null"
        if isinstance(default, bool):
            default = str(default).lower()
        choices = f.metadata.get("choices")
        extra = f"; one of {', '.join(choices)}" if choices else ""
        hp.add_argument(f"--{f.name}", metavar=f.name.upper() if not isinstance(f.default, bool) else "BOOL",
                        help=f"{f.metadata['help']} (default: {default}{extra})")
    paths = parser.add_argument_group("paths")
    for name, text in PATH_ARGUMENTS.items():
        paths.add_argument(f"--{name}", metavar="PATH", help=text)
    return parser


def _sm_hps(env: Mapping[str, str]) -> dict[str, object]:
    raw = env.get("SM_HPS")
    if not raw:
        return {}
    try:
        decoded = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"SM_HPS is not JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise ConfigError("SM_HPS must be a JSON object of hyperparameters")
    return decoded


def parse_run_args(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> RunSpec:
    """Arguments win over environment variables, which win over defaults."""
    env = os.environ if env is None else env
    parser = build_parser()
    known, unknown = parser.parse_known_args(list(argv) if argv is not None else None)
    # SageMaker adds its own sagemaker_* hyperparameters; anything else unknown is a typo.
    stray = [a for a in unknown if a.startswith("--") and not a[2:].split("=")[0].startswith("sagemaker_")]
    if stray:
        raise ConfigError(f"unknown argument {stray[0]} (see python -m training --help)")
    given = vars(known)
    hp_names = {f.name for f in dataclasses.fields(Hyperparameters)}
    values: dict[str, object] = {}
    for name, value in _sm_hps(env).items():
        if name in hp_names:
            values[name] = _convert(name, value)
    for name in hp_names & given.keys():
        values[name] = _convert(name, given[name])
    hyperparameters = Hyperparameters(**values)
    return RunSpec(hyperparameters, _resolve_paths(given, env), process_place(env))


def _resolve_paths(given: Mapping[str, str], env: Mapping[str, str]) -> RunPaths:
    if "data_dir" in given:
        data = DataLocation(root=given["data_dir"])
    elif env.get("SM_CHANNEL_TRAINING"):
        data = DataLocation(root=env["SM_CHANNEL_TRAINING"])
    elif env.get("SM_CHANNEL_TRAIN"):
        valid = env.get("SM_CHANNEL_VALID") or env.get("SM_CHANNEL_VALIDATION")
        if not valid:
            raise ConfigError("SM_CHANNEL_TRAIN is set but SM_CHANNEL_VALID is not: give a 'valid' channel")
        if not env.get("SM_CHANNEL_TEST"):
            raise ConfigError("SM_CHANNEL_TRAIN is set but SM_CHANNEL_TEST is not: give a 'test' channel")
        data = DataLocation(train=env["SM_CHANNEL_TRAIN"], valid=valid, test=env["SM_CHANNEL_TEST"])
    else:
        raise ConfigError("no dataset: pass --data_dir or set SM_CHANNEL_TRAINING")

    model_dir = given.get("model_dir") or env.get("SM_MODEL_DIR")
    if not model_dir:
        raise ConfigError("no model directory: pass --model_dir or set SM_MODEL_DIR")
    output_dir = given.get("output_dir") or env.get("SM_OUTPUT_DATA_DIR")

    if "checkpoint_dir" in given:
        checkpoint_dir = _optional_str(given["checkpoint_dir"])
    else:
        # In the container SM_MODEL_DIR is /opt/ml/model, so its sibling is /opt/ml/checkpoints; the
        # folder exists only when the job has a checkpoint configuration.
        candidates = [Path(env["SM_MODEL_DIR"]).parent / "checkpoints"] if env.get("SM_MODEL_DIR") else []
        candidates.append(SAGEMAKER_CHECKPOINT_DIR)
        checkpoint_dir = next((str(c) for c in candidates if c.is_dir()), None)
        if checkpoint_dir and env.get(TRAINING_JOB_ENV):
            checkpoint_dir = str(Path(checkpoint_dir) / job_folder(env[TRAINING_JOB_ENV]))

    cache_dir = given.get("cache_dir") or str(Path(env.get("TMPDIR", "/tmp")) / "sagegate-data")
    return RunPaths(
        data=data,
        model_dir=Path(model_dir),
        output_dir=Path(output_dir) if output_dir else None,
        checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None,
        cache_dir=Path(cache_dir),
    )


def job_folder(job_name: str) -> str:
    """The job's checkpoint folder name: the job name itself, refused if it is not one path part."""
    if not job_name or job_name in (".", "..") or "/" in job_name or "\\" in job_name:
        raise ConfigError(f"{TRAINING_JOB_ENV}={job_name!r} is not a training job name")
    return job_name


def process_place(env: Mapping[str, str]) -> ProcessPlace:
    def integer(name: str, default: int) -> int:
        try:
            return int(env.get(name, default))
        except ValueError:
            raise ConfigError(f"environment variable {name}={env.get(name)!r} is not an integer") from None

    hosts: tuple[str, ...] = ()
    if env.get("SM_HOSTS"):
        try:
            hosts = tuple(json.loads(env["SM_HOSTS"]))
        except (json.JSONDecodeError, TypeError):
            raise ConfigError(f"SM_HOSTS={env['SM_HOSTS']!r} is not a JSON list of host names") from None
    world_size = integer("WORLD_SIZE", 1)
    place = ProcessPlace(
        rank=integer("RANK", 0),
        world_size=world_size,
        local_rank=integer("LOCAL_RANK", 0),
        local_world_size=integer("LOCAL_WORLD_SIZE", world_size if not hosts else 1),
        hosts=hosts,
        current_host=env.get("SM_CURRENT_HOST", ""),
        num_cpus=integer("SM_NUM_CPUS", os.cpu_count() or 1),
    )
    if not 0 <= place.rank < place.world_size:
        raise ConfigError(f"RANK={place.rank} is outside WORLD_SIZE={place.world_size}")
    if hosts and place.current_host and place.current_host not in hosts:
        raise ConfigError(f"SM_CURRENT_HOST={place.current_host!r} is not in SM_HOSTS={list(hosts)}")
    return place
