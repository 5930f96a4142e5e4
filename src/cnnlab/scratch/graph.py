"""Containers: `Sequential` for a chain of layers, `Graph` for blocks whose data takes more than
one path (a residual block's shortcut). Both name their children, so parameter names are torch's
state-dict keys ("layer1.0.conv1.weight")."""

from __future__ import annotations

from cnnlab.scratch.layers import Buffer, Layer


class Container(Layer):
    """What Sequential and Graph share: named children, and everything that walks them."""

    def children(self) -> list[tuple[str, Layer]]:
        raise NotImplementedError

    def leaves(self):
        """(dotted name, layer) of every layer that is not a container, in forward order."""
        for name, layer in self.children():
            if isinstance(layer, Container):
                yield from ((f"{name}.{path}", leaf) for path, leaf in layer.leaves())
            else:
                yield name, layer

    def state(self) -> dict[str, Buffer]:
        return {f"{path}.{key}": entry for path, layer in self.leaves() for key, entry in layer.state().items()}

    def train(self, mode: bool = True):
        self.training = mode
        for _, layer in self.children():
            layer.train(mode)
        return self

    def _describe(self, name: str, layer: Layer) -> str:
        return f"  ({name}): " + repr(layer).replace("\n", "\n  ") + "\n"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(\n{''.join(self._describe(name, layer) for name, layer in self.children())})"


class Sequential(Container):
    """Layers in order, each under a name (given as (name, layer) pairs, or numbered 0, 1, … as torch)."""

    def __init__(self, *layers):
        self.layers = [item if isinstance(item, tuple) else (str(i), item) for i, item in enumerate(layers)]

    def children(self):
        return self.layers

    def forward(self, x):
        for _, layer in self.layers:
            x = layer(x)
        return x

    def backward(self, dout):
        for _, layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout


class Graph(Container):
    """Layers wired by name. Each node is (name, layer, *inputs): its inputs are earlier nodes, or
    "input" (the graph's input), and default to the node before it; the last node is the output.

    Forward runs the nodes in order. Backward runs them in reverse and, where a value fed several
    nodes (x feeds both the residual branch and the shortcut), *adds* the gradients coming back
    from each: the multivariable chain rule, and all the graph machinery a ResNet needs.
    """

    def __init__(self, *nodes):
        self.nodes, known = [], ["input"]
        for name, layer, *inputs in nodes:
            inputs = tuple(inputs) or (known[-1],)
            if name in known or not set(inputs) <= set(known):
                raise ValueError(f"node {name!r}: names must be new and inputs earlier nodes, got {inputs}")
            self.nodes.append((name, layer, inputs))
            known.append(name)
        unused = set(known[:-1]) - {source for _, _, inputs in self.nodes for source in inputs}
        if unused:
            raise ValueError(f"nodes {sorted(unused)} feed nothing: every value but the output must be used")

    def children(self):
        return [(name, layer) for name, layer, _ in self.nodes]

    def forward(self, x):
        values = {"input": x}
        for name, layer, inputs in self.nodes:
            values[name] = layer(*(values[source] for source in inputs))
        return values[self.nodes[-1][0]]

    def backward(self, dout):
        grads = {self.nodes[-1][0]: dout}  # dL/d(value) for every value whose consumers have all been visited
        for name, layer, inputs in reversed(self.nodes):
            input_grads = layer.backward(grads.pop(name))
            for source, grad in zip(inputs, input_grads if len(inputs) > 1 else (input_grads,)):
                grads[source] = grads[source] + grad if source in grads else grad
        return grads["input"]

    def _describe(self, name: str, layer: Layer) -> str:
        inputs = next(inputs for node, _, inputs in self.nodes if node == name)
        return super()._describe(name, layer).rstrip("\n") + f"  ← {', '.join(inputs)}\n"
