"""Synthetic specs of N distinct residual blocks, for measuring how irc scales."""

from __future__ import annotations


def synthetic_spec(blocks: int) -> str:
    """A valid spec with `blocks` block templates, each used once, in order."""
    lines = [
        f"name: synthetic_{blocks}",
        "title: Synthetic",
        "input: [8, 8, 16]",
        "classes: 10",
        "builder: {name: create_synthetic}",
        "blocks:",
    ]
    for i in range(blocks):
        lines.append(
            f"  u{i}: {{residual: {{branches: [conv 8 1x1, [conv 8 1x1, conv 8 3x3]], "
            f"project: conv 16 1x1 linear, scale: 0.1}}}}"
        )
    lines.append("network:")
    lines += [f"  - u{i}" for i in range(blocks)]
    lines += ["head: [gap, dense classes softmax]", ""]
    return "\n".join(lines)
