"""The spec language as a JSON Schema (`irc schema`), generated from the Pydantic models.

Pydantic's own schema describes the models as they are validated; a spec file
is written in a richer raw form, which the models accept through their
before-validators. This module adds those forms, reading them off the same
models, so a new op kind (a subclass of `ops.Op`) appears here without a
line of this file changing:

- every op: its compact string (`conv 160 1x7`, described by a pattern on the
  op's first word, taken from the model's `kind` Literal), the one-key mapping
  `{conv: {filters: 160, kernel: [1, 7]}}` and the plain mapping of its fields;
- a block use (`resnet_a x10`, `{reduction_a: {k: 256}}`), `{aux: NAME}`,
  `{concat: [...], name: ...}`, `{gate: [...], name: ...}`, `{residual: {...}}`;
- windows as `3x3`, `3`, `[1, 7]` or `k`; paddings as `1x2`, `3`, `[1, 2]` or
  `[t, b, l, r]`; counts as numbers, parameter names, arithmetic (`4*f`) or `in`;
  a branch of one op without its list;
- wherever a value is: a deviation `{value, paper, seed, why}` or `$delete`;
- a spec with `extends` need not repeat what its base says, so it is checked
  against a copy of the definitions without `required` keys, where a mapping
  may also stand for a list, editing the base's list item by item; a list
  replaces the base's whole, so its items are checked as complete.

What a schema cannot say (shapes, references between blocks, channel
arithmetic, the full compact grammar) is `irc check`'s job.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, get_args

from pydantic.json_schema import GenerateJsonSchema

from . import compact, expr, schema, settings
from .layering import AFTER, BEFORE, DELETE
from .shipped import SHIPPED_PREFIX
from .fields import (
    CORRECT,
    MAX_COUNT,
    MAX_REPEAT,
    MAX_WINDOW,
    _count,
    _rate,
    _repeat,
    _dim,
    _identifier,
    _input_side,
    _window,
    pad_padding,
    pad_side,
    padding_sides,
)
from .ops import Op

DRAFT = "https://json-schema.org/draft/2020-12/schema"
PARTIAL = "Partial"


def _anchored(pattern: str) -> str:
    """A Python `re` pattern ending in `\\Z` as a JSON Schema pattern."""
    return "^" + pattern.removesuffix("\\Z") + "$"


IDENTIFIER = {"type": "string", "pattern": _anchored(compact._IDENT.pattern)}
# Arithmetic on parameters (`4*f`, `f//2`): expr's characters, one operator or parenthesis
# at least (expr.is_expression); its grammar is `irc check`'s.
_EXPR_CHARS = r"\s0-9A-Za-z_+*/()-"
EXPRESSION = {
    "type": "string",
    "pattern": rf"^[{_EXPR_CHARS}]*[-+*/()][{_EXPR_CHARS}]*$",
    "maxLength": expr.MAX_LENGTH,
}
NAME_OR_EXPRESSION = {"anyOf": [IDENTIFIER, EXPRESSION]}


def _words(kinds: tuple[str, ...]) -> list[str]:
    """The first words a compact op of these kinds may start with."""
    return [*kinds, *(compact.ACTIVATIONS if "act" in kinds else ())]


def _one_key(key: str, value: dict) -> dict:
    return {
        "type": "object",
        "properties": {key: value},
        "required": [key],
        "additionalProperties": False,
    }


def _op_forms(model: type[Op], fields: dict) -> dict:
    kinds = get_args(model.model_fields["kind"].annotation)
    words = "|".join(_words(kinds))
    inner = {k: v for k, v in fields.items() if k not in ("title", "description")}
    inner["properties"] = {k: v for k, v in fields["properties"].items() if k != "kind"}
    compact_form = {
        "type": "string",
        "pattern": rf"^\s*({words})(\s|$)",
        "description": f"compact form, e.g. `{kinds[0]} ...` (see docs/spec-language.md)",
    }
    mappings = [_one_key(kind, {"anyOf": [inner, {"type": "null"}]}) for kind in kinds]
    return {"anyOf": [compact_form, *mappings, fields]}


def _node_kinds() -> list[str]:
    """The keys that make a one-key mapping an op or a composite rather than a block use
    (the `kind` of every model in `schema.Node` but `Use`)."""
    members = [get_args(member)[0] for member in get_args(get_args(schema.Node)[0])]
    return sorted(
        {
            kind
            for model in members
            if model is not schema.Use
            for kind in get_args(model.model_fields["kind"].annotation)
        }
    )


def _use_forms(model: type, fields: dict) -> dict:
    props = fields["properties"]
    # `from` (a keyword, so no parameter's name) is a list: not an argument's value
    ((pattern, value),) = props["args"]["patternProperties"].items()
    arguments = {
        **props["args"],
        "patternProperties": {"^(?!from$)" + pattern.removeprefix("^"): value},
        "properties": {"repeat": props["repeat"], "from": props["sources"]},
    }
    arguments.pop("default", None)
    return {
        "anyOf": [
            {
                "type": "string",
                "pattern": r"^\s*[A-Za-z_][A-Za-z0-9_]*(\s+x[0-9]+)?\s*$",
                "description": "a block template's name, optionally `xN` to repeat it",
            },
            {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 1,
                "propertyNames": {**IDENTIFIER, "not": {"enum": _node_kinds()}},
                "additionalProperties": {"anyOf": [arguments, {"type": "null"}]},
            },
        ]
    }


def _aux_forms(model: type, fields: dict) -> dict:
    return _one_key("aux", fields["properties"]["block"])


def _keyed(field: str):
    """`{concat: [...]}` or `{gate: [...]}` for the model's `field`, with its other fields
    (`name`) beside the key."""

    def forms(model: type, fields: dict) -> dict:
        (key,) = get_args(model.model_fields["kind"].annotation)
        props = fields["properties"]
        others = {k: v for k, v in props.items() if k not in ("kind", field)}
        return {
            "type": "object",
            "properties": {key: props[field], **others},
            "required": [key],
            "additionalProperties": False,
        }

    return forms


def _residual_forms(model: type, fields: dict) -> dict:
    return {"anyOf": [fields, _one_key("residual", fields)]}


def _block_forms(model: type, fields: dict) -> dict:
    # Block._one_body: exactly one of its bodies; `inputs` only with a dag.
    return {
        **fields,
        "oneOf": [{"required": [body]} for body in schema.BODIES],
        "dependentRequired": {"inputs": ["dag"]},
    }


def _builder_forms(model: type, fields: dict) -> dict:
    # Builder._distinct: not any_size and fixed_size both.
    both = {key: {"const": True} for key in ("any_size", "fixed_size")}
    return {**fields, "not": {"properties": both, "required": list(both)}}


def _step_forms(model: type, fields: dict) -> dict:
    """`{NAME: {from: ..., seq: [...]}}`, `{NAME: {add: [...], name: ...}}` or the same
    with `concat` (Step._parse)."""
    props = {k: v for k, v in fields["properties"].items() if k not in ("tensor", "sources")}
    sources = fields["properties"]["sources"]
    body = {
        "type": "object",
        "properties": {"from": {"anyOf": [IDENTIFIER, sources]}, **props},
        "additionalProperties": False,
        "oneOf": [{"required": ["from", "seq"]}, {"required": ["add"]}, {"required": ["concat"]}],
    }
    return {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "propertyNames": IDENTIFIER,
        "additionalProperties": body,
        "description": "a named tensor of a dag: a sequence `from` a tensor, or an add or "
        "concat of tensors",
    }


# Models written in a form of their own; every `ops.Op` gets `_op_forms`.
_MODEL_FORMS = {
    schema.Block: _block_forms,
    schema.Builder: _builder_forms,
    schema.Use: _use_forms,
    schema.Aux: _aux_forms,
    schema.Concat: _keyed("branches"),
    schema.Gate: _keyed("branch"),
    schema.Residual: _residual_forms,
    schema.Step: _step_forms,
}


def _side(low: int) -> dict:
    """One side of a window, stride or padding (schema._dim): a number or arithmetic."""
    number = {"type": "integer", "minimum": low, "maximum": MAX_WINDOW}
    return {"anyOf": [number, NAME_OR_EXPRESSION]}


_WINDOW_TEXT = {"type": "string", "pattern": _anchored(compact._WINDOW.pattern)}


def _window_forms(inner: dict) -> dict:
    return {"anyOf": [_WINDOW_TEXT, _side(1), inner]}


def _size_forms(inner: dict) -> dict:
    return _side(1)


def _input_side_forms(inner: dict) -> dict:
    return {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW}


def _pad_side_forms(inner: dict) -> dict:
    return _side(0)


def _padding_forms(inner: dict) -> dict:
    """`1x2`, one side for all four, (height, width), or (top, bottom, left, right)."""
    side = _side(0)
    two = {"type": "array", "prefixItems": [side] * 2, "minItems": 2, "maxItems": 2}
    return {"anyOf": [_WINDOW_TEXT, side, two, inner]}


def _pad_padding_forms(inner: dict) -> dict:
    """A pad's padding: `correct` (keras' correct_pad), or the sides as `_padding_forms`."""
    four = {"type": "array", "prefixItems": [_side(0)] * 4, "minItems": 4, "maxItems": 4}
    return {"anyOf": [{"const": CORRECT}, *_padding_forms(four)["anyOf"]]}


def _branch_forms(inner: dict) -> dict:
    return {"anyOf": [inner["items"], inner]}


def _params_forms(inner: dict) -> dict:
    return {"anyOf": [{"type": "array", "items": IDENTIFIER}, inner]}


def _count_forms(inner: dict) -> dict:
    number = {"type": "integer", "minimum": 1, "maximum": MAX_COUNT}
    return {
        "anyOf": [number, NAME_OR_EXPRESSION],
        "description": "a number, a parameter name, arithmetic on parameters (`4*f`) or `in`",
    }


def _repeat_forms(inner: dict) -> dict:
    number = {"type": "integer", "minimum": 1, "maximum": MAX_REPEAT}
    return {
        "anyOf": [number, NAME_OR_EXPRESSION],
        "description": "a number, or inside a block a parameter name or arithmetic (`n-1`)",
    }


def _scale_forms(inner: dict) -> dict:
    number = {"type": "number", "exclusiveMinimum": 0, "maximum": 1000}
    return {"anyOf": [number, IDENTIFIER, {"type": "null"}]}


def _rate_forms(inner: dict) -> dict:
    return {"anyOf": [{"type": "number", "minimum": 0, "exclusiveMaximum": 1}, IDENTIFIER]}


def _identifier_forms(inner: dict) -> dict:
    return {**inner, **IDENTIFIER}


# Validators that accept more than their annotated type, by function.
_VALIDATOR_FORMS = {
    _window: _window_forms,
    _dim: _size_forms,
    _input_side: _input_side_forms,
    pad_side: _pad_side_forms,
    padding_sides: _padding_forms,
    pad_padding: _pad_padding_forms,
    schema._as_branch: _branch_forms,
    schema._params: _params_forms,
    _count: _count_forms,
    _rate: _rate_forms,
    _repeat: _repeat_forms,
    schema._scale: _scale_forms,
    _identifier: _identifier_forms,
    schema._param_name: _identifier_forms,
    schema._tensor_name: _identifier_forms,
}


class _Generator(GenerateJsonSchema):
    """Pydantic's generator, told the raw forms the validators accept."""

    def _with_forms(self, core: Mapping[str, Any], inner: dict) -> dict:
        forms = _VALIDATOR_FORMS.get(core["function"]["function"])
        return forms(inner) if forms else inner

    def function_before_schema(self, schema):
        return self._with_forms(schema, super().function_before_schema(schema))

    def function_after_schema(self, schema):
        return self._with_forms(schema, super().function_after_schema(schema))

    def function_plain_schema(self, schema):
        # The type a validator declares it reads (json_schema_input_type), else any value.
        return self._with_forms(schema, super().function_plain_schema(schema))

    def tagged_union_schema(self, schema):
        # The discriminator is a function, and a compact string may match several
        # forms' patterns (a block use's among them): any one of them will do.
        out = super().tagged_union_schema(schema)
        out.pop("discriminator", None)
        if "oneOf" in out:
            out["anyOf"] = out.pop("oneOf")
        return out

    # Pydantic's parameter name (`schema`, which hides the module: hence Op).
    def model_schema(self, schema):
        fields = super().model_schema(schema)
        model = schema["cls"]
        if issubclass(model, Op):
            return _op_forms(model, fields)
        forms = _MODEL_FORMS.get(model)
        return forms(model, fields) if forms else fields


_DEVIATION = {
    "type": "object",
    "description": (
        "a value that departs from the paper: `value` is used, `paper` and `seed` are what "
        "the paper and the seed implementation have (null: no such thing), `why` is required"
    ),
    "properties": {"value": {}, "paper": {}, "seed": {}, "why": {"type": "string", "minLength": 1}},
    "required": ["value", "why"],
    "additionalProperties": False,
}
_ANNOTATED = {
    "anyOf": [
        {"$ref": "#/$defs/Deviation"},
        {"const": DELETE, "description": "in a variant: remove the inherited key"},
    ]
}


def _with_alternatives(node: Any) -> Any:
    """Allow a deviation or `$delete` wherever a property value or list item is.

    Pydantic's titles go on the way: they only repeat the property names.
    """
    if isinstance(node, list):
        return [_with_alternatives(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "$defs"):
            value = {name: _with_alternatives(v) for name, v in value.items()}
            if key != "$defs":
                value = {name: _alternative(v) for name, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            value = _alternative(_with_alternatives(value))
        elif key == "prefixItems":
            value = [_alternative(_with_alternatives(v)) for v in value]
        elif key != "title":
            value = _with_alternatives(value)
        else:
            continue
        out[key] = value
    return out


def _alternative(value: dict) -> dict:
    return {"anyOf": [value, {"$ref": "#/$defs/Annotated"}]}


def _list_edits(array: dict) -> dict:
    """The mapping a variant may give where its base has a list (layering.Overlay.edit)."""
    item = array.get("items", {})
    return {
        "type": "object",
        "description": (
            "in a variant: edits to the base's list, item by item "
            '(docs/spec-language.md, "Editing lists")'
        ),
        "patternProperties": {
            rf"^\{BEFORE} |^\{AFTER} ": {"anyOf": [item, {"type": "array", "items": item}]},
            r"\.": {},  # NAME.FIELD: a field inside the item
        },
        "additionalProperties": item,  # NAME or index: the item replaced, or `$delete`
    }


def _partial(node: Any, names: set[str]) -> Any:
    """The same schema with no `required` keys, referring to the partial definitions,
    where a list may also be a mapping of edits; a list given whole is complete."""
    if isinstance(node, list):
        return [_partial(item, names) for item in node]
    if not isinstance(node, dict):
        return node
    # What only a whole spec can be held to: required keys, one body of several, a key
    # that needs another, two keys not both (the base may say the other)
    out = {
        k: _partial(v, names)
        for k, v in node.items()
        if k not in ("required", "dependentRequired")
        and not (k == "oneOf" and all(set(o) == {"required"} for o in v))
        and not (k == "not" and "required" in v)
    }
    target = out.get("$ref", "").removeprefix("#/$defs/")
    if target in names:
        out["$ref"] = f"#/$defs/{PARTIAL}{target}"
    if out.get("type") == "array":  # a list replaces the base's whole: its items are complete
        return {"anyOf": [node, _list_edits(out)]}
    return out


def _from_name(defs: dict) -> None:
    """The keys a spec may leave out because its name says them (settings.FROM_NAME)
    are not required; their descriptions say what they default to."""
    spec, builder = defs["Spec"], defs["Builder"]
    spec["required"] = [k for k in spec["required"] if k not in settings.FROM_NAME]
    del builder["required"]  # `name` was its only required key
    spec["properties"]["title"]["description"] = "default: the spec's name"
    spec["properties"]["builder"]["description"] = (
        "default: a function named after the spec, `{name: NAME}`"
    )
    builder["properties"]["name"]["description"] = "default: the spec's name"
    spec["properties"]["classes"]["description"] = "default: 1000, as keras.applications"


def build() -> dict:
    """The JSON Schema of one spec file."""
    generated = schema.Spec.model_json_schema(schema_generator=_Generator)
    defs = generated.pop("$defs")
    defs["Spec"] = generated
    _from_name(defs)
    defs = _with_alternatives({"$defs": defs})["$defs"]
    partial = {f"{PARTIAL}{name}": _partial(value, set(defs)) for name, value in defs.items()}
    partial[f"{PARTIAL}Spec"]["properties"] = {
        "extends": {
            "type": "string",
            "description": (
                "the spec this one modifies: a path relative to this file, or "
                f"`{SHIPPED_PREFIX}NAME` for a spec shipped with irc (`irc specs` lists them)"
            ),
        },
        **partial[f"{PARTIAL}Spec"]["properties"],
    }
    defs["Deviation"] = copy.deepcopy(_DEVIATION)
    defs["Annotated"] = copy.deepcopy(_ANNOTATED)
    return {
        "$schema": DRAFT,
        "title": "irc spec",
        "description": (
            "A CNN architecture spec for irc (https://pypi.org/project/irc-cnn/). Generated by "
            "`irc schema` from irc's models; `irc check` checks what a schema cannot."
        ),
        "if": {"type": "object", "required": ["extends"]},
        "then": {"$ref": f"#/$defs/{PARTIAL}Spec"},
        "else": {"$ref": "#/$defs/Spec"},
        "$defs": {**defs, **partial},
    }


def render() -> str:
    """`build()` as the text `irc schema` prints and docs/irc-spec.schema.json holds."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
