"""The JSON Schema of scene files, for editors (YAML language servers validate and complete)."""

from __future__ import annotations

from typing import Any

from simgen.scene.schema import Scene

SCHEMA_ID = "https://simgen.dev/schema/scene-v1.json"


def scene_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a scene file, validating by alias (``class``, not ``class_name``)."""
    schema = Scene.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "simgen scene file (schema_version 1)"
    return schema
