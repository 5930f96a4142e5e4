"""Turn a wrong input shape into one clear `CnnlabError` instead of a traceback from deep in torch.

`create` installs an `InputGuard` as a forward pre-hook. The hook's fast path is one set lookup:
an input shape (without the batch size) that already worked, or the model's default input shape,
passes straight through. Any other shape is tried once on a weightless meta-device copy of the model
(`cnnlab.models.probe`: no memory, no arithmetic, no user hooks fired); if the model takes it, it is
remembered. Only when it fails does the guard search (again on the meta device) for the smallest
and largest sizes the model accepts, to say so in the message.

Probing the model itself, rather than computing limits from its card, keeps the guard generic
(every family, any `num_classes`/`in_channels`, heads replaced after `create`) and exact.
The guard steps aside while torch.compile, torch.export or jit tracing trace the model; build with
`create(name, guard=False)` to leave it out entirely (e.g. for torch.jit.script).
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.probe import Probe


def _tracing() -> bool:
    compiler = torch.compiler
    return compiler.is_compiling() or compiler.is_exporting() or torch.jit.is_tracing()


def _fmt(shape) -> str:
    return " x ".join(str(d) for d in shape)


class InputGuard:
    """Forward pre-hook: checks a model's input against the shapes the model can take.

    `reference` is an input shape (C, H, W) that the model is built for (its card's default with
    the builder's `in_channels`); `in_channels_hint` says whether the builder takes `in_channels`.
    """

    def __init__(self, name: str, reference: tuple[int, ...], in_channels_hint: bool = False):
        self.name = name
        self.reference = tuple(reference)
        self.in_channels_hint = in_channels_hint
        # (training, input shape without batch) known to work; the model is built for `reference`
        self.accepted: set[tuple] = {(True, self.reference), (False, self.reference)}
        self.inert = False  # set when the model fails on the meta device even at `reference`

    def __call__(self, module: nn.Module, args: tuple):
        if self.inert or not args or not isinstance(args[0], torch.Tensor) or _tracing():
            return
        key = (module.training, tuple(args[0].shape[1:]))
        if key not in self.accepted:
            self._check(module, args[0].shape)
            self.accepted.add(key)

    # -- the slow path, once per new input shape ------------------------------------------------

    def _check(self, module: nn.Module, shape: torch.Size) -> None:
        got = f"got input of shape {tuple(shape)}"
        expected = f"N x {_fmt(self.reference)}"
        if len(shape) != len(self.reference) + 1:
            hint = "; add the batch dimension with x.unsqueeze(0)" if tuple(shape) == self.reference else ""
            raise CnnlabError(f"{self.name} takes a {len(self.reference) + 1}-d batch {expected}, "
                              f"{got} ({len(shape)}-d){hint}")
        probe = Probe(module)
        if probe.fits(shape[1:]):
            return
        if not probe.fits(self.reference):
            self.inert = True  # the meta device cannot judge this model: let torch speak
            return
        channels = shape[1]
        if channels != self.reference[0]:
            hint = (f"; build it with cnnlab.create('{self.name}', in_channels={channels}) or convert "
                    f"the images" if self.in_channels_hint else "; convert the images")
            plural = "s" if self.reference[0] > 1 else ""
            raise CnnlabError(f"{self.name} expects {self.reference[0]} input channel{plural} ({expected}), "
                              f"{got}{hint}")
        raise CnnlabError(f"{self.name}: {got}, {self._accepted_sizes(probe, shape)}")

    def _accepted_sizes(self, probe: Probe, shape: torch.Size) -> str:
        """Describe the spatial sizes the model accepts, searching each dimension on its own."""
        square = len(set(self.reference[1:])) == 1  # then one search serves every spatial dimension
        searched = range(1, 2 if square else len(self.reference))
        limits = [probe.range_along(dim, self.reference) for dim in searched]
        limits *= len(self.reference) - 1 if square else 1
        mode = ""
        if probe.model.training and probe.fits(shape[1:], training=False):
            mode = " in training mode (it takes this input in eval mode)"
        default = f"default {_fmt(self.reference)}"
        if all(high is None for _, high in limits):
            smallest = _fmt((self.reference[0], *(low for low, _ in limits)))
            too_small = any(size < low for size, (low, _) in zip(shape[2:], limits))
            what = "which is too small" if too_small else "which it cannot take"
            return f"{what}: the smallest input it accepts{mode} is N x {smallest} ({default})"
        ranges = ", ".join(f"{low} <= {axis} <= {'any' if high is None else high}"
                           for axis, (low, high) in zip("HWD", limits))
        return (f"but it has a fixed-size classifier and accepts{mode} only N x {self.reference[0]} x H x W "
                f"with {ranges} ({default})")
