"""Everything the page shows, as one JSON-ready document: the network (nodes, edges, layout,
weights) once, and one record per input image (the values of every stored node, the logits,
Grad-CAM maps and their sanity check).

Arrays travel as base64 little-endian float32 (uint8 for CAM maps): exact, and decoded by the
browser without parsing text. How much of each layer is kept (`Plan`) is chosen so the file stays
small enough to open at once; the page says what was left out.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import numpy as np
import torch

from cnnlab.errors import CnnlabError
from cnnlab.viz.explore import adapters
from cnnlab.viz.sanity import FLAG_AT
from cnnlab.viz.explore.network import (
    INPUT,
    VECTOR_LIMIT,
    build_nodes,
    choose_depth,
    conv_rest,
    held_inputs,
    needs_rest,
    recompute_convolutions,
    static_info,
    stored_channels,
    values_stored,
)
from cnnlab.viz.explore.record import check_against, record

MiB = 1 << 20
CHANNEL_STEPS = (1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1)  # candidate per-layer channel limits
SMALL_PAGE = 7.5 * MiB  # aim: the most channels that keep the page under this size ...
LARGE_PAGE = 20 * MiB  # ... unless that leaves fewer than GOOD_CHANNELS: then up to this size
GOOD_CHANNELS = 8
HARD_LIMIT = 24 * MiB  # never written above this (what a browser opens within a second here)
CAM_CLASSES = 10  # every class gets a Grad-CAM map up to this many classes, else the top 5
FIXED_BYTES = 160 * 1024  # the page's script, styles, labels and node descriptions, roughly


def pack(array: np.ndarray) -> dict:
    """{"dtype", "shape", "data"}: the array's bytes (float32 or uint8, little-endian) in base64."""
    array = np.ascontiguousarray(array)
    dtype = "u1" if array.dtype == np.uint8 else "f4"
    data = array.astype("<" + dtype if dtype == "f4" else np.uint8, copy=False).tobytes()
    return {"dtype": dtype, "shape": list(array.shape), "data": base64.b64encode(data).decode("ascii")}


def packed(obj):
    """`obj` with every NumPy array replaced by `pack(array)`."""
    if isinstance(obj, np.ndarray):
        return pack(obj)
    if isinstance(obj, dict):
        return {k: packed(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [packed(v) for v in obj]
    return obj


@dataclass
class Plan:
    """How much of the network one page holds: the folding depth and the per-layer channel limit."""

    depth: int | None
    channels: int
    max_channels: int  # the widest layer's channels (so the page can say what the limit leaves out)
    estimate: int  # bytes, for the images the plan was made for


class Explorer:
    """A subject's model, analysed and laid out once (from its pass over `first`, an input);
    `image(x)` computes one input's record for a page made for `images` inputs."""

    def __init__(self, subject, first: torch.Tensor, images: int, depth: int | None = None,
                 channels: int | None = None, cam_classes: int | None = None, sanity: bool = True):
        from cnnlab.analysis import summary

        self.subject = subject
        self.model = subject.model.eval()
        self.summary = summary(_meta_twin(self.model), subject.input_shape)
        self.folded, depth = choose_depth(self.summary, depth)
        self.raw_rows = [row for row in self.summary.rows if not row.training_only]
        calls, output = self._record(first)
        self._last = (first, calls, output)
        self.nodes = build_nodes(self.summary, self.folded, depth, calls)
        self.num_classes = int(output.shape[-1]) if output.dim() == 2 else 0
        self.cam_classes = min(cam_classes, self.num_classes) if cam_classes is not None else (
            self.num_classes if self.num_classes <= CAM_CLASSES else 5)
        self.plan = self._plan(depth, channels, images)
        recompute_convolutions(self.nodes, subject.input_shape, self.plan.channels)
        self.layout = adapters.layout([(n.id, n.sources) for n in self.nodes])
        self.cam_layer, self.cam_problem = self._cam_layer()
        self.sanity = None
        if sanity and self.cam_layer is not None:
            order = [name for name in (_module_name(self.model, c.module) for c in calls) if name]
            self.sanity = adapters.sanity_model(self.model, self.cam_layer, order)

    def _record(self, x: torch.Tensor):
        calls, output = record(self.model, x)
        check_against(calls, self.raw_rows)
        return calls, output

    # -- the plan ----------------------------------------------------------------------------
    def _bytes(self, channels: int, images: int) -> int:
        """The page's size in bytes at this channel limit (choosing what the page recomputes)."""
        shape = self.subject.input_shape
        recompute_convolutions(self.nodes, shape, channels)
        floats = math.prod(shape) + self.num_classes + sum(
            values_stored(n, self.nodes, shape, channels) for n in self.nodes)
        cam = self.cam_classes * math.prod(shape[1:])
        per_image = 4 * floats + cam + math.prod(shape)  # the display PNG, at most about a byte per value
        weights = sum(_array_values(static_info(n, self.nodes, shape, channels)) for n in self.nodes)
        return int((per_image * images + 4 * weights) * 4 / 3) + FIXED_BYTES

    def _plan(self, depth, channels, images) -> Plan:
        widest = max((n.shape[0] for n in self.nodes if n.spatial), default=1)
        if channels is not None:
            estimate = self._bytes(channels, images)
            if estimate > HARD_LIMIT:
                raise CnnlabError(f"an explorer page of {self.subject.name} with {images} image(s) and {channels} "
                                  f"channels per layer would be about {estimate / MiB:.0f} MiB (the limit is "
                                  f"{HARD_LIMIT / MiB:.0f} MiB): lower --channels or give fewer images")
            return Plan(depth, channels, widest, estimate)
        steps = [widest] + [c for c in CHANNEL_STEPS if c < widest]
        for limit, fewest in ((SMALL_PAGE, min(GOOD_CHANNELS, widest)), (LARGE_PAGE, 1)):
            for candidate in steps:
                estimate = self._bytes(candidate, images)
                if estimate <= limit and candidate >= fewest and (limit == SMALL_PAGE or candidate <= GOOD_CHANNELS):
                    return Plan(depth, candidate, widest, estimate)
        raise CnnlabError(f"an explorer page of {self.subject.name} with {images} image(s) would exceed "
                          f"{LARGE_PAGE / MiB:.0f} MiB even with one channel per layer: give fewer images")

    # -- Grad-CAM ----------------------------------------------------------------------------
    def _cam_layer(self):
        if self.num_classes == 0:
            return None, "the model's output is not one score per class"
        if self.cam_classes == 0:
            return None, "not computed for this page (--cam-classes 0)"
        try:
            return adapters.cam_layer(self.model, self.subject.input_shape), None
        except CnnlabError as error:
            return None, str(error)

    def _cam(self, x: torch.Tensor, probabilities: np.ndarray) -> dict:
        if self.cam_layer is None:
            return {"problem": self.cam_problem}
        if not np.isfinite(probabilities).all():
            return {"problem": "the model's output is not finite (inf or NaN) for this input, so its gradients "
                               "are not either"}
        order = np.argsort(-probabilities, kind="stable")
        classes = sorted(int(c) for c in order[: self.cam_classes])
        maps = adapters.cam_maps(self.model, x, self.cam_layer, classes)
        if not np.isfinite(maps).all():
            return {"problem": f"the activations or gradients at {self.cam_layer} are not finite (inf or NaN)"}
        result = {"layer": self.cam_layer, "classes": classes,
                  "maps": [np.round(m * 255).astype(np.uint8) for m in maps],
                  "empty": [bool(m.max() <= 0) for m in maps]}
        if self.sanity is not None:
            top = int(order[0])
            randomised, names = self.sanity
            check = adapters.cam_sanity(randomised, names, x, self.cam_layer, top, maps[classes.index(top)])
            result["sanity"] = {"class": top, "randomised": check.randomised, "correlation": check.correlation,
                                "flagged": check.flagged, "threshold": FLAG_AT}
        return result

    # -- the document ------------------------------------------------------------------------
    def network(self) -> dict:
        """The image-independent part of the page."""
        subject, plan = self.subject, self.plan
        shape = subject.input_shape
        nodes = []
        for node in self.nodes:
            info = static_info(node, self.nodes, shape, plan.channels)
            info["column"], info["row"] = self.layout[node.id]
            info["rest"] = needs_rest(node, self.nodes, shape, plan.channels)
            info["activation"] = self._activation_after(node)
            nodes.append(info)
        totals = self.summary.totals
        return packed({
            "model": subject.name, "title": subject.title, "trained": subject.run is not None,
            "run": subject.run.resolve().name if subject.run is not None else None,
            "inputShape": list(shape), "classes": subject.classes, "mean": list(subject.mean),
            "std": list(subject.std), "params": totals.params, "macs": totals.macs,
            "depth": plan.depth, "channels": plan.channels, "widest": plan.max_channels,
            "vectorLimit": VECTOR_LIMIT, "nodes": nodes, "camClasses": self.cam_classes,
        })

    def _activation_after(self, node) -> int | None:
        """The activation node that reads this convolution or linear layer alone, if any."""
        if node.kind not in ("conv", "linear"):
            return None
        for other in self.nodes:
            if other.sources == [node.id] and other.kind in ("relu", "activation"):
                return other.id
        return None

    def image(self, x: torch.Tensor, name: str, label: str | None = None) -> dict:
        """One input's record: stored values, rest sums, logits, Grad-CAM."""
        from cnnlab.viz.figure import display_image

        first, calls, output = self._last
        if first is not x:
            calls, output = self._record(x)
        self._last = (None, None, None)  # the first input's pass is used once
        shape, channels = self.subject.input_shape, self.plan.channels
        values, rests = {}, {}
        for node in self.nodes:
            if len(node.shape) not in (1, 3):
                continue
            if node.derive is None:
                out = calls[node.call].output[0]
                values[str(node.id)] = out[: stored_channels(node.shape, channels)].float().numpy()
            if needs_rest(node, self.nodes, shape, channels):
                source = node.sources[0]
                given = x if source == INPUT else calls[self.nodes[source].call].output
                held = held_inputs(node, self.nodes, shape, channels)
                rests[str(node.id)] = conv_rest(node, given, held, channels).numpy()
        logits = output[0].float() if output.dim() == 2 else None
        record_ = {"name": name, "label": label, "input": x[0].float().numpy(), "values": values, "rest": rests,
                   "picture": _png(display_image(x, self.subject.mean, self.subject.std))}
        if logits is not None:
            record_["logits"] = logits.numpy()
            record_["cam"] = self._cam(x, torch.softmax(logits.double(), 0).numpy())
        return packed(record_)


def _meta_twin(model: torch.nn.Module) -> torch.nn.Module:
    """The model's structure with meta tensors for its weights, for the analyzer: its tracer stays
    referenced from autograd's graph after `summary` returns (a reference cycle through C++ that
    Python's collector cannot free), and it must not keep the real weights alive with it."""
    import copy

    memo = {id(p): torch.nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
            for p in model.parameters()}
    memo.update({id(b): torch.empty_like(b, device="meta") for b in model.buffers()})
    return copy.deepcopy(model, memo)


def _module_name(model, module) -> str | None:
    if module is None:
        return None
    return next((name for name, m in model.named_modules() if m is module), None)


def _array_values(info: dict) -> int:
    """Values in the arrays of a node's static description (its embedded weights)."""
    return sum(v.size for v in info.values() if isinstance(v, np.ndarray))


def _png(image: np.ndarray) -> str:
    """An H×W(×3) picture in [0, 1] as a PNG data URL."""
    from PIL import Image

    pixels = np.clip(np.round(np.asarray(image) * 255), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels.squeeze()).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
