"""The architecture graph: what is drawn is the analyzer's traced graph (checked in the SVG file
for every zoo model), and GoogLeNet's branches and ResNet's skips are drawn as such."""

import re
import xml.etree.ElementTree as ET

import pytest

from cnnlab.analysis import summary
from cnnlab.analysis.trace import INPUT
from cnnlab.models import list_models
from cnnlab.viz.architecture import plot_architecture
from cnnlab.viz.graph import FUSED, PREPARES, architecture_graph

SVG = "{http://www.w3.org/2000/svg}"


def parse_svg(path):
    """{node index: (label lines, bounding box x0, y0, x1, y1)}, {(kind, i, j): path points}."""
    root = ET.parse(path).getroot()
    nodes, labels, edges = {}, {}, {}
    for group in root.iter(SVG + "g"):
        gid = group.get("id", "")
        if m := re.fullmatch(r"node-(\d+)", gid):
            points = path_points(group.find(SVG + "path").get("d"))
            xs, ys = [x for x, _ in points], [y for _, y in points]
            nodes[int(m[1])] = (min(xs), min(ys), max(xs), max(ys))
        elif m := re.fullmatch(r"node-(\d+)-label", gid):
            labels[int(m[1])] = [t.text for t in group.iter(SVG + "text")]
        elif m := re.fullmatch(r"(edge|skip)-(\d+)-(\d+)", gid):
            line = group.find(SVG + "path")
            edges[(m[1], int(m[2]), int(m[3]))] = (path_points(line.get("d")), line.get("style", ""))
    return {i: (labels.get(i, []), box) for i, box in nodes.items()}, edges


def path_points(d: str) -> list[tuple[float, float]]:
    numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", d)]
    return list(zip(numbers[::2], numbers[1::2]))


@pytest.mark.parametrize("name", list_models())
def test_every_zoo_model_draws_exactly_the_analyzers_traced_edges(name, tmp_path):
    [path], graph = plot_architecture(name, None, tmp_path / name, formats=("svg",))
    rows = summary(name).fold(graph.depth).rows
    node_of = graph.node_of()
    members = [m for node in graph.nodes for m in node.members]
    assert sorted(members) == sorted(r.name for r in rows)  # every row drawn, in exactly one node
    traced = {(node_of.get(source, INPUT), node_of[row.name]) for row in rows for source in row.inputs}
    expected = {pair for pair in traced if pair[0] != pair[1]}
    drawn_nodes, drawn_edges = parse_svg(path)
    names = [node.name for node in graph.nodes]
    assert {(names[i], names[j]) for _, i, j in drawn_edges} == expected
    assert len(drawn_edges) == len(expected)  # no edge drawn twice
    assert sorted(drawn_nodes) == list(range(len(graph.nodes)))
    for i, node in enumerate(graph.nodes):  # each box says which layer it is, and its output shape
        lines = drawn_nodes[i][0]
        assert lines[0] == node.name and node.shape in lines
    for node in graph.nodes:  # a box holds one layer and only what merely reshapes or activates around it
        if graph.depth is None and len(node.members) > 1:
            by_name = {r.name: r for r in rows}
            others = [by_name[m].type for m in node.members]
            assert sum(t not in FUSED and t not in PREPARES for t in others) <= 1, node


def test_the_analyzer_traces_branches_merges_and_side_heads():
    rows = {r.name: r for r in summary("googlenet").rows}
    assert rows["inception3a.cat"].inputs == ("inception3a.branch1.relu", "inception3a.branch2.1.relu",
                                              "inception3a.branch3.1.relu", "inception3a.branch4.1.relu")
    for branch in ("branch1.conv", "branch2.0.conv", "branch3.0.conv", "branch4.0"):
        assert rows[f"inception3a.{branch}"].inputs == ("maxpool2",)
    assert rows["aux1.pool"].inputs == ("inception4a.cat",) and rows["aux1.pool"].training_only
    assert rows["inception4b.branch1.conv"].inputs == ("inception4a.cat",)  # not aux1's output
    rows = {r.name: r for r in summary("resnet20").rows}
    assert rows["layer1.0.add"].inputs == ("layer1.0.bn2", "relu")  # F(x) + x, x = the stem's output
    assert rows["layer2.0.downsample"].inputs == ("layer1.2.relu#2",)
    assert rows["layer2.0.add"].inputs == ("layer2.0.bn2", "layer2.0.downsample")
    folded = {r.name: r for r in summary("resnet20").fold(2).rows}
    assert folded["layer1.1"].inputs == ("layer1.0",) and folded["layer2.0"].inputs == ("layer1.2",)


def overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_googlenet_draws_inception_branches_side_by_side_and_aux_heads_off_the_trunk(tmp_path):
    [path], graph = plot_architecture("googlenet", None, tmp_path / "g", formats=("svg",))
    assert graph.depth is None
    nodes, edges = parse_svg(path)
    index = {node.name: i for i, node in enumerate(graph.nodes)}
    for module in ("inception3a", "inception4a", "inception5b"):
        firsts = [nodes[index[f"{module}.{b}"]][1] for b in ("branch1", "branch2.0", "branch3.0", "branch4.0")]
        assert len({round(box[1], 1) for box in firsts}) == 1  # one row ...
        assert not any(overlaps(a, b) for i, a in enumerate(firsts) for b in firsts[i + 1:])  # ... side by side
        cat = index[f"{module}.cat"]
        assert {i for _, i, j in edges if j == cat} == {index[n.name] for n in graph.nodes
                                                        if n.name.startswith(module + ".branch") and
                                                        any(e.source == n.name and e.target == f"{module}.cat"
                                                            for e in graph.edges)}
        assert len([e for e in edges if e[2] == cat]) == 4  # four branches merge in the concatenation
    aux = [i for i, node in enumerate(graph.nodes) if node.name.startswith("aux1")]
    assert len(aux) >= 3 and all("training only" in nodes[i][0] for i in aux)
    into_aux = [key for key in edges if key[2] == index["aux1.pool"]]
    assert [key[1] for key in into_aux] == [index["inception4a.cat"]]
    assert "stroke-dasharray" in edges[into_aux[0]][1]  # dashed: a training-only branch
    assert not [key for key in edges if key[1] in aux and key[2] not in aux]  # a side branch: nothing returns
    trunk = [nodes[index[n]][1] for n in ("inception4b.branch1", "inception4b.branch2.0", "inception4b.branch4.0")]
    assert not any(overlaps(nodes[i][1], box) for i in aux for box in trunk)


def test_resnet20_draws_every_shortcut_as_a_skip_around_its_block(tmp_path):
    [path], graph = plot_architecture("resnet20", None, tmp_path / "r", formats=("svg",))
    nodes, edges = parse_svg(path)
    names = [node.name for node in graph.nodes]
    skips = {(names[i], names[j]): points for (kind, i, j), (points, _) in edges.items() if kind == "skip"}
    blocks = [f"layer{s}.{b}" for s in (1, 2, 3) for b in (0, 1, 2)]
    for block in blocks:
        into = [pair for pair in skips if pair[1] == f"{block}.add"]
        assert len(into) == 1, block
        if block in ("layer2.0", "layer3.0"):  # option A: the zero-pad shortcut lies on the skip path
            assert into[0][0] == f"{block}.downsample" and graph.node(f"{block}.downsample").kind == "shortcut"
            assert (graph.node(f"{block}.downsample").detail.startswith("ZeroPadShortcut")
                    and [p for p in skips if p[1] == f"{block}.downsample"])
            continue
        points = skips[into[0]]
        convs = [nodes[names.index(f"{block}.conv{k}")][1] for k in (1, 2)]
        top, bottom = convs[0][1], convs[1][3]
        beside = [x for x, y in points if top <= y <= bottom]
        assert beside, block  # the skip runs past the block's layers ...
        assert all(x > max(c[2] for c in convs) for x in beside) or all(x < min(c[0] for c in convs) for x in beside)
    assert len(skips) == 7 + 2 * 2  # seven identity shortcuts, two zero-pad shortcuts of two edges each
    [projection], _ = plot_architecture("resnet18", None, tmp_path / "r18", formats=("svg",))
    graph18 = architecture_graph("resnet18")
    shortcut = graph18.node("layer2.0.downsample")
    assert shortcut.kind == "shortcut" and shortcut.detail == "Conv2d 1×1 /2 + BN" and shortcut.shape == "128×28×28"


def test_depth_folds_blocks_as_summary_does():
    graph = architecture_graph("resnet20", depth=2)
    assert [n.name for n in graph.nodes][:5] == ["input", "conv1", "layer1.0", "layer1.1", "layer1.2"]
    assert graph.node("layer1.0").kind == "block" and graph.node("layer1.0").detail == "BasicBlock, 7 layers"
    deep = architecture_graph("resnet152")  # too many nodes unfolded: folded until it fits
    assert deep.depth == 2 and len(deep.nodes) <= 100
    assert sum(n.detail.startswith("Bottleneck") for n in deep.nodes) == 3 + 8 + 36 + 3
