"""`irc diff A B`: what changed between two specs, and what it costs.

Blocks are compared as validated models, so `conv 160 1x7` and its mapping
form are equal; network changes are summed per block (repeats), and the
deltas come from each spec's own inferred graph.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from . import naming, ops
from .pipeline import Result


def _leaves(value: Any, path: tuple = ()) -> dict[tuple, Any]:
    if isinstance(value, dict):
        out: dict[tuple, Any] = {}
        for key, item in value.items():
            out.update(_leaves(item, (*path, key)))
        return out
    if isinstance(value, list):
        out = {(*path, "#len"): len(value)}
        for index, item in enumerate(value):
            out.update(_leaves(item, (*path, index)))
        return out
    return {path: value}


def changes(old: Any, new: Any) -> list[tuple[str, Any, Any]]:
    """Leaf-by-leaf differences of two model dumps: (dotted path, old, new)."""
    a, b = _leaves(old), _leaves(new)
    out = []
    for path in sorted(set(a) | set(b), key=lambda p: tuple(str(s) for s in p)):
        if a.get(path, "<absent>") != b.get(path, "<absent>"):
            dotted = ".".join(str(s) for s in path)
            out.append((dotted, a.get(path, "<absent>"), b.get(path, "<absent>")))
    return out


def _union(a: dict, b: dict) -> list[str]:
    return list(a) + [k for k in b if k not in a]


def _ops_by_name(block: Any) -> dict[str, str]:
    """A block as {layer name suffix: compact op}, so edits line up by position."""
    out = {"params": str(block.params)} if block.params else {}
    return out | _flat(block.body, "")


def _flat(nodes: list, prefix: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for node, local in zip(nodes, naming.local_names(nodes)):
        if node.kind == "gate":
            inner = naming.concat_layer(prefix, local, naming.scope(prefix, local, nodes))
            out |= _flat(node.branch, inner)
            out[inner] = "gate"
        elif node.kind in ("concat", "residual"):
            inner = naming.scope(prefix, local, nodes)
            for j, branch in enumerate(node.branches):
                out |= _flat(branch, naming.branch(inner, j))
            if node.kind == "residual":
                if node.project is not None:
                    project = ops.unparse(node.project.model_dump())
                    out[naming.join(inner, "project")] = project
                if node.shortcut:
                    out |= _flat(node.shortcut, naming.join(inner, "shortcut"))
                out[naming.join(inner, "sum")] = _sum(node.scale, node.activation)
            else:
                out[naming.concat_layer(prefix, local, inner)] = "concat"
        else:
            out[naming.join(prefix, local)] = ops.unparse(node.model_dump())
    return out


def _sum(scale: Any, activation: Any) -> str:
    """A residual sum as `diff` prints it: `x + 0.1 * r, then relu` (no activation: none)."""
    text = "x + r" if scale is None else f"x + {scale} * r"
    return text if activation in (None, "linear") else f"{text}, then {activation}"


def _ops(a: list, b: list) -> list[tuple[str, Any, Any]]:
    """Two op sequences (the head) compared as the compact ops a spec would write."""
    old = [ops.unparse(n.model_dump()) for n in a]
    new = [ops.unparse(n.model_dump()) for n in b]
    return [] if old == new else [("", old, new)]


def _uses(result: Result) -> Counter:
    counts: Counter = Counter()
    for stage in result.graph.stages:
        if stage.block is not None:
            counts[stage.block] += 1
    return counts


def diff(a: Result, b: Result) -> dict[str, Any]:
    spa, spb = a.valid_spec, b.valid_spec
    ga, gb = a.graph, b.graph
    blocks_a, blocks_b = set(spa.blocks), set(spb.blocks)
    changed = {}
    for name in sorted(blocks_a & blocks_b):
        ops = _ops_by_name(spa.blocks[name]), _ops_by_name(spb.blocks[name])
        found = [(k, ops[0].get(k, "-"), ops[1].get(k, "-")) for k in _union(*ops)]
        found = [item for item in found if item[1] != item[2]]
        if found:
            changed[name] = found
    uses_a, uses_b = _uses(a), _uses(b)
    repeats = {
        block: (uses_a.get(block, 0), uses_b.get(block, 0))
        for block in sorted(set(uses_a) | set(uses_b))
        if uses_a.get(block, 0) != uses_b.get(block, 0)
    }
    top = ("name", "title", "input", "classes", "builder", "defaults", "width", "depth", "scale")
    settings = changes(
        {k: v for k, v in spa.model_dump().items() if k in top},
        {k: v for k, v in spb.model_dump().items() if k in top},
    )
    report = {
        "a": a.file,
        "b": b.file,
        "settings": settings,
        "blocks_added": sorted(blocks_b - blocks_a),
        "blocks_removed": sorted(blocks_a - blocks_b),
        "blocks_changed": changed,
        "uses": repeats,
        "head": _ops(spa.head, spb.head),
        "params": (ga.params, gb.params, gb.params - ga.params),
        "params_percent": percent(ga.params, gb.params),
        "macs": (ga.macs, gb.macs, gb.macs - ga.macs),
        "macs_percent": percent(ga.macs, gb.macs),
        "outputs": ([list(s) for s in ga.outputs], [list(s) for s in gb.outputs]),
    }
    report["differs"] = differs(report)
    return report


def percent(old: int, new: int) -> float | None:
    """The change from old to new in percent of old (None when old is 0)."""
    return round(100 * (new - old) / old, 2) if old else None


def differs(report: dict[str, Any]) -> bool:
    """Whether the two specs differ in anything the report lists (`irc diff` exits 1)."""
    listed = ("settings", "blocks_added", "blocks_removed", "blocks_changed", "uses", "head")
    outputs_a, outputs_b = report["outputs"]
    return (
        any(report[key] for key in listed)
        or report["params"][2] != 0
        or report["macs"][2] != 0
        or outputs_a != outputs_b
    )


def _delta(delta: int, pct: float | None) -> str:
    return f"{delta:+,}" + (f", {pct:+.2f}%" if pct is not None else "")


def render(report: dict[str, Any]) -> str:
    lines = [f"--- {report['a']}", f"+++ {report['b']}"]
    for path, old, new in report["settings"]:
        lines.append(f"  {path}: {old} -> {new}")
    for name in report["blocks_added"]:
        lines.append(f"  block added: {name}")
    for name in report["blocks_removed"]:
        lines.append(f"  block removed: {name}")
    for name, items in report["blocks_changed"].items():
        lines.append(f"  block changed: {name}")
        lines += [f"    {path}: {old} -> {new}" for path, old, new in items]
    for block, (old, new) in report["uses"].items():
        lines.append(f"  uses of {block}: {old} -> {new}")
    for _, old, new in report["head"]:
        lines.append(f"  head: [{', '.join(old)}] -> [{', '.join(new)}]")
    pa, pb, dp = report["params"]
    ma, mb, dm = report["macs"]
    lines.append(f"  parameters: {pa:,} -> {pb:,} ({_delta(dp, report['params_percent'])})")
    lines.append(f"  multiply-accumulates: {ma:,} -> {mb:,} ({_delta(dm, report['macs_percent'])})")
    oa, ob = report["outputs"]
    if oa != ob:
        lines.append(f"  outputs: {oa} -> {ob}")
    if not report["differs"]:
        lines.append("  no differences")
    return "\n".join(lines)
