"""The training loop: correct by construction, reproducible, resumable, distributed, fast on CPU.

- Losses and accuracies are sums over samples divided by sample counts (summed over ranks).
- Train, validation and test are separate splits; test is touched once, by the best epoch's model.
- Early stopping on validation loss with patience; the best epoch's weights are restored.
- Same seed, same metrics: initialisation, shuffling and augmentation are all seeded per epoch,
  so a run resumed from a checkpoint ends exactly where an uninterrupted one does.
- With a frozen backbone and no augmentation the backbone's output never changes, so it is
  computed once and every epoch trains the head alone on cached features.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from training import metrics
from training.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from training.config import Hyperparameters, ProcessPlace
from training.data import Splits, augment_batch, normalizer
from training.distributed import all_sum, gather_shards, shard
from training.model import IMAGENET_MEAN, IMAGENET_STD

# Hyperparameters that change speed but not the numbers: a checkpoint stays valid across them.
SPEED_ONLY = ("num_workers", "compile", "channels_last", "feature_cache")


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    valid_loss: float
    valid_accuracy: float
    seconds: float
    images_per_second: float


@dataclass
class FitResult:
    history: list[EpochRecord]
    best_epoch: int
    best_valid_loss: float
    best_valid_accuracy: float
    test_loss: float
    test_accuracy: float
    stopped_early: bool
    epochs_run: int
    resumed_from_epoch: int
    train_seconds: float
    used_feature_cache: bool
    extra: dict[str, float] = field(default_factory=dict)

    def metrics(self) -> dict[str, float | int | bool]:
        last = self.history[-1] if self.history else None
        return {
            "test_loss": self.test_loss,
            "test_accuracy": self.test_accuracy,
            "best_epoch": self.best_epoch,
            "best_valid_loss": self.best_valid_loss,
            "best_valid_accuracy": self.best_valid_accuracy,
            "final_train_loss": last.train_loss if last else math.nan,
            "epochs_run": self.epochs_run,
            "stopped_early": self.stopped_early,
            "train_seconds": round(self.train_seconds, 3),
            **self.extra,
        }


@dataclass
class _Task:
    """What the optimiser trains and on which inputs (images, or cached backbone features)."""

    learned: nn.Module  # the part whose weights change (the head alone when the backbone is frozen)
    step_model: nn.Module  # what a training step calls (DDP- or compile-wrapped)
    eval_model: nn.Module
    inputs: dict[str, torch.Tensor]
    prepare: Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]


def fingerprint(hp: Hyperparameters, classes: tuple[str, ...], place: ProcessPlace) -> dict:
    """What a checkpoint must match to be resumed: everything that changes the numbers."""
    values = {k: v for k, v in hp.to_dict().items() if k not in SPEED_ONLY}
    return {**values, "classes": list(classes), "world_size": place.world_size}


def fit(
    net: nn.Module,
    splits: Splits,
    hp: Hyperparameters,
    place: ProcessPlace,
    checkpoint_dir: Path | None,
    say: Callable[[str], None],
) -> FitResult:
    """Train ``net`` in place; on return it holds the best epoch's weights."""
    started = time.perf_counter()
    memory_format = torch.channels_last if hp.channels_last else torch.contiguous_format
    net.to(memory_format=memory_format)
    autocast = _autocast(hp.bf16)
    labels = {"train": splits.train.labels, "valid": splits.valid.labels, "test": splits.test.labels}
    task = _build_task(net, splits, hp, place, memory_format, autocast, say)
    criterion = nn.CrossEntropyLoss()  # every class index is a real class: no ignore_index

    optimizer = torch.optim.AdamW(
        [p for p in task.learned.parameters() if p.requires_grad], lr=hp.learning_rate, weight_decay=hp.weight_decay
    )
    steps_per_epoch = len(_train_batches(len(labels["train"]), hp, place, epoch=1))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(hp, steps_per_epoch * hp.epochs))

    history: list[EpochRecord] = []
    best = {"epoch": 0, "valid_loss": math.inf, "valid_accuracy": 0.0}
    best_state = _clone(task.learned.state_dict())
    bad_epochs, stopped, first_epoch = 0, False, 1
    marks = fingerprint(hp, splits.classes, place)
    saved = load_checkpoint(checkpoint_dir, marks) if checkpoint_dir else None
    if saved is not None:
        task.learned.load_state_dict(saved["learned"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        best_state, best = saved["best_state"], saved["best"]
        bad_epochs, stopped, first_epoch = saved["bad_epochs"], saved["stopped"], saved["epoch"] + 1
        history = [EpochRecord(**record) for record in saved["history"]]
        say(f"resuming from {checkpoint_path(checkpoint_dir)}: {saved['epoch']} of {hp.epochs} epochs done")

    for epoch in range(first_epoch, hp.epochs + 1):
        if stopped:
            break
        say(f"Epoch {epoch}/{hp.epochs}")
        tick = time.perf_counter()
        train_loss, seen = _train_epoch(task, labels["train"], hp, place, epoch, optimizer, scheduler, criterion, autocast)
        train_seconds = time.perf_counter() - tick
        valid_loss, valid_accuracy = _evaluate(task, "valid", labels["valid"], hp, place, criterion, autocast)
        say(metrics.metric_line(metrics.TRAIN_LOSS, train_loss))
        say(metrics.metric_line(metrics.VALIDATION_LOSS, valid_loss))
        say(metrics.metric_line(metrics.VALIDATION_ACCURACY, valid_accuracy))
        record = EpochRecord(epoch, train_loss, valid_loss, valid_accuracy, round(time.perf_counter() - tick, 3),
                             round(seen / max(train_seconds, 1e-9), 1))
        history.append(record)
        if valid_loss < best["valid_loss"] - hp.min_delta:
            best = {"epoch": epoch, "valid_loss": valid_loss, "valid_accuracy": valid_accuracy}
            best_state = _clone(task.learned.state_dict())
            bad_epochs = 0
        else:
            bad_epochs += 1
        if hp.patience and bad_epochs >= hp.patience and epoch < hp.epochs:
            stopped = True
            say(f"early stopping after epoch {epoch}: no better validation loss for {bad_epochs} epoch(s); "
                f"best epoch {best['epoch']}")
        say(f"epoch {epoch} done in {record.seconds:.1f} s ({record.images_per_second:.0f} img/s training)")
        if checkpoint_dir is not None and place.is_primary:
            save_checkpoint(checkpoint_dir, {
                "fingerprint": marks, "epoch": epoch, "learned": task.learned.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "best_state": best_state, "best": best, "bad_epochs": bad_epochs, "stopped": stopped,
                "history": [asdict(r) for r in history],
            })

    task.learned.load_state_dict(best_state)
    test_loss, test_accuracy = _evaluate(task, "test", labels["test"], hp, place, criterion, autocast)
    say(metrics.metric_line(metrics.TESTING_LOSS, test_loss))
    say(metrics.metric_line(metrics.TESTING_ACCURACY, test_accuracy))
    net.to(memory_format=torch.contiguous_format)
    return FitResult(
        history=history,
        best_epoch=best["epoch"],
        best_valid_loss=best["valid_loss"],
        best_valid_accuracy=best["valid_accuracy"],
        test_loss=test_loss,
        test_accuracy=test_accuracy,
        stopped_early=stopped,
        epochs_run=len(history),
        resumed_from_epoch=first_epoch - 1,
        train_seconds=time.perf_counter() - started,
        used_feature_cache=task.learned is not net,
    )


def _autocast(enabled: bool) -> Callable[[], AbstractContextManager]:
    @contextmanager
    def context():
        if enabled:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                yield
        else:
            yield

    return context


def _schedule(hp: Hyperparameters, total_steps: int) -> Callable[[int], float]:
    if hp.lr_schedule == "constant":
        return lambda step: 1.0
    # Cosine decay to zero over the planned steps: large steps early, fine ones at the end.
    return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps)))


def _clone(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state.items()}


def _build_task(net, splits, hp, place, memory_format, autocast, say) -> _Task:
    to_input = normalizer(IMAGENET_MEAN, IMAGENET_STD)
    images = {"train": splits.train.images, "valid": splits.valid.images, "test": splits.test.images}
    if hp.freeze_backbone and not hp.augment and hp.feature_cache:
        say("frozen backbone, no augmentation: computing backbone features once")
        features = {
            role: backbone_features(net, batch, to_input, memory_format, place, autocast, _eval_batch(hp))
            for role, batch in images.items()
        }
        learned: nn.Module = net.fc
        return _Task(learned, _wrap(learned, hp, place), _compiled(learned, hp), features, lambda x, _g: x)

    def prepare(batch: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if generator is not None and hp.augment:
            batch = augment_batch(batch, generator)
        return to_input(batch).contiguous(memory_format=memory_format)

    learned = net.fc if hp.freeze_backbone else net
    return _Task(learned, _wrap(net, hp, place), _compiled(net, hp), images, prepare)


def _wrap(module: nn.Module, hp: Hyperparameters, place: ProcessPlace) -> nn.Module:
    wrapped = DistributedDataParallel(module) if place.distributed else module
    return torch.compile(wrapped) if hp.compile else wrapped


def _compiled(module: nn.Module, hp: Hyperparameters) -> nn.Module:
    # Evaluation never goes through DDP: ranks evaluate different numbers of batches.
    return torch.compile(module) if hp.compile else module


def _eval_batch(hp: Hyperparameters) -> int:
    return min(256, 2 * hp.batch_size)


@torch.no_grad()
def backbone_features(net, images, to_input, memory_format, place, autocast, batch_size) -> torch.Tensor:
    """Pooled backbone output for every image (each rank computes its shard, then all gather)."""
    head = net.fc
    net.fc = nn.Identity()
    net.eval()
    try:
        indices = shard(len(images), place)
        parts = []
        with autocast():
            for chunk in indices.split(batch_size):
                parts.append(net(to_input(images[chunk]).contiguous(memory_format=memory_format)).float())
    finally:
        net.fc = head
    width = head[0].in_features if isinstance(head, nn.Sequential) else head.in_features
    local = torch.cat(parts) if parts else torch.empty((0, width))
    return gather_shards(local, len(images), place)


def _train_batches(count: int, hp: Hyperparameters, place: ProcessPlace, epoch: int) -> list[torch.Tensor]:
    """This rank's batches for one epoch: DistributedSampler's seeded shuffle (also for one process)."""
    sampler = DistributedSampler(range(count), num_replicas=place.world_size, rank=place.rank,
                                 shuffle=True, seed=hp.seed)
    sampler.set_epoch(epoch)
    batches = list(torch.tensor(list(sampler), dtype=torch.int64).split(hp.batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()  # BatchNorm cannot train on a single sample; it is seen in other epochs
    return batches


def _train_epoch(task, labels, hp, place, epoch, optimizer, scheduler, criterion, autocast) -> tuple[float, int]:
    generator = torch.Generator().manual_seed(hp.seed * 1_000_003 + epoch * 7_919 + place.rank)
    task.step_model.train()
    if hp.freeze_backbone:
        task.step_model.eval()  # keeps the frozen backbone's BatchNorm fixed
        task.learned.train()
    loss_sum, count = 0.0, 0
    inputs = task.inputs["train"]
    for batch in _train_batches(len(labels), hp, place, epoch):
        x = task.prepare(inputs[batch], generator)
        y = labels[batch]
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            logits = task.step_model(x)
        loss = criterion(logits.float(), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += loss.item() * len(y)
        count += len(y)
    total_loss, total_count = all_sum([loss_sum, float(count)], place)
    return total_loss / max(total_count, 1.0), int(total_count)


def _evaluate(task, role, labels, hp, place, criterion, autocast) -> tuple[float, float]:
    """Sample-averaged loss and accuracy over the whole split (each rank takes a shard)."""
    model = task.eval_model
    was_training = model.training
    model.eval()
    loss_sum, correct, count = 0.0, 0.0, 0.0
    inputs = task.inputs[role]
    with torch.inference_mode(), autocast():
        for batch in shard(len(labels), place).split(_eval_batch(hp)):
            logits = model(task.prepare(inputs[batch], None)).float()
            y = labels[batch]
            loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(dim=1) == y).sum().item()
            count += len(y)
    model.train(was_training)
    loss_sum, correct, count = all_sum([loss_sum, correct, count], place)
    return loss_sum / max(count, 1.0), correct / max(count, 1.0)

