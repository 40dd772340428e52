"""Load scene files: safe YAML -> strict pydantic models, errors mapped to file:line:column."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from simgen.errors import Problem, SceneError, SceneFileError
from simgen.scene.schema import SCHEMA_VERSION, Scene
from simgen.scene.yamlpos import Path_, Positions, load_yaml

MAX_SCENE_BYTES = 4 * 1024 * 1024  # the default of simgen.limits.Limits.max_scene_bytes


def load_scene(path: str | Path) -> Scene:
    """Read and validate a scene file. Raises :class:`SceneFileError` naming file:line:column."""
    from simgen.limits import current, exceeded

    p = Path(path)
    try:
        size = p.stat().st_size
        limit = current().max_scene_bytes
        if size > limit:
            raise SceneFileError(
                [
                    Problem(
                        (),
                        exceeded("max_scene_bytes", "file size, bytes", size),
                        1,
                        1,
                        f"at most {limit} bytes",
                    )
                ],
                str(p),
            )
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SceneFileError([Problem((), "no such file")], str(p)) from None
    except IsADirectoryError:
        raise SceneFileError([Problem((), "is a directory, not a scene file")], str(p)) from None
    except UnicodeDecodeError as e:
        line = e.object[: e.start].count(b"\n") + 1
        raise SceneFileError(
            [Problem((), f"not UTF-8 text ({e.reason})", line, 1, "UTF-8 text")], str(p)
        ) from None
    except OSError as e:
        raise SceneFileError([Problem((), f"cannot read: {e.strerror}")], str(p)) from None
    return parse_scene(text, filename=str(p), base_dir=p.resolve().parent)


def parse_scene(
    text: str, filename: str | None = None, base_dir: str | Path | None = None
) -> Scene:
    """Validate scene text. ``base_dir`` anchors relative asset paths (default: the file's folder)."""
    data, positions = load_yaml(text, filename)
    if not isinstance(data, dict):
        raise SceneFileError(
            [Problem((), "a scene file must be a mapping of fields", 1, 1, "schema_version, ...")],
            filename,
        )
    version = data.get("schema_version")
    if version is None:
        raise SceneFileError(
            [Problem(("schema_version",), "missing", 1, 1, f"schema_version: {SCHEMA_VERSION}")],
            filename,
        )
    if version != SCHEMA_VERSION:
        line, col = positions.find(("schema_version",)) or (1, 1)
        raise SceneFileError(
            [
                Problem(
                    ("schema_version",),
                    f"unsupported version {version!r}",
                    line,
                    col,
                    f"{SCHEMA_VERSION} (this is simgen's scene format version)",
                )
            ],
            filename,
        )
    try:
        scene = Scene.model_validate(data)
    except ValidationError as e:
        problems = [_problem(err, data, positions) for err in e.errors(include_url=False)]
        raise SceneFileError(_sorted(_dedupe(problems)), filename) from None
    src = Path(filename) if filename else None
    return attach_source(scene, text=text, path=src, base_dir=Path(base_dir) if base_dir else None)


def attach_source(
    scene: Scene, *, text: str | None, path: Path | None, base_dir: Path | None
) -> Scene:
    """Remember where a scene came from (for asset paths and provenance)."""
    scene._source_text = text
    scene._source_path = str(path) if path else None
    scene._base_dir = str(base_dir) if base_dir else None
    return scene


def validate_scene_dict(data: dict[str, Any], filename: str | None = None) -> Scene:
    """Validate an in-memory mapping (no line numbers available)."""
    try:
        return Scene.model_validate(data)
    except ValidationError as e:
        raise SceneError(
            _dedupe([_problem(err, data, Positions()) for err in e.errors(include_url=False)]),
            filename,
        ) from None


# --- mapping pydantic errors back to the file -----------------------------------------------


def _data_path(loc: tuple[Any, ...], data: Any) -> Path_:
    """Keep the parts of a pydantic ``loc`` that exist in the data (drop union tags)."""
    out: list[str | int] = []
    cur = data
    for part in loc:
        if isinstance(cur, dict) and isinstance(part, str) and part in cur:
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, dict) and isinstance(part, str) and part not in cur:
            # a missing field, or a union tag; a tag never names a key of the data
            if part == cur.get("kind"):
                continue  # the tag of a discriminated union (errors of the whole model)
            if _is_field_of(loc, part):
                out.append(part)
                cur = None
        # anything else: a tag or an index past the end; skip it
    return tuple(out)


#: Tags of the ``value | distribution`` unions (simgen.scene.types); never field names.
_UNION_TAGS = ("value", "distribution")


def _is_field_of(loc: tuple[Any, ...], part: str) -> bool:
    return part == loc[-1] and part not in _UNION_TAGS


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class a pydantic ``loc`` points into (follows union tags)."""
    import typing

    from simgen.scene import schema

    def unwrap(tp: Any) -> list[Any]:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            return unwrap(typing.get_args(tp)[0])
        if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            out: list[Any] = []
            for a in typing.get_args(tp):
                out.extend(unwrap(a))
            return out
        return [tp]

    cur: list[Any] = [schema.Scene]
    for part in loc[:-1]:
        nxt: list[Any] = []
        for tp in cur:
            origin = typing.get_origin(tp)
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                fields = {f.alias or n: f for n, f in tp.model_fields.items()}
                fields.update(tp.model_fields)
                if isinstance(part, str) and part in fields:
                    nxt.extend(unwrap(fields[part].annotation))
                elif isinstance(part, str):
                    kind = tp.model_fields.get("kind")
                    if kind is None:
                        continue
                    # a tag: keep this model only if its kind literal matches
                    if part in typing.get_args(kind.annotation):
                        nxt.append(tp)
            elif origin in (list, tuple) and isinstance(part, int):
                args = [a for a in typing.get_args(tp) if a is not Ellipsis]
                if args:
                    nxt.extend(unwrap(args[min(part, len(args) - 1)]))
            elif origin in (list, tuple) and isinstance(part, str):
                nxt.append(tp)
        # a union member named by a tag (kind)
        tagged = [t for t in nxt if isinstance(t, type) and issubclass(t, BaseModel)]
        if isinstance(part, str) and len(tagged) > 1:
            by_kind = [
                t
                for t in tagged
                if "kind" in t.model_fields
                and part in typing.get_args(t.model_fields["kind"].annotation)
            ]
            nxt = by_kind or nxt
        cur = nxt or cur
    models = [t for t in cur if isinstance(t, type) and issubclass(t, BaseModel)]
    return models[0] if len(models) == 1 else None


_ALLOWED_BY_TYPE = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping of fields",
    "model_attributes_type": "a mapping of fields",
    "finite_number": "a finite number (no NaN or infinity)",
}


def _problem(err: Any, data: Any, positions: Positions) -> Problem:
    loc = tuple(err.get("loc", ()))
    etype = err.get("type", "")
    ctx = err.get("ctx") or {}
    path = _data_path(loc, data)
    sub = getattr(ctx.get("error"), "path", None)
    if isinstance(sub, tuple):
        path = (*path, *sub)
    msg = str(err.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    allowed: str | None = _ALLOWED_BY_TYPE.get(etype)

    if etype == "extra_forbidden":
        model = _model_at(loc) or _distribution_params(path)
        msg = f"unknown field {loc[-1]!r}"
        if model is not None:
            names = sorted(f.alias or n for n, f in model.model_fields.items())
            allowed = "fields " + ", ".join(names)
            close = _closest(str(loc[-1]), names)
            if close:
                msg += f" (did you mean {close!r}?)"
    elif etype == "missing":
        model = _model_at(loc)
        if isinstance(loc[-1], int):
            msg = f"the list is too short: item [{loc[-1]}] is missing"
            allowed = _tuple_length(loc)
        else:
            msg = f"required field {loc[-1]!r} is missing"
            if model is not None:
                desc = model.model_fields.get(str(loc[-1]))
                if desc is not None and desc.description:
                    allowed = desc.description
    elif etype == "literal_error":
        allowed = str(ctx.get("expected", ""))
        msg = f"{err.get('input')!r} is not allowed"
    elif etype in ("union_tag_invalid", "union_tag_not_found"):
        allowed = "kind " + str(ctx.get("expected_tags", ""))
        msg = (
            f"unknown kind {ctx.get('tag')!r}"
            if etype == "union_tag_invalid"
            else "missing field 'kind'"
        )
        if etype == "union_tag_invalid" and ctx.get("discriminator") == "'kind'":
            path = (*path, "kind")
    elif etype in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        allowed = msg.replace("Input should be ", "a number ")
        msg = f"{err.get('input')!r} is out of range"
    elif etype in ("too_short", "too_long"):
        allowed = msg
        msg = "wrong number of items"
    elif etype.startswith("invalid_"):
        allowed = msg.replace("expected ", "")
        msg = f"invalid value {_short(err.get('input'))}"
    elif etype in ("string_pattern_mismatch", "string_too_short", "string_too_long"):
        allowed = _description(loc) or msg.replace("String should", "a string that should")
        if etype == "string_too_long":
            allowed += " (" + msg.replace("String should have ", "") + ")"
        msg = f"{_short(err.get('input'))} is not allowed"
    elif etype in _ALLOWED_BY_TYPE and "input" in err:
        msg = f"{_short(err.get('input'))} is not {_ALLOWED_BY_TYPE[etype]}"
    if allowed is None and etype != "value_error":
        allowed = _description(loc)
    prefer_key = etype == "extra_forbidden"
    pos_path = path
    pos = positions.find(pos_path, prefer_key=prefer_key)
    line, col = pos if pos else (None, None)
    return Problem(tuple(pos_path), msg, line, col, allowed)


def _description(loc: tuple[Any, ...]) -> str | None:
    """The description of the innermost documented field along a pydantic ``loc``."""
    for i in range(len(loc) - 1, -1, -1):
        part = loc[i]
        if not isinstance(part, str):
            continue
        model = _model_at(loc[: i + 1])
        if model is None:
            continue
        for name, f in model.model_fields.items():
            if part in (name, f.alias) and f.description:
                return f.description
    return None


def _tuple_length(loc: tuple[Any, ...]) -> str | None:
    """'N items' for a missing item of a fixed-length list, from the field's type."""
    import typing

    for i in range(len(loc) - 1, -1, -1):
        part = loc[i]
        model = _model_at(loc[: i + 1]) if isinstance(part, str) else None
        if model is None:
            continue
        for name, f in model.model_fields.items():
            if part not in (name, f.alias):
                continue
            lengths = sorted(_tuple_lengths(f.annotation, typing))
            if lengths:
                return " or ".join(str(n) for n in lengths) + " items"
        return _description(loc)
    return None


def _tuple_lengths(tp: Any, typing: Any) -> set[int]:
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        return set() if Ellipsis in args else {len(args)}
    out: set[int] = set()
    if origin is not None:
        for a in typing.get_args(tp):
            out |= _tuple_lengths(a, typing)
    return out


def _distribution_params(path: Path_) -> type[BaseModel] | None:
    """The parameter model of the distribution named by the last key of ``path``
    (``{hsv: {...}}``), for unknown keys inside it."""
    from simgen.random.kinds import DISTRIBUTIONS

    for part in reversed(path[:-1]):
        if isinstance(part, str) and part in DISTRIBUTIONS:
            ann = DISTRIBUTIONS[part].model_fields[part].annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                return ann
            return None
    return None


def _short(v: Any) -> str:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return str(v)
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _closest(word: str, options: list[str]) -> str | None:
    import difflib

    m = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return m[0] if m else None


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for p in problems:
        key = (p.path, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out
