"""Configuration errors as YAML users read them: ``<yaml.path>: <message>, got <value>``.

Pydantic's own messages ("Input should be ...") talk about Python types; users edit YAML. Each error is
rewritten here as ``<yaml.path>: <message>, got <value>`` with bounds read back from the schema, and a
secret's value is never echoed.
"""

from __future__ import annotations

import difflib
import inspect
from typing import TYPE_CHECKING, Any, get_args

from pydantic import BaseModel, SecretStr

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from pydantic import ValidationError
    from pydantic.fields import FieldInfo


_MAX_VALUE_CHARS = 80

_MESSAGES: dict[str, str] = {
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "missing": "is required",
    "finite_number": "must be a finite number",
}


def render_value(value: object) -> str:
    """A YAML-flavoured repr: ``true``/``null`` rather than ``True``/``None``; long values are cut."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(render_value(v) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{render_value(k)}: {render_value(v)}" for k, v in value.items()) + "}"
    else:
        text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


def suggest_key(key: str, known: Iterable[str]) -> str:
    """Suffix for an unknown-key message: the closest known key, else the full list."""
    names = sorted(set(known))
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]}?)"
    return f" (expected one of: {', '.join(names)})"


def join_path(prefix: str, loc: Iterable[int | str]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def translate_errors(
    exc: ValidationError,
    model: type[BaseModel],
    prefix: str,
    extra_keys: Mapping[str, Iterable[str]] | None = None,
) -> list[str]:
    """Rewrite pydantic's errors for ``model`` (validated at YAML path ``prefix``) as user-facing lines.

    ``extra_keys`` adds accepted spellings (aliases handled by the loader) per parent path, for suggestions.
    """
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        path = join_path(prefix, loc)
        parent, field = _walk(model, loc)
        kind = error["type"]
        if kind == "extra_forbidden":
            known = [f.alias or name for name, f in parent.model_fields.items()] if parent else []
            known.extend((extra_keys or {}).get(join_path(prefix, loc[:-1]), ()))
            lines.append(f"{path}: unknown key{suggest_key(str(loc[-1]), known)}")
            continue
        if kind == "missing":
            lines.append(f"{path}: is required")
            continue
        message = _message(kind, error.get("ctx") or {}, field, error["msg"])
        if field is not None and _mentions(field.annotation, SecretStr):
            lines.append(f"{path}: {message} (value not shown)")
        else:
            lines.append(f"{path}: {message}, got {render_value(error.get('input'))}")
    return lines


def _message(kind: str, ctx: Mapping[str, Any], field: FieldInfo | None, fallback: str) -> str:
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        bounds = dict(_bounds(field)) if field is not None else {}
        bounds.update({k: ctx[k] for k in ("gt", "ge", "lt", "le") if k in ctx})
        return _bound_message(bounds)
    if kind in {"literal_error", "enum"}:
        return f"must be one of {ctx.get('expected', '?')}"
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    return fallback


def render_number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _bound_message(b: Mapping[str, object]) -> str:
    low = ("at least", b["ge"]) if "ge" in b else ("greater than", b["gt"]) if "gt" in b else None
    high = ("at most", b["le"]) if "le" in b else ("less than", b["lt"]) if "lt" in b else None
    if low and high:
        if "ge" in b and "le" in b:
            return f"must be between {render_number(b['ge'])} and {render_number(b['le'])}"
        return f"must be {low[0]} {render_number(low[1])} and {high[0]} {render_number(high[1])}"
    only = low or high
    return f"must be {only[0]} {render_number(only[1])}" if only else "is out of range"


def _bounds(field: FieldInfo) -> dict[str, object]:
    found: dict[str, object] = {}
    pending: list[Any] = list(field.metadata)
    pending.extend(_annotated_metadata(field.annotation))
    while pending:
        item = pending.pop()
        for name in ("gt", "ge", "lt", "le"):
            value = getattr(item, name, None)
            if value is not None and not callable(value):
                found.setdefault(name, value)
        pending.extend(getattr(item, "metadata", ()))
    return found


def _annotated_metadata(annotation: object) -> list[Any]:
    found: list[Any] = list(getattr(annotation, "__metadata__", ()))
    for arg in get_args(annotation):
        found.extend(_annotated_metadata(arg))
    return found


def _mentions(annotation: object, target: type) -> bool:
    if annotation is target:
        return True
    return any(_mentions(arg, target) for arg in get_args(annotation))


def _model_in(annotation: object) -> type[BaseModel] | None:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _walk(
    model: type[BaseModel], loc: tuple[int | str, ...]
) -> tuple[type[BaseModel] | None, FieldInfo | None]:
    """The model holding ``loc[-1]`` and the deepest named field along ``loc``."""
    current: type[BaseModel] | None = model
    parent: type[BaseModel] | None = model
    field: FieldInfo | None = None
    for part in loc:
        parent = current
        match = _field_named(current, part) if current is not None and isinstance(part, str) else None
        if match is None:
            current = None
            continue
        field = match
        current = _model_in(match.annotation)
    return parent, field


def _field_named(model: type[BaseModel], name: str) -> FieldInfo | None:
    for field_name, field in model.model_fields.items():
        if name in {field_name, field.alias}:
            return field
    return None
