"""The order in which Keras lists a generated model's layers, computed without Keras.

A legacy HDF5 weights file (keras.applications' published ImageNet files) is
loaded by order: the i-th layer with weights in the file goes to the i-th in
`model.layers`. Keras orders a functional model's layers by their depth (the
longest path to an output, deepest first) and, within one depth, by a
depth-first walk from the outputs that visits each layer's inputs in order
(`keras.src.ops.function.map_graph`). This module replays that rule on irc's
graph, whose layers carry their inputs in the generated code's order, so that a
backend without Keras (torch) can read such a file by position.
"""

from __future__ import annotations

from ...compiler.graph import INPUT, Graph, Layer


def _outputs(layers: list[Layer], roles: dict[str, str], include_top: bool) -> list[str]:
    """The model's outputs: the main path's last layer, then each auxiliary head's."""
    main = [layer for layer in layers if roles.get(layer.stage) != "aux"]
    if not include_top:
        return [main[-1].name]
    ends: dict[str, str] = {}
    for layer in layers:
        if roles.get(layer.stage) == "aux":
            ends[layer.stage] = layer.name
    return [main[-1].name, *ends.values()]


def layer_order(graph: Graph, include_top: bool = True) -> list[str]:
    """Every layer's name (the input's aside) in the order of Keras' `model.layers`."""
    roles = {stage.name: stage.role for stage in graph.stages}
    layers = [
        layer for layer in graph.layers if include_top or roles.get(layer.stage, "body") == "body"
    ]
    inputs = {layer.name: [i for i in layer.inputs if i != INPUT] for layer in layers}
    index: dict[str, int] = {}  # first visit of the walk from the outputs
    post: list[str] = []  # each layer once its inputs are done: inputs before users
    outputs = _outputs(layers, roles, include_top)
    for output in outputs:
        stack = [(output, 0)]  # a layer and the next of its inputs to visit
        while stack:
            name, k = stack.pop()
            if k == 0:
                if name in index:
                    continue  # reached again through another path: done already
                index[name] = len(index)
            if k < len(inputs[name]):
                stack += [(name, k + 1), (inputs[name][k], 0)]
            else:
                post.append(name)
    depth = dict.fromkeys(outputs, 0)
    for name in reversed(post):
        for parent in inputs[name]:
            depth[parent] = max(depth.get(parent, 0), depth.get(name, 0) + 1)
    return sorted(post, key=lambda name: (-depth[name], index[name]))


def weighted_order(graph: Graph, include_top: bool = True) -> list[str]:
    """The layers with weights, in Keras' order: the order a legacy HDF5 file holds them."""
    params = {layer.name: layer.params for layer in graph.layers}
    return [name for name in layer_order(graph, include_top) if params[name]]
