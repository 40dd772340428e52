"""Scene description: schema (pydantic models) and the YAML loader."""

from simgen.scene.schema import SCHEMA_VERSION, Scene

__all__ = ["SCHEMA_VERSION", "Scene"]
