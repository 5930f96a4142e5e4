"""The architecture figure: the laid-out traced graph of `viz.graph` drawn with matplotlib, as PNG
and/or SVG from one drawing.

Boxes are coloured by kind (legend at the top); merge nodes are round-ended; a residual shortcut
is a thick green skip edge around its block, with a projection or zero-pad box on it;
training-only parts (auxiliary heads) are pale with dashed outlines and edges, and say so. The
SVG keeps its text as text and names its parts for tools and tests: `node-<i>` (the i-th of
`Graph.nodes`; its label in `node-<i>-label`), `edge-<i>-<j>` or `skip-<i>-<j>` from node i to
node j, and `legend`.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
from matplotlib.path import Path as CurvePath

from cnnlab.viz.figure import plt, save_all
from cnnlab.viz.graph import KINDS, Graph, architecture_graph

COLOURS = {"input": "#d9d9d9", "conv": "#9ecae1", "pool": "#fdd0a2", "linear": "#a1d99b", "norm": "#dadaeb",
           "merge": "#fcbba1", "shortcut": "#c7e9c0", "block": "#c6dbef", "other": "#eeeeee"}
EDGE = "#555555"
SKIP = "#2ca02c"
AUX = "#999999"
LABEL_PT = 8.5
MARGIN = 0.3  # inches around the graph
SVG_STYLE = {"svg.fonttype": "none", "svg.hashsalt": "cnnlab", "font.sans-serif": ["DejaVu Sans"]}


def plot_architecture(model_or_name, input_shape, out_path, title: str | None = None, depth="auto",
                      formats=("png",)):
    """Draw the architecture graph into `out_path` with each suffix of `formats` ("png", "svg").
    Returns ([paths written], the Graph drawn)."""
    graph = architecture_graph(model_or_name, input_shape, depth)
    return draw(graph, out_path, title, formats), graph


def draw(graph: Graph, out_path, title: str | None = None, formats=("png",)) -> list[Path]:
    """Render a laid-out Graph once; one file per format, named `out_path` with that suffix."""
    with matplotlib.rc_context(SVG_STYLE):  # text stays text in the SVG, ids are reproducible
        return save_all(_figure(graph, title), [Path(out_path).with_suffix("." + fmt) for fmt in formats])


def _figure(graph: Graph, title: str | None):
    handles = _legend_handles(graph)
    width = max(graph.width + 2 * MARGIN, 7.0)
    columns = max(1, min(5, int(width / 2.6)))
    header = 0.55 + 0.24 * math.ceil(len(handles) / columns)  # the title, then the legend's rows
    height = graph.height + 2 * MARGIN + header
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes([0, 0, 1, 1])
    side = (width - graph.width) / 2
    ax.set_xlim(-side, graph.width + side)
    ax.set_ylim(graph.height + MARGIN, -MARGIN - header)  # y grows downwards, as in the layout
    ax.set_axis_off()
    index = {node.name: i for i, node in enumerate(graph.nodes)}
    for edge in graph.edges:
        _edge(ax, edge, graph, f"{'skip' if edge.kind == 'skip' else 'edge'}-{index[edge.source]}-{index[edge.target]}")
    for i, node in enumerate(graph.nodes):
        _node(ax, node, f"node-{i}")
    folded = "" if graph.depth is None else f", blocks below depth {graph.depth} folded"
    fig.text(0.5, 1 - 0.12 / height, f"{title or graph.model}: input {graph.nodes[0].shape}, parameters "
             f"{graph.params_text}, {graph.macs:,} MACs per image{folded}", ha="center", va="top", fontsize=11)
    legend = fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.42 / height), ncols=columns,
                        frameon=False, fontsize=9, handlelength=1.6)
    legend.set_gid("legend")
    return fig


def _node(ax, node, gid: str) -> None:
    x0, y0 = node.x - node.width / 2, node.y - node.height / 2
    style = dict(facecolor=COLOURS[node.kind], edgecolor="#333333", linewidth=0.8)
    if node.training_only:
        style.update(linestyle="--", edgecolor=AUX, alpha=0.55)
    rounding = node.height / 2 if node.kind == "merge" else 0.06  # merges are round-ended
    patch = FancyBboxPatch((x0, y0), node.width, node.height, boxstyle=f"round,pad=0,rounding_size={rounding}",
                           **style)
    patch.set_gid(gid)
    ax.add_patch(patch)
    lines = node.label if node.kind != "input" else ["input", node.shape]
    text = ax.text(node.x, node.y, "\n".join(lines), ha="center", va="center", fontsize=LABEL_PT, linespacing=1.15,
                   color="#555555" if node.training_only else "black")
    text.set_gid(gid + "-label")


def _edge(ax, edge, graph: Graph, gid: str) -> None:
    """A smooth curve through the layout's route: vertical tangents at every point, as layered
    drawings have, from the bottom of the source box to the top of the target box."""
    source, target = graph.node(edge.source), graph.node(edge.target)
    points = list(edge.points)
    points[0] = (source.x, source.y + source.height / 2)
    points[-1] = (target.x, target.y - target.height / 2)
    vertices, codes = [points[0]], [CurvePath.MOVETO]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        dy = (y1 - y0) / 2
        vertices += [(x0, y0 + dy), (x1, y1 - dy), (x1, y1)]
        codes += [CurvePath.CURVE4] * 3
    colour = SKIP if edge.kind == "skip" else AUX if edge.training_only else EDGE
    arrow = FancyArrowPatch(path=CurvePath(vertices, codes), arrowstyle="-|>", mutation_scale=9, color=colour,
                            linewidth=2.2 if edge.kind == "skip" else 1.0,
                            linestyle="--" if edge.training_only else "-", shrinkA=0, shrinkB=1)
    arrow.set_gid(gid)
    ax.add_patch(arrow)


def _legend_handles(graph: Graph) -> list:
    kinds = [k for k in KINDS if any(n.kind == k for n in graph.nodes)]
    handles = [Patch(facecolor=COLOURS[k], edgecolor="#333333", label=KINDS[k]) for k in kinds]
    handles.append(Line2D([], [], color=EDGE, label="data flow"))
    if any(e.kind == "skip" for e in graph.edges):
        handles.append(Line2D([], [], color=SKIP, linewidth=2.2, label="skip (residual shortcut)"))
    if any(n.training_only for n in graph.nodes):
        handles.append(Patch(facecolor="#eeeeee", edgecolor=AUX, linestyle="--", label="training only (auxiliary head)"))
    return handles
