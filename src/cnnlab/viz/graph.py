"""A model's architecture as a laid-out graph: the analyzer's traced graph, made readable, with
positions. Data only (no drawing): `viz.architecture` draws it; `cnnlab explore` may too.

    graph = architecture_graph("googlenet")          # traced, folded, laid out
    for node in graph.nodes: node.name, node.kind, node.x, node.y, node.width, node.height
    for edge in graph.edges: edge.source, edge.target, edge.kind, edge.points

The nodes and edges are the analyzer's rows and `Row.inputs` edges (`cnnlab.analysis.summary`),
contracted in two ways that never invent or lose a connection:
- folding (`depth`, as in `cnnlab summary --depth`): the rows of a block nested deeper than
  `depth` become one node (the analyzer's `Summary.fold`);
- fusing: a row that only transforms one value in place of its producer (ReLU, batch norm,
  ...) joins the node of that producer when it is the producer's only reader, so "Conv2d 3x3 +
  BN + ReLU" is one box; a reshape or dropout joins its only reader instead ("flatten + Linear").
Every row belongs to exactly one node (`Node.members`), and the edges are exactly the analyzer's
edges between rows of different nodes: tests check this for every zoo model.

Roles found in the graph, not in module names: a merge node (add, concatenation) reads several
nodes; the shortest of the paths into a residual addition from the node where they split is its
shortcut (an identity shortcut is a "skip" edge, a projection or zero-padding lies on the skip
path with kind "shortcut"); rows that run only in training mode (GoogLeNet's auxiliary heads)
are `training_only`.

The layered layout (Sugiyama: layers, crossing reduction, dummy points routing long edges around
the layers they skip) is grandalf's, a pure-Python library; coordinates are in inches, y growing
downwards, node positions are box centres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cnnlab.analysis.formatters import params_text
from cnnlab.analysis.trace import INPUT

MAX_NODES = 100  # the automatic fold stops at the least folded view with at most this many nodes
NODE_HEIGHT = 0.62  # inches: three lines of 8.5 pt text
MERGE_HEIGHT = 0.46
CHAR_WIDTH = 0.066  # inches per character of 8.5 pt text (DejaVu Sans, measured on the figure)
X_SPACE, Y_SPACE = 0.22, 0.34  # inches between boxes in a layer, and between layers

# rows that transform their producer's output value by value: drawn inside the producer's box
FUSED = {"ReLU": "ReLU", "ReLU6": "ReLU6", "relu": "ReLU", "Tanh": "tanh", "ScaledTanh": "scaled tanh",
         "Sigmoid": "sigmoid", "sigmoid": "sigmoid", "BatchNorm2d": "BN", "BatchNorm1d": "BN", "Identity": "identity"}
# rows that prepare the input of the layer reading them: drawn inside that layer's box
PREPARES = {"Flatten": "flatten", "flatten": "flatten", "view": "view", "reshape": "reshape", "Dropout": "dropout",
            "Dropout2d": "dropout", "dropout": "dropout"}
MERGES = {"add": "add", "cat": "concat", "mul": "multiply", "sub": "subtract"}
KINDS = {  # kind -> what the legend calls it
    "input": "input",
    "conv": "convolution",
    "pool": "pooling",
    "linear": "fully connected",
    "norm": "normalisation",
    "merge": "merge (add, concat)",
    "shortcut": "shortcut (projection, zero-pad)",
    "block": "folded block",
    "other": "other",
}


@dataclass
class Node:
    name: str  # the analyzer row (or folded block) it is named after; unique
    members: tuple[str, ...]  # every analyzer row drawn as this node, in forward order
    kind: str  # a key of KINDS
    detail: str  # type with kernel / stride, units, fused layers: "Conv2d 3×3 /2 + BN + ReLU"
    shape: str  # output C×H×W, or units
    training_only: bool = False
    x: float = 0.0  # centre, inches
    y: float = 0.0
    width: float = 0.0
    height: float = 0.0

    @property
    def label(self) -> list[str]:
        """The lines written in the box."""
        lines = [self.name, self.detail, self.shape]
        return lines + ["training only"] if self.training_only else lines


@dataclass
class Edge:
    source: str  # node names
    target: str
    kind: str = "data"  # "data", or "skip": part of a residual shortcut
    training_only: bool = False
    points: list[tuple[float, float]] = field(default_factory=list)  # route: source centre, bends, target centre


@dataclass
class Graph:
    model: str
    input_shape: tuple[int, ...]
    depth: int | None  # blocks nested deeper are folded; None: nothing folded
    nodes: list[Node]
    edges: list[Edge]
    params: int  # all of them, training-only heads included
    params_training_only: int
    macs: int
    params_text: str = ""  # as `cnnlab list` and the card count: without training-only heads, shown apart
    width: float = 0.0  # inches, once laid out
    height: float = 0.0

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def node_of(self) -> dict[str, str]:
        """{analyzer row name: name of the node drawing it}."""
        return {member: node.name for node in self.nodes for member in node.members}


def architecture_graph(model_or_name, input_shape=None, depth: int | str | None = "auto") -> Graph:
    """The laid-out graph of a zoo model name or nn.Module at `input_shape` (C, H, W; default the
    model's). `depth`: fold blocks nested deeper (as `cnnlab summary --depth`), None for no folding,
    "auto" for the least folded view with at most MAX_NODES nodes."""
    from cnnlab.analysis import summary

    full = summary(model_or_name, input_shape)
    if depth == "auto":
        graph = next(g for g in (traced_graph(full, d) for d in (None, 4, 3, 2, 1)) if len(g.nodes) <= MAX_NODES
                     or g.depth == 1)
    else:
        graph = traced_graph(full, depth)
    return layout(graph)


def traced_graph(full, depth: int | None) -> Graph:
    """The graph of analyzer summary `full` folded at `depth`, without positions."""
    rows = full.fold(depth).rows
    by_name = {row.name: row for row in rows}
    readers: dict[str, list[str]] = {INPUT: []}
    for row in rows:
        readers.setdefault(row.name, [])
        for source in row.inputs:
            readers[source].append(row.name)
    joins: dict[str, str] = {}  # row -> the row whose box it is drawn in
    for row in reversed(rows):  # a reshape or dropout joins its only reader: "flatten + dropout + Linear"
        reader = readers[row.name][0] if len(readers[row.name]) == 1 else None
        if row.folded == 1 and row.type in PREPARES and reader and by_name[reader].inputs == (row.name,):
            joins[row.name] = reader
    for row in rows:  # an activation or batch norm joins its producer: "Conv2d 3×3 + BN + ReLU"
        single = row.inputs[0] if len(row.inputs) == 1 else None
        if (row.folded == 1 and row.type in FUSED and single not in (None, INPUT) and readers[single] == [row.name]
                and by_name[single].training_only == row.training_only and joins.get(single) != row.name):
            joins[row.name] = single

    def root(name: str) -> str:
        while name in joins:
            name = joins[name]
        return name

    owner = {INPUT: INPUT, **{row.name: root(row.name) for row in rows}}
    members: dict[str, list[str]] = {}
    for row in rows:
        members.setdefault(owner[row.name], []).append(row.name)
    sizes: dict[int, int] = {}  # block call -> rows inside it
    for row in rows:
        for call in row.calls:
            sizes[call] = sizes.get(call, 0) + 1
    names = {}
    for name, group in members.items():  # a box holding a whole block (GoogLeNet's ConvReLU) is named after it
        calls = [c for c in by_name[group[0]].calls if sizes[c] == len(group)
                 and all(c in by_name[m].calls for m in group)]
        names[name] = full.blocks[calls[-1]].name if calls else name
    owner = {row: names.get(group, group) for row, group in owner.items()}
    nodes = [Node(INPUT, (), "input", "", _shape(full.input_shape))]
    nodes += [_node(names[name], [by_name[m] for m in group], by_name[name]) for name, group in members.items()]
    edges = {}
    for row in rows:
        for source in row.inputs:
            pair = (owner[source], owner[row.name])
            if pair[0] != pair[1] and pair not in edges:
                edges[pair] = Edge(*pair, training_only=by_name[row.name].training_only)
    totals = full.totals
    graph = Graph(full.model, tuple(full.input_shape), depth, nodes, list(edges.values()), totals.params,
                  totals.params_training_only, totals.macs, params_text(totals))
    _mark_shortcuts(graph)
    return graph


def _node(name: str, rows, head) -> Node:
    """One box for `rows`: a head row, the rows preparing its input and those fused after it."""
    at = next(i for i, r in enumerate(rows) if r is head)
    before = [PREPARES[r.type] for r in rows[:at]]
    after = [FUSED[r.type] for r in rows[at + 1:]]
    detail = " + ".join(before + [_describe(head)] + after)
    return Node(name, tuple(r.name for r in rows), _kind(head), detail, _shape(rows[-1].output_shape),
                all(r.training_only for r in rows))


def _kind(row) -> str:
    t = row.type.lower()
    if row.folded > 1:
        return "block"
    if row.type in MERGES:
        return "merge"
    for kind, words in (("conv", ("conv",)), ("pool", ("pool", "subsampling")), ("linear", ("linear", "rbf")),
                        ("norm", ("norm",))):
        if any(w in t for w in words):
            return kind
    return "other"


def _describe(row) -> str:
    """Type and geometry: kernel/stride for windows, units for linear layers, the fold count."""
    if row.folded > 1:
        return f"{row.type}, {row.folded} layers"
    if row.type in MERGES:
        return MERGES[row.type]
    if row.windows:
        kernel = "×".join(str(w.kernel) for w in row.windows)  # 5×5, 1×7: the kernel's own shape
        stride = _axes([w.stride for w in row.windows])
        stride = f" /{stride}" if stride != "1" else ""
        return f"{row.type} {kernel}{stride}" + (f", {row.groups} groups" if row.groups > 1 else "")
    if row.type.startswith("Adaptive") and len(row.output_shape) == 3:
        return f"{row.type} → {row.output_shape[1]}×{row.output_shape[2]}"
    return row.type


def _axes(values) -> str:
    """One number when every spatial axis agrees (a stride of 2), else H×W."""
    return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))


def _shape(shape) -> str:
    return "×".join(map(str, shape)) if len(shape) != 1 else f"{shape[0]:,} units"


def _mark_shortcuts(graph: Graph) -> None:
    """At each addition, follow every input back through single-input, single-reader nodes to
    where the paths split; when they all split at one node, the shortest path is the shortcut:
    its edges become "skip" edges and its nodes (a projection, a zero-pad) kind "shortcut"."""
    into: dict[str, list[Edge]] = {}
    out_degree: dict[str, int] = {}
    for edge in graph.edges:
        into.setdefault(edge.target, []).append(edge)
        out_degree[edge.source] = out_degree.get(edge.source, 0) + 1
    nodes = {node.name: node for node in graph.nodes}
    for node in graph.nodes:
        if node.kind != "merge" or not node.detail.startswith("add") or len(into.get(node.name, [])) < 2:
            continue
        paths = []
        for edge in into[node.name]:
            path = [edge]
            while len(into.get(path[-1].source, [])) == 1 and out_degree[path[-1].source] == 1:
                path.append(into[path[-1].source][0])
            paths.append(path)
        forks = {path[-1].source for path in paths}
        lengths = sorted(len(path) for path in paths)
        if len(forks) != 1 or lengths[0] == lengths[1]:
            continue
        shortcut = min(paths, key=len)
        for edge in shortcut:
            edge.kind = "skip"
        for edge in shortcut[:-1]:  # the nodes between the split and the addition
            nodes[edge.source].kind = "shortcut"


def layout(graph: Graph) -> Graph:
    """Positions for every node and a route for every edge (grandalf's Sugiyama layout), in place."""
    from grandalf.graphs import Edge as GEdge
    from grandalf.graphs import Graph as GGraph
    from grandalf.graphs import Vertex
    from grandalf.layouts import SugiyamaLayout

    class Box:
        def __init__(self, w, h):
            self.w, self.h, self.xy = w, h, (0.0, 0.0)

    class Route:
        def setpath(self, points):
            self.points = points

    vertices = {}
    for node in graph.nodes:
        node.height = MERGE_HEIGHT if node.kind == "merge" else NODE_HEIGHT
        node.width = max(0.9, 0.2 + CHAR_WIDTH * max(len(line) for line in node.label))
        vertex = Vertex(node.name)
        vertex.view = Box(node.width, node.height)
        vertices[node.name] = vertex
    links = []
    for edge in graph.edges:
        link = GEdge(vertices[edge.source], vertices[edge.target])
        link.view = Route()
        links.append(link)
    ggraph = GGraph(list(vertices.values()), links)
    top = 0.0
    for component in ggraph.C:  # one component unless a model has unconnected parts
        sugiyama = SugiyamaLayout(component)
        sugiyama.xspace, sugiyama.yspace = X_SPACE, Y_SPACE
        roots = [v for v in component.sV if not v.e_in()]
        sugiyama.dw = 0.3  # dummy points: the width a long edge takes in a layer
        sugiyama.init_all(roots=roots)
        sugiyama.draw(3)
        left = min(v.view.xy[0] - v.view.w / 2 for v in component.sV)
        for vertex in component.sV:
            vertex.view.xy = (vertex.view.xy[0] - left, vertex.view.xy[1] + top)
        for link in component.sE:
            link.view.points = [(x - left, y + top) for x, y in link.view.points]
        top = max(v.view.xy[1] + v.view.h / 2 for v in component.sV) + Y_SPACE
    for node in graph.nodes:
        node.x, node.y = vertices[node.name].view.xy
    for edge, link in zip(graph.edges, links):
        edge.points = [(float(x), float(y)) for x, y in link.view.points]
    graph.width = max(n.x + n.width / 2 for n in graph.nodes)
    graph.height = max(n.y + n.height / 2 for n in graph.nodes)
    return graph
