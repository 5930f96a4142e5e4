"""The training loop: one function that turns a model name, settings and data into a run directory.

    train(model_name, settings, *, model=None, model_kwargs=None, recipe=None, data=None,
          out=None, runs_root="runs", device="auto", quiet=False, data_dir=None, download=False,
          input_shape=None, param_groups=None, frozen=(), source=None, resume=None) -> RunResult

- `model_name`: zoo name, written to config.json so `rundir.load_model` can rebuild the model.
- `settings`: `TrainSettings` (see `settings.resolve_settings` for recipe + overrides).
- `model`: a pre-built model (finetuning); its architecture must be what
  `cnnlab.create(model_name, **model_kwargs)` builds, since that is how the run is reloaded.
  Without it the zoo builds one with `num_classes` (from the data) and `in_channels` (from
  `input_shape`) unless `model_kwargs` says otherwise.
- `data`: loaders as `cnnlab.data.loaders.build_loaders` returns them; built from the settings
  when None.
- `param_groups`: optimizer groups, dicts with "params" and an optional "lr_mult" (the group's lr
  is settings.lr * lr_mult under every schedule). Default: all parameters, multiplier 1.
- `frozen`: modules whose parameters are not trained and which stay in eval mode (BatchNorm
  statistics and dropout fixed) while the rest trains.
- `source`: stored as config.json's "source" (finetune: where the starting weights came from).
- `resume`: a run directory; the run continues from its last checkpoint with its own settings
  (only `epochs`/`max_steps`/`threads` may change), bit for bit as if never interrupted on CPU.

Under `torchrun` each rank trains on its shard of every global batch (`settings.batch_size` is the
global batch); only rank 0 writes the run directory.
"""

from __future__ import annotations

import contextlib
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

from cnnlab import rundir
from cnnlab.errors import CnnlabError
from cnnlab.training import distributed
from cnnlab.training.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from cnnlab.training.metrics import Running, evaluate, logits_of
from cnnlab.training.optim import Schedule, build_optimizer
from cnnlab.training.progress import EpochBar, epoch_line, print_line
from cnnlab.training.settings import TrainSettings

EXTENDABLE = ("epochs", "max_steps", "threads")  # the settings a resumed run may change


class TrainingDiverged(CnnlabError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class RunResult:
    run_dir: Path | None  # None on ranks other than 0
    model: nn.Module
    history: list[dict] = field(default_factory=list)  # the metrics records of this process's epochs
    best: dict | None = None  # {"epoch", "metric", "value"} of the best checkpoint


def versions() -> dict:
    import torchvision

    from cnnlab import __version__

    return {"cnnlab": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(), "numpy": np.__version__}


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto" is bf16 autocast on CUDA and fp32 elsewhere (CPU bf16 is slower and less exact)."""
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast_for(precision: str, device: torch.device):
    """A factory of autocast contexts for the precision (fp32: no autocast)."""
    if precision == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


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


def gather_rng_states(device: torch.device) -> list[dict]:
    """Every rank's RNG state (rank order), so a resumed DDP run continues each rank's stream."""
    state = rng_state(device)
    if not (torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1):
        return [state]
    states = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(states, {k: v.cpu() if torch.is_tensor(v) else v for k, v in state.items()})
    return states


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def settings_for_resume(saved: dict, requested: TrainSettings | None, explicit: set[str]) -> TrainSettings:
    """The run's own settings; of those the caller set explicitly only epochs/max_steps may differ."""
    settings = TrainSettings.from_dict(saved, "config.json train")
    if requested is None:
        return settings
    changed = sorted(
        name for name in explicit if name not in EXTENDABLE and getattr(requested, name) != getattr(settings, name)
    )
    if changed:
        raise CnnlabError(f"a resumed run keeps its settings; drop --{', --'.join(n.replace('_', '-') for n in changed)} "
                          "(only --epochs, --max-steps and --threads may change)")
    return settings.replace(**{name: getattr(requested, name) for name in EXTENDABLE if name in explicit}).validate()


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
    )


def read_trainer_checkpoint(run) -> tuple[dict, dict]:
    """(weights, trainer state) of a run's last checkpoint, refusing one 'cnnlab train' did not write."""
    model_state, state = load_checkpoint(run, "last")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CnnlabError(f"{run}: the checkpoint was not written by 'cnnlab train' (no {FORMAT} marker)")
    return model_state, state


def end_of_run(run_dir: Path, model: nn.Module, config: dict, data_dir=None, quiet: bool = False) -> None:
    """Everything that turns a finished run into something to read: the analyzer's table
    (summary.md) and the report. The one place for end-of-run hooks (rank 0 only)."""
    from cnnlab.analysis import render, summary
    from cnnlab.viz import write_report

    (run_dir / "summary.md").write_text(render(summary(model, tuple(config["input_shape"])), "md"))
    write_report(run_dir, data_dir)


def train(
    model_name: str,
    settings: TrainSettings | None = None,
    *,
    model: nn.Module | None = None,
    model_kwargs: dict | None = None,
    recipe: str | None = None,
    data=None,
    out=None,
    runs_root="runs",
    device: str = "auto",
    quiet: bool = False,
    data_dir=None,
    download: bool = False,
    input_shape=None,
    param_groups: list[dict] | None = None,
    frozen=(),
    source=None,
    resume=None,
    explicit: set[str] = frozenset(EXTENDABLE),
) -> RunResult:
    """Train and write a run directory (see the module docstring). `explicit`: the setting names
    the user gave (for resume: which of them must match the saved run)."""
    from cnnlab.models import card, resolve

    model_name = resolve(model_name)
    config = None
    if resume is not None:
        config = rundir.read_config(resume)
        if resolve(config["model"]) != model_name:
            raise CnnlabError(f"{resume} trained {config['model']}, not {model_name}: resume it as "
                              f"'cnnlab train {config['model']} --resume {resume}'")
        settings = settings_for_resume(config["train"], settings, set(explicit))
        model_kwargs = config["model_kwargs"] if model_kwargs is None else model_kwargs
        input_shape = config["input_shape"]
        recipe, source = config.get("recipe"), config.get("source")
        checkpoint = read_trainer_checkpoint(resume)  # fail now, before any work, if not ours or unreadable
    elif out is not None and Path(out).exists():
        raise CnnlabError(f"output folder {out} already exists: choose another --out, or --resume {out}")
    settings = (settings or TrainSettings()).validate()
    input_shape = tuple(input_shape or card(model_name).input_shape)

    place = distributed.setup(device)
    threads_before = torch.get_num_threads()
    if place.device.type == "cpu" and settings.threads:
        torch.set_num_threads(settings.threads)  # for this run only: restored below
    try:
        precision = resolve_precision(settings.precision, place.device)
        if place.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        seed_everything(settings.seed)
        if data is None:
            data = build_data(settings, input_shape, place, data_dir, download)
        if model_kwargs is None:
            model_kwargs = default_model_kwargs(model_name, len(data.classes), input_shape)
        if model is None:
            from cnnlab.models import create

            model = create(model_name, **model_kwargs)
        seed_everything(settings.seed + place.rank)  # dropout differs across ranks, repeats across runs

        trainer = _Trainer(model, settings, data, place, precision, param_groups, frozen, quiet or not place.is_main)
        if config is None:
            config = {
                "model": model_name,
                "model_kwargs": model_kwargs,
                "input_shape": list(input_shape),
                "dataset": {**data.describe(), "classes": list(data.classes), "mean": list(data.mean),
                            "std": list(data.std)},
                "train": settings.to_dict(),
                "recipe": recipe,
                "seed": settings.seed,
                "device": str(place.device),
                "precision": precision,
                "world_size": place.world_size,
                "versions": versions(),
                "source": source,
            }
            run_dir = rundir.new_run_dir(out, model_name, settings.dataset, runs_root) if place.is_main else None
        else:
            config["train"] = settings.to_dict()
            run_dir = Path(resume) if place.is_main else None
            trainer.load(*checkpoint, resume)
        if run_dir is not None:
            rundir.write_config(run_dir, config)
        result = trainer.fit(run_dir)
        if run_dir is not None:
            end_of_run(run_dir, trainer.net, config, data_dir, quiet)
    finally:
        distributed.teardown()
        torch.set_num_threads(threads_before)
    return result


class _Trainer:
    """The state of one run: model, optimizer, schedule, counters; `fit` runs the epochs."""

    def __init__(self, model, settings: TrainSettings, data, place, precision, param_groups, frozen, quiet):
        self.settings, self.data, self.place, self.quiet = settings, data, place, quiet
        self.device = place.device
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
        groups = param_groups or [{"params": list(model.parameters())}]
        self.optimizer = build_optimizer(groups, settings, self.device)
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

    # --- checkpoints -------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "format": FORMAT,
            "epoch": self.epoch,
            "step": self.step,
            "elapsed": self.elapsed,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "best": self.best,
            "rng": gather_rng_states(self.device),
        }

    def load(self, model_state: dict, state: dict, run) -> None:
        try:
            self.net.load_state_dict(model_state)
        except RuntimeError as error:
            raise CnnlabError(f"{run}: checkpoint weights do not fit the model ({str(error).splitlines()[0]})") from None
        self.optimizer.load_state_dict(state["optimizer"])  # moves its tensors to the parameters' device
        self.schedule.load_state_dict(state["schedule"])
        self.epoch, self.step, self.elapsed, self.best = state["epoch"], state["step"], state["elapsed"], state["best"]
        rngs = state["rng"]
        set_rng_state(rngs[self.place.rank] if len(rngs) == self.place.world_size else rngs[0], self.device)

    def save(self, run_dir: Path, improved: bool) -> None:
        weights, state = self.net.state_dict(), self.state()  # every rank joins the RNG gather
        if run_dir is None:
            return
        checkpoints = run_dir / rundir.CHECKPOINTS
        save_checkpoint(checkpoints, "last", weights, state)
        if improved:
            save_checkpoint(checkpoints, "best", weights, state)

    # --- the loop ----------------------------------------------------------------------------
    def set_train_mode(self) -> None:
        self.net.train()
        for module in self.frozen:
            module.eval()

    def check_finite(self, reading: dict, epoch_start_step: int, run_dir) -> None:
        if reading["first_nonfinite"] is None:
            return
        step = epoch_start_step + reading["first_nonfinite"] + 1
        where = f" in {run_dir / rundir.CHECKPOINTS}" if run_dir else ""
        kept = f"the last good checkpoint (epoch {self.epoch}) is kept{where}" if self.epoch else "no epoch had finished"
        raise TrainingDiverged(f"the loss became NaN or infinite at epoch {self.epoch + 1}, step {step}: training "
                               f"stopped; {kept} (try a lower --lr or --warmup)")

    def train_epoch(self, run_dir) -> tuple[dict, float]:
        self.data.train.set_epoch(self.epoch)
        self.set_train_mode()
        running = Running(self.device)
        bar = EpochBar(self.epoch + 1, self.epochs, min(self.steps_per_epoch, self.total_steps - self.step), self.quiet)
        start_step, started = self.step, time.perf_counter()
        interval = self.settings.log_interval
        lr = self.settings.lr * self.schedule.factor(self.step)
        try:
            for x, y in self.data.train:
                if self.step >= self.total_steps:
                    break
                lr = self.schedule.apply(self.optimizer, self.step)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with self.autocast():
                    output = self.forward(x)
                    loss = self.loss_fn(output, y)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                running.update(loss, logits_of(output), y)
                self.step += 1
                bar.advance()
                if (self.step - start_step) % interval == 0:
                    reading = running.read()
                    self.check_finite(reading, start_step, run_dir)
                    bar.show(loss=reading["loss"], top1=reading["top1"],
                             images_per_s=reading["images"] / (time.perf_counter() - started))
            reading = running.read()
        finally:
            bar.close()
        self.check_finite(reading, start_step, run_dir)
        seconds = time.perf_counter() - started
        reading["images_per_s"] = reading["images"] / seconds
        return reading, lr

    def fit(self, run_dir: Path | None) -> RunResult:
        history = []
        began = time.perf_counter() - self.elapsed
        while self.epoch < self.epochs and self.step < self.total_steps:
            train, lr = self.train_epoch(run_dir)
            val = self.evaluate(self.data.val)
            test = self.evaluate(self.data.test)
            self.epoch += 1
            self.schedule.end_epoch(val["loss"] if val else train["loss"])
            improved = self.improve(train, val)
            self.elapsed = time.perf_counter() - began
            records = [self.record("train", train, lr=lr, images_per_s=train["images_per_s"])]
            records += [self.record(name, split) for name, split in (("val", val), ("test", test)) if split]
            history += records
            self.save(run_dir, improved)
            if run_dir is not None:
                for record in records:
                    rundir.append_metrics(run_dir, record)
                print_line(epoch_line(epoch=self.epoch, epochs=self.epochs, train=train, val=val, test=test, lr=lr,
                                      seconds=self.elapsed, images_per_s=train["images_per_s"]), self.quiet)
        return RunResult(run_dir, self.net, history, self.best)

    def evaluate(self, loader) -> dict | None:
        if loader is None:
            return None
        return evaluate(self.net, loader, len(self.data.classes), self.autocast, self.channels_last)

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
