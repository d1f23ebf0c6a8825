"""The op vocabulary: each op kind defined once, in its family's module.

Importing this package registers every kind (in this order: the order hints and
the JSON Schema list them). To add an op, see CONTRIBUTING.md ("Adding an op").
"""

from . import conv, layout, pool, norm, elementwise, dense  # noqa: F401  (registration)
from .. import compact
from .base import REGISTRY, SYNTAX, Op, OpDef, parse, unparse

KINDS = tuple(REGISTRY)
# Every key a one-key mapping node may have besides a block's name (schema._node_tag).
NODE_KINDS = (*KINDS, *compact.COMPOSITE_KINDS)

__all__ = ["KINDS", "NODE_KINDS", "REGISTRY", "SYNTAX", "Op", "OpDef", "parse", "unparse"]
