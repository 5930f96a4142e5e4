"""The analyzer's result: rows (one per layer call) and totals, as plain data.

Everything here is per image unless a name says otherwise; `Summary.batch` scales memory.
Formatters, the CLI, the trainer's summary.md and the report all read these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction

from cnnlab.analysis import formatters
from cnnlab.analysis.geometry import Axis, Misfit, Window

FP32 = 4  # bytes; the activation-memory column is always fp32, as in the lecture tables


@dataclass
class Row:
    name: str  # hierarchical: features.0, layer1.0.conv1, layer1.0.add, flatten
    type: str  # module class (Conv2d) or function (add, flatten, cat)
    input_shape: tuple[int, ...] = ()  # per image, e.g. (3, 227, 227); the first input's
    input_shapes: tuple[tuple[int, ...], ...] = ()  # every input, where several meet (cat, add)
    output_shape: tuple[int, ...] = ()
    windows: tuple[Window, ...] = ()  # kernel/stride/padding/dilation per spatial axis
    groups: int = 1
    units: int | None = None  # filters (conv) or neurons (linear)
    params_trainable: int = 0
    params_frozen: int = 0
    output_values: int = 0  # per image
    allocates: bool = True  # False for views and in-place results (no new memory)
    macs: int = 0  # per image
    other_ops: int = 0  # per image
    receptive_field: tuple[Axis, ...] = ()  # per spatial axis of the *input image*
    depth: int = 0  # weighted layers (conv, linear) on the longest path up to here
    training_only: bool = False  # runs only in train mode (auxiliary heads)
    misfits: tuple[Misfit | None, ...] = ()  # per spatial axis, of the row's first window
    misalignment: tuple[Fraction, ...] = ()  # per spatial axis: how far apart merged branches are centred
    gather: bool = False  # copies values picked by an index tensor
    implementation_copy: bool = False  # a copy the network itself does not make: not in the memory total
    calls: tuple[int, ...] = ()  # enclosing block calls, outermost first (for folding)
    folded: int = 1  # how many layer rows this row stands for
    notes: tuple[str, ...] = ()  # a folded row keeps its inner rows' flags here
    inputs: tuple[str, ...] = ()  # names of the rows whose outputs it reads ("input": the model's input)

    @property
    def params(self) -> int:
        return self.params_trainable + self.params_frozen

    @property
    def output_bytes(self) -> int:
        """fp32 bytes of the output, per image."""
        return self.output_values * FP32

    @property
    def counted_bytes(self) -> int:
        """What the row adds to the forward activation memory: new tensors the network makes."""
        return self.output_bytes if self.allocates and not self.implementation_copy else 0

    @property
    def flags(self) -> list[str]:
        """Notes for the reader: training-only, implementation copies, misaligned merges, and
        windows that do not fit their input."""
        notes = ["training only"] if self.training_only else []
        if self.implementation_copy:
            notes.append(f"implementation copy ({'a gather' if self.gather else 'only gathered'}): "
                         "not part of the network, left out of the memory total")
        if any(self.misalignment):
            offsets = ", ".join(f"{axis} {formatters.number(o)} px"
                                for axis, o in zip(_axis_names(len(self.misalignment)), self.misalignment))
            notes.append(f"merged branches are not centred alike: their fields' centres differ by {offsets}")
        misfits = [m for m in self.misfits if m is not None]
        if misfits and all(str(m) == str(misfits[0]) for m in misfits) and len(misfits) == len(self.misfits):
            notes.append(str(misfits[0]))
        else:
            notes += [f"{axis}: {m}" for axis, m in zip(_axis_names(len(self.misfits)), self.misfits) if m is not None]
        return notes + list(self.notes)


def _axis_names(count: int) -> str:
    return "HW" if count == 2 else "DHW"[-count:]


@dataclass
class BlockCall:
    """A call of a module with children (a block): what `--depth` folds into one row."""

    name: str
    type: str
    level: int  # 1 for children of the model, 2 for their children ...
    first_row: int
    last_row: int = -1
    input_shape: tuple[int, ...] = ()
    output_shape: tuple[int, ...] = ()
    receptive_field: tuple[Axis, ...] = ()


@dataclass
class TrainingMemory:
    """Bytes for one training step at `batch`; see `cnnlab.analysis.memory`. `total` is the peak
    of a replayed backward: weights + optimizer state + the activations and gradients alive at
    the worst moment, less than the sum of all four parts."""

    precision: str
    optimizer: str
    weights: int
    gradients: int
    optimizer_state: int
    activations: int  # tensors autograd keeps for backward (the input batch included)
    total: int
    # the parts of `total` at its peak: weights + optimizer_state + these three
    peak_activations: int = 0  # saved activations still alive
    peak_gradients: int = 0  # parameter gradients already born
    peak_temporary: int = 0  # the gradients of the output and input of the call running backward
    largest_temporary: int = 0  # the same, for the call where it is largest


@dataclass
class Totals:
    params: int
    params_trainable: int
    params_frozen: int
    params_training_only: int  # in auxiliary heads
    weights_bytes: int
    input_bytes: int  # fp32, per image
    activation_bytes: int  # fp32, per image: every new tensor of the inference pass
    macs: int  # per image, inference pass
    other_ops: int
    depth: int  # weighted layers on the longest inference path
    receptive_field: tuple[Axis, ...]  # of the last spatial feature map
    training_memory: TrainingMemory
    receptive_field_nominal: bool = False  # a deformable layer on the way: the regular grid's field

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def params_inference(self) -> int:
        """Parameters without training-only heads: what the model cards and papers count."""
        return self.params - self.params_training_only


@dataclass
class Summary:
    model: str
    input_shape: tuple[int, ...]
    batch: int
    rows: list[Row]
    totals: Totals
    blocks: list[BlockCall] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # caveats about the whole analysis
    steps: list = field(default_factory=list, repr=False)  # the traced training pass, for `fits`
    traced_batch: int = 2  # the batch `steps` were traced at

    def __str__(self) -> str:
        return formatters.render(self)

    def _repr_html_(self) -> str:
        """Jupyter shows this: the whole table as HTML."""
        return formatters.render(self, "html")

    def fold(self, depth: int | None) -> Summary:
        """Rows of blocks nested deeper than `depth` folded into one row per block call."""
        if depth is None:
            return self
        rows: list[Row] = []
        group: list[Row] = []
        owner = None
        folded_into: dict[str, str] = {}  # name of a row folded away -> its block's row
        for row in self.rows + [None]:
            key = row.calls[depth - 1] if row is not None and len(row.calls) >= depth else None
            if group and (key is None or key != owner):
                rows.append(_merge(self.blocks[owner], group, depth))
                folded_into.update((r.name, rows[-1].name) for r in group)
                group = []
            if key is None:
                if row is not None:
                    rows.append(row)
            else:
                group.append(row)
            owner = key
        return replace(self, rows=[_reconnect(row, folded_into) for row in rows])


def _reconnect(row: Row, folded_into: dict[str, str]) -> Row:
    """`row` reading the folded rows' blocks instead of the rows inside them."""
    inputs = tuple(dict.fromkeys(folded_into.get(name, name) for name in row.inputs))
    inputs = tuple(name for name in inputs if name != row.name)
    return row if inputs == row.inputs else replace(row, inputs=inputs)


def _merge(block: BlockCall, rows: list[Row], depth: int) -> Row:
    members = {r.name for r in rows}
    return Row(
        name=block.name,
        type=block.type,
        input_shape=block.input_shape,
        output_shape=block.output_shape,
        params_trainable=sum(r.params_trainable for r in rows),
        params_frozen=sum(r.params_frozen for r in rows),
        output_values=sum(r.output_values for r in rows if r.allocates and not r.implementation_copy),
        macs=sum(r.macs for r in rows),
        other_ops=sum(r.other_ops for r in rows),
        receptive_field=block.receptive_field,
        depth=max(r.depth for r in rows),
        training_only=all(r.training_only for r in rows),
        calls=rows[0].calls[: depth - 1],
        folded=sum(r.folded for r in rows),
        notes=tuple(f"{r.name}: {flag}" for r in rows for flag in r.flags if flag != "training only"),
        inputs=tuple(dict.fromkeys(name for r in rows for name in r.inputs if name not in members)),
    )
