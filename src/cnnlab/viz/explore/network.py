"""The network as the explorer draws it: nodes (the analyzer's rows, blocks folded as in
`summary --depth`), the edges between them, and what each node needs to explain its values.

A node's values are either stored in the page (linear layers, folded blocks, anything unusual)
or recomputed by the page from the node it reads: convolutions (from the held input channels and
kernels, plus, for channels the page does not hold, cnnlab's exact sum of their products, `rest`),
ReLU, batch norm at inference, additions, pooling, flatten, dropout and identity at inference.
Those are exact or within float32 rounding of PyTorch's result and cost no bytes beyond the
kernels and the rest sums. `derive` names the rule; the page implements each rule once, and its
unit arithmetic uses the same function, so what it shows is what it computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from cnnlab.analysis.ops import op_name
from cnnlab.viz.explore.record import INPUT, INSIDE, Call

MAX_NODES = 80  # the least folded depth with at most this many nodes is drawn
VECTOR_LIMIT = 4096  # values kept of a 1-D layer (VGG's 4096-unit layers fit whole)
LINEAR_WEIGHTS = 65_536  # a linear layer's weights are embedded (for its arithmetic) up to this size
BROWSER_MACS = 30_000_000  # multiply-adds the page may spend per image recomputing convolutions

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardtanh)
POOLS = {nn.MaxPool2d: "max", nn.AvgPool2d: "avg", nn.AdaptiveAvgPool2d: "adaptive_avg",
         nn.AdaptiveMaxPool2d: "adaptive_max"}
IDENTITIES = (nn.Dropout, nn.Dropout2d, nn.Identity)
FLATTENS = {"flatten", "view", "reshape"}


@dataclass
class Node:
    """One drawn layer. `sources` are node ids (INPUT for the image); `call` is the recorded call
    whose output is the node's value (for a folded block: its last call)."""

    id: int
    row: object  # the analyzer's (folded) row
    kind: str  # conv, pool, relu, activation, bn, add, cat, linear, flatten, identity, block, other
    call: int
    sources: list[int] = field(default_factory=list)
    derive: str | None = None  # the page recomputes the values by this rule instead of storing them
    module: nn.Module | None = None
    recomputable: bool = False  # a convolution the page could recompute (`recompute_convolutions` decides)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.row.output_shape)

    @property
    def spatial(self) -> bool:
        return len(self.shape) == 3


def choose_depth(summary, depth: int | None = None):
    """The analyzer's summary folded to `depth`, or to the least folded depth with at most
    MAX_NODES inference rows."""
    if depth is not None:
        return summary.fold(depth), depth
    for candidate in (None, 4, 3, 2, 1):
        folded = summary.fold(candidate)
        if len(_inference(folded.rows)) <= MAX_NODES:
            return folded, candidate
    return summary.fold(1), 1


def _inference(rows) -> list:
    return [row for row in rows if not row.training_only]


def build_nodes(summary, folded, depth: int | None, calls: list[Call]) -> list[Node]:
    """Nodes of the folded summary, tied to the recorded calls (which match the unfolded rows)."""
    raw = _inference(summary.rows)
    group_of = [_group(row, summary.blocks, depth) for row in raw]
    shown = _inference(folded.rows)
    index = {row.name: i for i, row in enumerate(shown)}
    members: dict[int, list[int]] = {}
    for i, name in enumerate(group_of):
        members.setdefault(index[name], []).append(i)
    node_of_call = {INPUT: INPUT}
    for node_id, calls_in in members.items():
        for i in calls_in:
            node_of_call[i] = node_id
    nodes = []
    for node_id, row in enumerate(shown):
        inside = members[node_id]
        last = inside[-1]
        sources = []
        for i in inside:
            for source in calls[i].sources:
                if source == INSIDE:
                    continue
                target = node_of_call[source]
                if target != node_id and target not in sources:
                    sources.append(target)
        single = len(inside) == 1 and row.folded == 1
        node = Node(node_id, row, _kind(calls[last]) if single else "block", last, sources,
                    module=calls[last].module if single else None)
        nodes.append(node)
    for node in nodes:
        node.derive = _derivable(node, nodes, calls)
        node.recomputable = node.derive == "conv"
    return nodes


def recompute_convolutions(nodes: list[Node], input_shape, channels: int) -> int:
    """Choose the convolutions the page recomputes at this channel limit, fewest products per value
    first, while its work per image stays within BROWSER_MACS (so it opens at once); the others
    are stored. Returns the multiply-adds chosen."""
    candidates = [n for n in nodes if n.recomputable]

    def products(node: Node) -> int:  # per output value
        conv = node.module
        held = min(conv.in_channels // conv.groups, held_inputs(node, nodes, input_shape, channels))
        return held * math.prod(conv.kernel_size)

    spent = 0
    for node in sorted(candidates, key=products):
        cost = products(node) * stored_channels(node.shape, channels) * math.prod(node.shape[1:])
        node.derive = "conv" if spent + cost <= BROWSER_MACS else None
        spent += cost if node.derive else 0
    return spent


def _group(row, blocks, depth: int | None) -> str:
    if depth is not None and len(row.calls) >= depth:
        return blocks[row.calls[depth - 1]].name
    return row.name


def _kind(call: Call) -> str:
    module = call.module
    if module is not None:
        if isinstance(module, nn.Conv2d):
            return "conv"
        if type(module) in POOLS:
            return "pool"
        if isinstance(module, nn.ReLU):
            return "relu"
        if isinstance(module, ACTIVATIONS):
            return "activation"
        if isinstance(module, nn.BatchNorm2d):
            return "bn"
        if isinstance(module, nn.Linear):
            return "linear"
        if isinstance(module, nn.Flatten):
            return "flatten"
        if isinstance(module, IDENTITIES):
            return "identity"
        return "other"
    name = op_name(call.func)
    if name == "relu":
        return "relu"
    if name == "add" and len(call.sources) == 2:
        return "add"
    if name == "cat":
        return "cat"
    if name in FLATTENS:
        return "flatten"
    return "other"


def _derivable(node: Node, nodes: list[Node], calls: list[Call]) -> str | None:
    """The page's rule for this node's values, when its inputs are drawn nodes whose values are
    exactly what this node's call read; else None (the values are stored)."""
    if node.kind not in ("conv", "relu", "identity", "bn", "add", "pool", "flatten"):
        return None
    call = calls[node.call]
    if len(call.sources) != len(node.sources) or any(
            s != INPUT and nodes[t].call != s for s, t in zip(call.sources, node.sources)):
        return None  # reads something inside a folded block
    if node.kind == "conv":
        conv = node.module
        readable = node.sources == [INPUT] or (len(node.sources) == 1 and nodes[node.sources[0]].spatial)
        return "conv" if readable and conv.padding_mode == "zeros" else None
    if node.kind == "bn":
        bn = node.module
        if bn.training or bn.running_mean is None:
            return None
    if node.kind == "add":
        if len(node.sources) != 2 or any(s == INPUT or nodes[s].shape != node.shape for s in node.sources):
            return None
        return "add"
    if len(node.sources) != 1 or node.sources[0] == INPUT:
        return None
    source = nodes[node.sources[0]]
    if node.kind == "flatten":
        return "flatten" if source.spatial and len(node.shape) == 1 else None
    if node.kind == "pool":
        return "pool" if source.spatial and node.spatial and source.shape[0] == node.shape[0] else None
    return node.kind if source.shape == node.shape else None


def stored_channels(shape: tuple[int, ...], channels: int) -> int:
    """How many channels (spatial layers) or values (1-D layers) of a layer the page holds."""
    if len(shape) == 3:
        return min(shape[0], channels)
    if len(shape) == 1:
        return min(shape[0], VECTOR_LIMIT)
    return 0


def held_inputs(node: Node, nodes: list[Node], input_shape, channels: int) -> int:
    """Channels of a node's (first) input that the page holds: the whole image, or what its
    source node stores (or derives)."""
    if not node.sources or node.sources[0] == INPUT:
        return input_shape[0]
    return stored_channels(nodes[node.sources[0]].shape, channels)


def shown_inputs(conv: nn.Conv2d, held: int) -> np.ndarray:
    """Mask over a convolution's input channels: True where the page holds the channel, so it
    shows that channel's products itself (within each group, the first `held` kernel channels)."""
    per_group = conv.in_channels // conv.groups
    index = np.arange(conv.in_channels)
    return (index < held) & ((index % per_group) < min(per_group, held))


def needs_rest(node: Node, nodes: list[Node], input_shape, channels: int) -> bool:
    """A convolution reading channels the page does not hold: the page stores, per unit, the exact
    sum of those channels' products (`rest`), so its arithmetic still adds up to the value."""
    return node.kind == "conv" and not shown_inputs(node.module, held_inputs(node, nodes, input_shape, channels)).all()


def values_stored(node: Node, nodes: list[Node], input_shape, channels: int) -> int:
    """Floats stored per image for `node`: its values unless derived, plus its rest sums if any."""
    if len(node.shape) not in (1, 3):
        return 0
    count = stored_channels(node.shape, channels) * (math.prod(node.shape[1:]) if node.spatial else 1)
    return count * ((node.derive is None) + needs_rest(node, nodes, input_shape, channels))


def conv_rest(node: Node, x: torch.Tensor, held: int, channels: int) -> torch.Tensor:
    """Σ weight × input over the input channels the page does not show, per output unit of the
    stored channels (no bias): what the page adds to its shown products."""
    conv = node.module
    mask = torch.from_numpy(shown_inputs(conv, held))
    hidden = x.float() * (~mask).float()[None, :, None, None]
    weight = conv.weight.detach().float()
    out = stored_channels(node.shape, channels)
    if conv.groups == 1:
        weight = weight[:out]
    result = torch.nn.functional.conv2d(hidden, weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)
    return result[0, :out]


def static_info(node: Node, nodes: list[Node], input_shape, channels: int) -> dict:
    """What the page knows of a node besides its values: labels, geometry, weights, derivation."""
    row = node.row
    info = {
        "id": node.id, "name": row.name, "type": row.type, "kind": node.kind, "shape": list(node.shape),
        "params": row.params, "sources": node.sources, "derive": node.derive, "folded": row.folded,
        "stored": stored_channels(node.shape, channels), "macs": row.macs,
    }
    if node.spatial and row.receptive_field:
        info["field"] = [_field(axis) for axis in row.receptive_field]
    if row.windows and node.kind in ("conv", "pool") and node.module is not None:
        info["window"] = {"kernel": [w.kernel for w in row.windows], "stride": [w.stride for w in row.windows],
                          "padding": [w.padding for w in row.windows], "dilation": [w.dilation for w in row.windows],
                          "ceil": any(w.ceil_mode for w in row.windows)}
    module = node.module
    if node.kind == "conv":
        info.update(_conv_info(node, nodes, input_shape, channels))
    elif node.kind == "pool":
        info["pool"] = _pool_info(module)
    elif node.kind == "bn" and node.derive:
        scale, shift = bn_affine(module)
        k = stored_channels(node.shape, channels)
        info["bn"] = {"scale": scale[:k].tolist(), "shift": shift[:k].tolist(), "eps": module.eps,
                      "mean": module.running_mean[:k].tolist(), "var": module.running_var[:k].tolist(),
                      "weight": _maybe(module.weight, k), "bias": _maybe(module.bias, k)}
    elif node.kind == "linear":
        info.update(_linear_info(node, nodes, channels))
    return info


def _field(axis) -> dict:
    """Unit u of this axis sees input pixels first … first + size − 1, first = u·jump + offset."""
    first0, last0 = axis.box(0)
    first1, _ = axis.box(1)
    return {"offset": float(first0), "jump": float(first1 - first0), "size": float(last0 - first0 + 1)}


def _conv_info(node: Node, nodes, input_shape, channels: int) -> dict:
    conv = node.module
    mask = shown_inputs(conv, held_inputs(node, nodes, input_shape, channels))
    per_group = conv.in_channels // conv.groups
    shown_per_group = int(mask[:per_group].sum())
    k = stored_channels(node.shape, channels)
    weight = conv.weight.detach()[:k, :shown_per_group].float().numpy()
    bias = conv.bias.detach()[:k].tolist() if conv.bias is not None else None
    return {"groups": conv.groups, "inChannels": conv.in_channels, "shownPerGroup": shown_per_group,
            "weights": weight, "bias": bias, "rest": not bool(mask.all()),
            "paddingMode": conv.padding_mode}


def _pool_info(module) -> dict:
    kind = POOLS[type(module)]
    info = {"mode": kind}
    if kind == "avg":
        info["countIncludePad"] = bool(module.count_include_pad)
        info["divisor"] = module.divisor_override
    if kind.startswith("adaptive"):
        size = module.output_size
        info["output"] = list(size) if isinstance(size, (tuple, list)) else [size, size]
    return info


def bn_affine(bn: nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """Batch norm at inference as y = scale·x + shift per channel (float64)."""
    invstd = 1.0 / np.sqrt(bn.running_var.double().numpy() + bn.eps)
    weight = bn.weight.detach().double().numpy() if bn.weight is not None else 1.0
    bias = bn.bias.detach().double().numpy() if bn.bias is not None else 0.0
    scale = weight * invstd
    return scale * np.ones_like(invstd), bias - bn.running_mean.double().numpy() * scale


def _maybe(tensor, k: int):
    return None if tensor is None else tensor.detach()[:k].tolist()


def _linear_info(node: Node, nodes, channels: int) -> dict:
    linear = node.module
    source = nodes[node.sources[0]] if node.sources and node.sources[0] != INPUT else None
    complete = source is not None and len(source.shape) == 1 and _held_values(source, nodes, channels) == source.shape[0]
    info = {"inFeatures": linear.in_features}
    if complete and linear.weight.numel() <= LINEAR_WEIGHTS:
        info["weights"] = linear.weight.detach().float().numpy()
        info["bias"] = linear.bias.detach().tolist() if linear.bias is not None else None
    return info


def _held_values(node: Node, nodes, channels: int) -> int:
    """How many of a 1-D node's values the page has (a derived flatten has its source's channels)."""
    if node.derive == "flatten":
        source = nodes[node.sources[0]]
        return stored_channels(source.shape, channels) * math.prod(source.shape[1:])
    return stored_channels(node.shape, channels)
