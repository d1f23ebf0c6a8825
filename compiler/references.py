"""Block references checked on the raw data, for a spec the schema rejected.

resolve checks that every used block exists, but it runs only on a spec whose
fields all validated, so a misspelt block name (`gapp`, `aux: aux_haed`) would
wait until every schema error was fixed. This pass finds the block uses in the
loaded data as the schema would read them (a one-line `NAME [xN]`, a one-key
mapping whose key is no op kind, `aux: NAME`) and reports the unknown ones with
resolve's own diagnostic, so independent problems come out in one run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import compact, ops
from .diagnostics import Diagnostic
from .graph import SpecPath
from .resolve import unknown_block


def unknown_blocks(data: Any, reported: list[SpecPath]) -> list[Diagnostic]:
    """IRC401 for each use of an undefined block, except in nodes at or around which
    the schema already reported something (`reported`: data paths)."""
    if not isinstance(data, dict):
        return []
    blocks = data.get("blocks", {})
    if not isinstance(blocks, dict):
        return []  # the schema says what `blocks` must be; every use would look unknown
    around = {r[:n] for r in reported for n in range(len(r) + 1)}
    return [
        unknown_block(name, blocks, path)
        for path, name in _uses(data, blocks)
        if name not in blocks and path not in around
    ]


def _uses(data: dict, blocks: dict) -> Iterator[tuple[SpecPath, str]]:
    """(path, block name) of every block use in the network, head and block bodies."""
    for field in ("network", "head"):
        yield from _in_list(data.get(field), (field,))
    for name, block in blocks.items():
        if isinstance(block, dict):
            yield from _in_list(block.get("seq"), ("blocks", name, "seq"))
            body = {k: block[k] for k in ("concat", "residual") if k in block}
            yield from _in_node(body, ("blocks", name))


def _in_list(nodes: Any, path: SpecPath) -> Iterator[tuple[SpecPath, str]]:
    """A branch: a list of nodes, or one node standing for it."""
    if isinstance(nodes, list):
        for i, node in enumerate(nodes):
            yield from _in_node(node, (*path, i))
    elif nodes is not None:
        yield from _in_node(nodes, path)


def _in_node(node: Any, path: SpecPath) -> Iterator[tuple[SpecPath, str]]:
    if isinstance(node, str):
        try:
            kind, fields, _ = ops.parse(node)
        except compact.CompactError:
            return  # the schema reports it
        if kind == "use":
            yield path, fields["block"]
        return
    if not isinstance(node, dict):
        return
    if len(node) == 1:
        ((key, inner),) = node.items()
        if key == "aux" and isinstance(inner, str):
            yield path, inner
            return
        if key not in ops.NODE_KINDS and isinstance(key, str):
            yield path, key
            return
    concat, residual = node.get("concat"), node.get("residual")
    if isinstance(concat, list):
        for j, branch in enumerate(concat):
            yield from _in_list(branch, (*path, "concat", j))
    if isinstance(residual, dict):
        branches = residual.get("branches")
        for j, branch in enumerate(branches if isinstance(branches, list) else []):
            yield from _in_list(branch, (*path, "residual", "branches", j))
        yield from _in_list(residual.get("shortcut"), (*path, "residual", "shortcut"))
    yield from _in_list(node.get("gate"), (*path, "gate"))
