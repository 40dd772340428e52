"""Checks of asset files before the engines read them: a broken file gives an
:class:`~simgen.errors.AssetError` naming the object and the file, never a crash or a silent
blank.

* textures: must be an image within ``max_texture_pixels`` (checked on the header, before the
  pixels are decoded) that decodes completely;
* URDF files: a ``<robot>``, every ``<mesh filename=...>``
  present and inside the allowed folders (pybullet would otherwise skip a missing mesh with a
  warning, or read a file from anywhere);
* meshes (:mod:`simgen.sim.visuals`): readable, with triangles, finite vertices and some area.

Results are cached by (path, size, modification time), so an asset used in every episode is
checked once per process.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from simgen.errors import AssetError, format_field_path
from simgen.limits import current, exceeded
from simgen.sim.assets import AssetResolver


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns


def check_texture(path: Path, what: str) -> None:
    """Raise AssetError if ``path`` is not an image or is larger than ``max_texture_pixels``."""
    try:
        width, height = _image_size(*_stamp(path))
    except AssetError as e:
        raise AssetError(f"{what} {e}") from None
    if width <= 0 or height <= 0:
        raise AssetError(f"{what} {path}: the image is empty ({width} x {height} pixels)")
    if width * height > current().max_texture_pixels:
        raise AssetError(
            f"{what} {path}: "
            + exceeded("max_texture_pixels", f"texture pixels ({width} x {height})", width * height)
        )
    try:
        _decode(*_stamp(path))
    except AssetError as e:
        raise AssetError(f"{what} {e}") from None


@lru_cache(maxsize=512)
def _image_size(path: str, size: int, mtime_ns: int) -> tuple[int, int]:
    del mtime_ns  # part of the cache key only
    if size == 0:
        raise AssetError(f"{path}: the file is empty, not an image")
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # the limit is ours (max_texture_pixels), with our message
    try:
        with Image.open(path) as img:  # reads the header only
            return int(img.width), int(img.height)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise AssetError(f"{path}: not an image in a known format (PNG, JPEG, ...): {e}") from None


@lru_cache(maxsize=512)
def _decode(path: str, size: int, mtime_ns: int) -> None:
    """Decode the whole image once (a truncated or corrupt file passes the header check)."""
    del size, mtime_ns
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
    except (OSError, ValueError, SyntaxError) as e:
        raise AssetError(f"{path}: the image is corrupt or truncated ({e})") from None


def check_urdf(path: Path, assets: AssetResolver, what: str) -> None:
    """Raise AssetError if the URDF ``path`` is not plain XML or names a mesh that is missing
    or outside the allowed folders."""
    if path.suffix.lower() != ".urdf":
        return
    try:
        meshes = _urdf_meshes(*_stamp(path))
    except AssetError as e:
        raise AssetError(f"{what} {e}") from None
    for mesh in meshes:
        file = _mesh_path(mesh, path)
        try:
            assets.resolve(str(file), "mesh")
        except AssetError as e:
            raise AssetError(f"{what} {path}: its mesh {mesh!r}: {e}") from None


_COMMENT = re.compile(rb"<!--.*?-->", re.S)
_MESH = re.compile(rb"""<mesh\b[^>]*?\bfilename\s*=\s*(?:"([^"]*)"|'([^']*)')""")


@lru_cache(maxsize=512)
def _urdf_meshes(path: str, size: int, mtime_ns: int) -> tuple[str, ...]:
    """The mesh file names of a URDF. Scanned, not parsed: pybullet's XML reader accepts files
    a strict parser refuses (text before the XML declaration, stray characters), and nothing
    is expanded (entities)."""
    del mtime_ns
    if size == 0:
        raise AssetError(f"{path}: the file is empty")
    if size > current().max_asset_bytes:
        raise AssetError(f"{path}: " + exceeded("max_asset_bytes", "file size", size))
    data = _COMMENT.sub(b"", Path(path).read_bytes())
    if not re.search(rb"<robot\b", data):
        raise AssetError(f"{path}: no <robot> element: not a URDF file")
    return tuple(
        (m.group(1) or m.group(2) or b"").decode(errors="replace") for m in _MESH.finditer(data)
    )


def _mesh_path(name: str, urdf: Path) -> Path:
    """Where pybullet finds a URDF mesh: relative to the URDF's folder or, as pybullet also
    tries, to one of the three folders above it (``package://`` removed); absolute as is."""
    if not name:
        raise AssetError(f"URDF {urdf}: a <mesh> without a filename")
    rest = name[len("package://") :] if name.startswith("package://") else name
    if Path(rest).is_absolute():
        return Path(rest)
    for folder in (urdf.parent, *list(urdf.parent.parents)[:3]):
        try:
            if (folder / rest).is_file():
                return folder / rest
        except OSError:
            break
    return urdf.parent / rest


def scene_asset_errors(scene: Any, asset_roots: tuple[str | Path, ...] = ()) -> list[str]:
    """Every problem with the asset paths written in ``scene`` (missing files, paths outside
    the allowed folders, textures that are not images, URDFs with missing meshes), without
    loading a mesh or starting pybullet: what ``simgen validate`` reports. Paths drawn from
    ``files:`` folders are checked by their folder."""
    from simgen.random.files import Files, list_files

    assets = AssetResolver.for_scene(scene.base_dir, tuple(Path(r) for r in asset_roots))
    out: list[str] = []
    for path, what, ref in _asset_refs(scene, ()):
        try:
            if isinstance(ref, Files):
                list_files(assets, ref.files.folder, ref.files.pattern)
            elif isinstance(ref, str):
                real = assets.resolve(ref, what)
                if what == "texture":
                    check_texture(real, what)
                elif what == "asset":
                    check_urdf(real, assets, "URDF")
        except AssetError as e:
            out.append(f"{format_field_path(path)}: {e}")
    return out


_ASSET_FIELDS = {"file": "mesh", "asset": "asset", "assets": "asset", "texture": "texture"}


def _asset_refs(node: Any, path: tuple[str | int, ...]) -> Iterator[tuple[Any, str, Any]]:
    """(field path, what, value) of every asset reference under a scene model."""
    from pydantic import BaseModel

    from simgen.random.files import Files

    if isinstance(node, Files):
        yield path, "folder", node
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            v = getattr(node, name)
            if name in _ASSET_FIELDS and isinstance(v, str):
                yield (*path, name), _ASSET_FIELDS[name], v
            else:
                yield from _asset_refs(v, (*path, name))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _asset_refs(v, (*path, i))
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _asset_refs(v, (*path, str(k)))


__all__ = ["check_texture", "check_urdf", "scene_asset_errors"]
