"""The training loop: `train(spec)` turns a `TrainSpec` into a run directory and returns a result.

The trainer writes only what training owns (through `cnnlab.run`): config.json, metrics.jsonl,
checkpoints/ and predictions.npz, under the run's lock. The command line composes what follows
(the analyzer's summary, the report).

What survives what (docs/training.md has the table):
- every finished epoch's records live in the checkpoint's state ("history") before they are
  appended to metrics.jsonl, and a resume rewrites metrics.jsonl from it, so a kill between the
  two writes, or in the middle of either, loses nothing;
- checkpoints are also written inside an epoch (`spec.checkpoint_every` steps,
  `spec.checkpoint_minutes` of training) with the loader's position, its generator and the
  epoch's running sums, so a resumed run continues bit for bit on the CPU;
- SIGTERM and SIGINT finish the current step, write a checkpoint there and return
  (`RunResult.stopped`); under torchrun every process stops at the same step (`training.control`).

Under torchrun each rank trains on its shard of every global batch (`settings.batch_size` is the
global batch); only rank 0 writes the run directory.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab import run as rundir
from cnnlab.device import autocast_for, resolve_precision, seed_everything
from cnnlab.errors import CnnlabError
from cnnlab.inference import infer, logits_of
from cnnlab.run.checkpoint import FORMAT, check_trainer_state, load_checkpoint, save_checkpoint
from cnnlab.run.layout import refuse_existing_run_dir, remove_stale_temporaries
from cnnlab.run.model import load_weights
from cnnlab.run.predictions import save_predictions
from cnnlab.training import distributed, tensorboard
from cnnlab.training.control import Control, StopSignals
from cnnlab.training.metrics import Running
from cnnlab.training.optim import Schedule, build_optimizer
from cnnlab.training.progress import EpochBar, epoch_line, header_line, print_line
from cnnlab.training.settings import TrainSettings
from cnnlab.training.spec import Start, TrainSpec


class TrainingDiverged(CnnlabError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class RunResult:
    run_dir: Path | None  # None on ranks other than 0
    model: nn.Module
    history: list[dict] = field(default_factory=list)  # every finished epoch's metrics records
    best: dict | None = None  # {"epoch", "metric", "value"} of the best checkpoint
    stopped: int = 0  # the signal (SIGTERM, SIGINT) that stopped the run early; 0 if it finished
    checkpoint: Path | None = None  # the last checkpoint written


def versions() -> dict:
    import torchvision

    from cnnlab import __version__

    return {"cnnlab": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(), "numpy": np.__version__}


def default_model_kwargs(model_name: str, num_classes: int, input_shape) -> dict:
    """num_classes from the data, in_channels from the input when the builder takes it."""
    from cnnlab.models.registry import builder

    kwargs = {"num_classes": num_classes}
    if "in_channels" in inspect.signature(builder(model_name)).parameters:
        kwargs["in_channels"] = int(input_shape[0])
    return kwargs


def criterion(settings: TrainSettings):
    """Cross-entropy with label smoothing; GoogLeNet's auxiliary outputs add aux_weight x theirs."""

    def loss_fn(output, y):
        if isinstance(output, (tuple, list)):
            main, *aux = output
            return F.cross_entropy(main, y, label_smoothing=settings.label_smoothing) + settings.aux_weight * sum(
                F.cross_entropy(a, y, label_smoothing=settings.label_smoothing) for a in aux
            )
        return F.cross_entropy(output, y, label_smoothing=settings.label_smoothing)

    return loss_fn


def rng_state(device: torch.device) -> dict:
    """This process's random number generators, as tensors (checkpoints load with weights_only)."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "python": torch.tensor(random.getstate()[1], dtype=torch.int64),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"].cpu())
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    random.setstate((3, tuple(state["python"].tolist()), None))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def build_data(settings: TrainSettings, input_shape, place: distributed.Place, data_dir, download):
    from cnnlab.data.loaders import build_loaders

    if settings.batch_size % place.world_size:
        raise CnnlabError(f"--batch-size {settings.batch_size} must divide evenly over {place.world_size} processes")
    per_rank = settings.batch_size // place.world_size
    return build_loaders(
        settings.dataset,
        tuple(input_shape),
        per_rank,
        data_dir=data_dir,
        download=download,
        device=place.device,
        augment=tuple(settings.augment),
        val_split=settings.val_split,
        seed=settings.seed,
        rank=place.rank,
        world_size=place.world_size,
        eval_batch_size=settings.eval_batch_size or 4 * per_rank,
        workers=settings.workers,
        train_per_class=settings.train_per_class,
    )


def optimizer_groups(model: nn.Module, start: Start | None) -> tuple[list[dict], list[nn.Module]]:
    """(optimizer groups of parameters, frozen modules) from a transfer plan; all parameters at
    multiplier 1 without one."""
    if start is None:
        return [{"params": list(model.parameters())}], []
    params = dict(model.named_parameters())
    groups = [{"params": [params[name] for name in group["names"]], "lr_mult": group["lr_mult"]}
              for group in start.groups]
    return groups, [model.get_submodule(name) for name in start.frozen]


def new_config(spec: TrainSpec, model_kwargs, input_shape, data, place, precision, start) -> dict:
    config = {
        "model": spec.model,
        "model_kwargs": model_kwargs,
        "input_shape": list(input_shape),
        "dataset": data.describe(),
        "train": spec.settings.to_dict(),
        "recipe": spec.recipe,
        "seed": spec.settings.seed,
        "device": str(place.device),
        "precision": precision,
        "world_size": place.world_size,
        "versions": versions(),
        "source": start.source if start else None,
    }
    if start is not None:
        config["plan"] = start.to_config()
    return config


def train(spec: TrainSpec, *, data=None, start: Start | None = None) -> RunResult:
    """Train as `spec` says (a new run, or `spec.resume` continued) and write the run directory.
    `data`: loaders as `cnnlab.data.loaders.build_loaders` returns them (built from the settings
    when None); `start`: a transfer's starting point (read from config.json on resume)."""
    from cnnlab.models import card, resolve

    spec = dataclasses.replace(spec, model=resolve(spec.model), settings=spec.settings.validate()).validate()
    if spec.tensorboard:
        tensorboard.require()
    config = rundir.read_config(spec.resume) if spec.resume is not None else None
    if start is None and config is not None:
        start = Start.from_config(config)
    if spec.resume is None and spec.out is not None and not distributed.launched():
        refuse_existing_run_dir(spec.out)  # before any work (under torchrun rank 0 checks, in _open)
    input_shape = tuple(spec.input_shape or card(spec.model).input_shape)
    place = distributed.setup(spec.device)
    threads_before = torch.get_num_threads()
    if place.device.type == "cpu" and spec.settings.threads:
        torch.set_num_threads(spec.settings.threads)  # for this run only: restored below
    lock = trainer = None
    try:
        seed_everything(spec.settings.seed)
        if data is None:
            data = build_data(spec.settings, input_shape, place, spec.data_dir, spec.download)
        trainer, model_kwargs = _build(spec, input_shape, data, start, place)
        run_dir, lock = _open(spec, place)
        config = _begin(spec, trainer, run_dir, config or new_config(spec, model_kwargs, input_shape, data, place,
                                                                      trainer.precision, start))
        with StopSignals() as signals:
            control = Control(signals, spec.checkpoint_every, spec.checkpoint_minutes, place.world_size)
            return trainer.fit(run_dir, control)
    finally:
        if trainer is not None and trainer.scalars is not None:
            trainer.scalars.close()
        if lock is not None:
            lock.release()
        distributed.teardown()
        torch.set_num_threads(threads_before)


def _build(spec: TrainSpec, input_shape, data, start: Start | None, place) -> tuple[_Trainer, dict]:
    """The model (the zoo's, or the transfer's prebuilt one) inside a trainer; its builder arguments."""
    from cnnlab.models import create

    model_kwargs = spec.model_kwargs or default_model_kwargs(spec.model, len(data.classes), input_shape)
    model = start.model if start is not None and start.model is not None else create(spec.model, **model_kwargs)
    seed_everything(spec.settings.seed + place.rank)  # dropout differs across ranks, repeats across runs
    groups, frozen = optimizer_groups(model, start)
    precision = resolve_precision(spec.settings.precision, place.device)
    trainer = _Trainer(model, spec.settings, data, place, precision, groups, frozen, spec.quiet or not place.is_main)
    return trainer, model_kwargs


def _open(spec: TrainSpec, place) -> tuple[Path | None, rundir.RunLock | None]:
    """Rank 0 creates (or reopens) the run directory and takes its lock; if it cannot, every rank
    stops, not only the one that failed."""
    run_dir = lock = failure = None
    if place.is_main:
        try:
            run_dir = spec.resume or rundir.new_run_dir(spec.out, spec.model, spec.settings.dataset, spec.runs_root)
            lock = rundir.RunLock(run_dir).acquire()
            remove_stale_temporaries(run_dir)  # left by a process that was killed while writing
        except CnnlabError as error:
            failure = error
    if distributed.any_true(failure is not None, place.device):
        raise failure or CnnlabError("rank 0 could not open the run directory (its error says why)")
    return run_dir, lock


def _begin(spec: TrainSpec, trainer: _Trainer, run_dir: Path | None, config: dict) -> dict:
    """Load the checkpoint of a resumed run, write config.json (and repair metrics.jsonl from the
    checkpoint), print the header line, open TensorBoard. Returns the config."""
    if spec.resume is not None:
        weights, state, folder = load_checkpoint(spec.resume, "last")
        trainer.load(weights, check_trainer_state(state, folder), folder)
        config["train"] = spec.settings.to_dict()
    config["options"] = {name: getattr(spec, name) for name in TrainSpec.OPTIONS}
    if run_dir is None:
        return config
    rundir.write_config(run_dir, config)
    if spec.resume is not None:
        rundir.rewrite_metrics(run_dir, trainer.history)  # drops a torn line, restores a lost epoch
    resumed = f"epoch {trainer.epoch + 1}, step {trainer.step:,}" if spec.resume is not None else None
    print_line(header_line(model=spec.model, parameters=sum(p.numel() for p in trainer.net.parameters()),
                           data=config["dataset"], recipe=config.get("recipe"), device=str(trainer.device),
                           precision=trainer.precision, threads=torch.get_num_threads(), run=str(run_dir),
                           resumed=resumed), spec.quiet)
    if spec.tensorboard:
        trainer.scalars = tensorboard.Scalars(run_dir, trainer.step if spec.resume is not None else None)
    return config


class _Trainer:
    """The state of one run: model, optimizer, schedule, counters; `fit` runs the epochs."""

    def __init__(self, model, settings: TrainSettings, data, place, precision, groups, frozen, quiet):
        self.settings, self.data, self.place, self.quiet, self.precision = settings, data, place, quiet, precision
        self.device = place.device
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.channels_last = self.device.type == "cuda"
        self.autocast = autocast_for(precision, self.device)
        self.frozen = list(frozen)
        for module in self.frozen:
            module.requires_grad_(False)
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if settings.sync_bn and place.world_size > 1:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.net = model  # the plain module: checkpoints, evaluation
        self.forward = model  # what the training step calls: DDP and/or compiled
        if place.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        if settings.compile:
            self.forward = torch.compile(self.forward, mode=None if settings.compile == "default" else settings.compile)
        self.optimizer = build_optimizer(groups, settings, self.device)
        if settings.early_stop is not None and data.val is None:
            raise CnnlabError("--early-stop watches the validation split: add --val-split (e.g. 0.1)")
        self.steps_per_epoch = len(data.train)
        if self.steps_per_epoch == 0:
            raise CnnlabError(f"the training set is smaller than one batch of {settings.batch_size}: lower --batch-size")
        budget = [settings.epochs * self.steps_per_epoch] if settings.epochs else []
        self.total_steps = min(budget + ([settings.max_steps] if settings.max_steps else []))
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        self.schedule = Schedule(settings, self.steps_per_epoch, self.total_steps)
        self.loss_fn = criterion(settings)
        self.epoch, self.step, self.elapsed = 0, 0, 0.0
        self.best: dict | None = None
        self.history: list[dict] = []
        self.running = Running(self.device)  # the current epoch's sums (saved in mid-epoch checkpoints)
        self.position: dict | None = None  # where a resumed epoch continues
        self.checkpoint: Path | None = None
        self.scalars = None  # TensorBoard, when asked for (rank 0)

    # --- checkpoints -------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "format": FORMAT,
            "epoch": self.epoch,
            "step": self.step,
            "elapsed": float(self.elapsed),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "best": self.best,
            "rng": distributed.gather_objects(rng_state(self.device)),
            "history": self.history,
            "position": self.data.train.position() if self.running.steps_taken else None,
            "running": self.running.state_dict(),
        }

    def load(self, weights: dict, state: dict, folder: Path) -> None:
        load_weights(self.net, weights, folder)
        self.optimizer.load_state_dict(state["optimizer"])  # moves its tensors to the parameters' device
        self.schedule.load_state_dict(state["schedule"])
        self.epoch, self.step, self.elapsed, self.best = state["epoch"], state["step"], state["elapsed"], state["best"]
        self.history = list(state["history"])
        rngs = state["rng"]
        set_rng_state(rngs[self.place.rank] if len(rngs) == self.place.world_size else rngs[0], self.device)
        if state.get("position") is not None:  # a checkpoint from inside an epoch
            self.position = state["position"]
            self.running.load_state_dict(state["running"], holds_totals=self.place.is_main)

    def save(self, run_dir: Path | None, names: tuple[str, ...] = ("last",)) -> None:
        weights, state = self.net.state_dict(), self.state()  # every rank joins the RNG gather
        if run_dir is None:
            return
        for name in names:
            self.checkpoint = save_checkpoint(run_dir / rundir.CHECKPOINTS, name, weights, state)

    # --- the loop ----------------------------------------------------------------------------
    def set_train_mode(self) -> None:
        self.net.train()
        for module in self.frozen:
            module.eval()

    def check_finite(self, reading: dict, run_dir) -> None:
        if reading["first_nonfinite"] is None:
            return
        step = self.epoch * self.steps_per_epoch + reading["first_nonfinite"] + 1
        where = f" in {run_dir / rundir.CHECKPOINTS}" if run_dir else ""
        kept = f"the last good checkpoint (epoch {self.epoch}) is kept{where}" if self.epoch else "no epoch had finished"
        raise TrainingDiverged(f"the loss became NaN or infinite at epoch {self.epoch + 1}, step {step}: training "
                               f"stopped; {kept} (try a lower --lr or --warmup)")

    def train_epoch(self, run_dir, control: Control) -> int:
        """Train until the epoch ends or a signal stops it (returns that signal, else 0)."""
        self.data.train.set_epoch(self.epoch, self.position)
        self.position = None
        self.set_train_mode()
        done = self.running.steps_taken
        bar = EpochBar(self.epoch + 1, self.epochs, min(self.steps_per_epoch, self.total_steps - self.step + done),
                       self.quiet, done=done)
        started, interval = time.perf_counter(), self.settings.log_interval
        try:
            for x, y in self.data.train:
                if self.step >= self.total_steps:
                    break
                self.lr = self.schedule.apply(self.optimizer, self.step)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with self.autocast():
                    output = self.forward(x)
                    loss = self.loss_fn(output, y)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.running.update(loss, logits_of(output), y)
                self.step += 1
                bar.advance()
                if self.running.steps_taken % interval == 0:
                    reading = self.running.read()
                    self.check_finite(reading, run_dir)
                    bar.show(loss=reading["loss"], top1=reading["top1"],
                             images_per_s=reading["images"] / max(time.perf_counter() - started, 1e-9))
                stop, due = control.poll(self.step)
                if stop or due:
                    started = self.clock(started)
                    self.save(run_dir)
                    control.checkpointed()
                if stop:
                    return stop
        finally:
            bar.close()
        self.clock(started)
        return 0

    def clock(self, started: float) -> float:
        """Add the training time since `started` to the run's and the epoch's; returns now."""
        now = time.perf_counter()
        self.elapsed += now - started
        self.running.seconds += now - started
        return now

    def stalled(self) -> int | None:
        """Epochs since the best validation top-1, once that reaches --early-stop; else None."""
        patience, best = self.settings.early_stop, self.best
        if patience is None or best is None or best["metric"] != "val_top1":
            return None
        waited = self.epoch - best["epoch"]
        return waited if waited >= patience else None

    def fit(self, run_dir: Path | None, control: Control) -> RunResult:
        self.lr = self.settings.lr * self.schedule.factor(self.step)
        while self.epoch < self.epochs and self.step < self.total_steps and self.stalled() is None:
            stopped = self.train_epoch(run_dir, control)
            if stopped:
                return self.result(run_dir, stopped)
            train = self.running.read()
            self.check_finite(train, run_dir)
            train["images_per_s"] = train["images"] / max(self.running.seconds, 1e-9)
            val = self.evaluate(self.data.val)
            test = self.evaluate(self.data.test, keep_predictions=True)
            self.epoch += 1
            self.schedule.end_epoch(val.metrics["loss"] if val else train["loss"])
            improved = self.improve(train, val and val.metrics)
            records = [self.record("train", train, lr=self.lr, images_per_s=train["images_per_s"])]
            records += [self.record(name, split.metrics) for name, split in (("val", val), ("test", test)) if split]
            self.history += records
            self.running = Running(self.device)
            predictions = distributed.gather_predictions(test)
            if run_dir is not None:  # predictions, then the checkpoint that holds the records, then the records
                save_predictions(run_dir, dataclasses.replace(predictions, epoch=self.epoch, step=self.step))
            self.save(run_dir, ("last", "best") if improved else ("last",))
            control.checkpointed()
            if run_dir is not None:
                rundir.append_metrics(run_dir, records)
                if self.scalars is not None:
                    self.scalars.write(records)
                print_line(epoch_line(epoch=self.epoch, epochs=self.epochs, train=train, val=val and val.metrics,
                                      test=test.metrics, lr=self.lr, seconds=self.elapsed,
                                      images_per_s=train["images_per_s"]), self.quiet)
            stopped = control.settle()
            if stopped:
                return self.result(run_dir, stopped)
        if self.stalled() is not None:
            print_line(f"early stop: no better validation accuracy for {self.stalled()} epochs; the best is epoch "
                       f"{self.best['epoch']} ({100 * self.best['value']:.2f}%)", self.quiet)
        return self.result(run_dir, 0)

    def result(self, run_dir, stopped: int) -> RunResult:
        return RunResult(run_dir, self.net, self.history, self.best, stopped, self.checkpoint)

    def evaluate(self, loader, keep_predictions: bool = False):
        if loader is None:
            return None
        return infer(self.net, loader, len(self.data.classes), autocast=self.autocast,
                     channels_last=self.channels_last, keep_predictions=keep_predictions,
                     reduce=distributed.all_reduce)

    def improve(self, train: dict, val: dict | None) -> bool:
        """Best is chosen on the validation split (top-1), else on training loss; never on test."""
        metric, value = ("val_top1", val["top1"]) if val else ("train_loss", train["loss"])
        best = self.best and self.best["value"]
        if self.best is None or (value > best if val else value < best):
            self.best = {"epoch": self.epoch, "metric": metric, "value": value}
            return True
        return False

    def record(self, split: str, metrics: dict, **extra) -> dict:
        return {"epoch": self.epoch, "step": self.step, "split": split, "loss": metrics["loss"],
                "top1": metrics["top1"], "top5": metrics["top5"], **extra, "time": round(self.elapsed, 3)}
