"""Exporters: a simgen dataset -> COCO, KITTI, YOLO or plain folders (``simgen export``).

Each exporter streams the dataset episode by episode and frame by frame (memory stays bounded)
and refuses a non-empty output folder unless ``force`` is given. docs/exports.md describes the
formats.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from simgen.errors import SimgenError
from simgen.io.exporters.common import ExportSummary

FORMATS = ("coco", "kitti", "yolo", "folders")


def _exporter(fmt: str) -> Callable[..., ExportSummary]:
    if fmt == "coco":
        from simgen.io.exporters.coco import export_coco

        return export_coco
    if fmt == "kitti":
        from simgen.io.exporters.kitti import export_kitti

        return export_kitti
    if fmt == "yolo":
        from simgen.io.exporters.yolo import export_yolo

        return export_yolo
    if fmt == "folders":
        from simgen.io.exporters.folders import export_folders

        return export_folders
    raise SimgenError(f"unknown export format {fmt!r}; formats: {', '.join(FORMATS)}")


def export(
    dataset: str | Path, fmt: str, out: str | Path, *, force: bool = False, **options: Any
) -> ExportSummary:
    """Export ``dataset`` in format ``fmt`` (one of :data:`FORMATS`) into the folder ``out``."""
    return _exporter(fmt)(dataset, out, force=force, **options)


__all__ = ["FORMATS", "ExportSummary", "export"]
