"""File distributions: "any file in a folder" and fixed asset pools.

``{files: {folder: 'pybullet:random_urdfs', pattern: '*/*.urdf'}}`` draws one file uniformly
from the files matching ``pattern`` under ``folder`` (sorted, so the draw depends only on the
seed and the folder's content). ``pool_size: 20`` first fixes a pool of 20 of those files
(chosen by ``pool_seed``, the same for every episode and every run) and draws from the pool:
a held-out set of assets is another ``pool_seed``.

Folders are asset paths (:mod:`simgen.sim.assets`): ``pybullet:<dir>``, ``simgen:<dir>``, relative
to the scene file, or absolute inside an allowed root. Files that resolve outside the allowed
roots (a symlink pointing elsewhere) are skipped, and the folder itself must be inside them.
The value is the file's asset path, e.g. ``pybullet:random_urdfs/042/042.urdf``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from simgen.errors import AssetError, SamplingError
from simgen.random.distributions import Distribution, SamplingContext
from simgen.random.seeding import dataset_rng

MAX_LISTED = 100_000


class FilesParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    folder: str = Field(
        min_length=1, description="asset folder: pybullet:<dir>, simgen:<dir>, relative or absolute"
    )
    pattern: str = Field(
        default="*", description="glob under the folder, e.g. '*/*.urdf' or '**/*.png'"
    )
    pool_size: int | None = Field(
        default=None, ge=1, description="draw from a fixed pool of this many files"
    )
    pool_seed: int = Field(default=0, ge=0, description="which pool (the same in every episode)")

    @field_validator("pattern")
    @classmethod
    def _relative(cls, p: str) -> str:
        pp = PurePosixPath(p)
        if pp.is_absolute() or ".." in pp.parts or "\\" in p or not p:
            raise ValueError("pattern must be a relative glob without '..'")
        return p


def asset_name(folder: str, relative: str) -> str:
    """The asset path of ``relative`` inside asset folder ``folder``."""
    if folder.endswith((":", "/")):
        return folder + relative
    return f"{folder}/{relative}"


@lru_cache(maxsize=64)
def _listing(real_dir: str, pattern: str, roots: tuple[str, ...]) -> tuple[str, ...]:
    base = Path(real_dir)
    out: list[str] = []
    for p in base.glob(pattern):
        real = p.resolve()
        if not real.is_file() or not any(_inside(real, Path(r)) for r in roots):
            continue
        out.append(p.relative_to(base).as_posix())
        if len(out) > MAX_LISTED:
            raise AssetError(f"more than {MAX_LISTED} files match {pattern!r} in {real_dir}")
    return tuple(sorted(out))


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def list_files(assets: Any, folder: str, pattern: str) -> tuple[str, ...]:
    """Relative paths (sorted) of the files matching ``pattern`` in asset folder ``folder``."""
    real = assets.resolve_dir(folder, "files: folder")
    return _listing(str(real), pattern, tuple(str(r) for r in assets.roots()))


@lru_cache(maxsize=64)
def _pool(
    files: tuple[str, ...], size: int, seed: int, folder: str, pattern: str
) -> tuple[str, ...]:
    if size >= len(files):
        return files
    idx = dataset_rng(seed, "pool", folder, pattern).choice(len(files), size=size, replace=False)
    return tuple(files[int(i)] for i in sorted(idx))


class Files(Distribution):
    """Any file in a folder (textures, meshes, URDFs), or one of a fixed pool of them."""

    tag: ClassVar[str] = "files"
    files: FilesParams

    def candidates(self, ctx: SamplingContext) -> tuple[str, ...]:
        """The asset paths this distribution draws from (uniformly)."""
        p = self.files
        if ctx.assets is None:
            raise SamplingError(
                "files: needs the allowed asset folders (a scene loaded from a file)"
            )
        found = list_files(ctx.assets, p.folder, p.pattern)
        if not found:
            raise SamplingError(f"files: no file matches {p.pattern!r} in {p.folder!r}")
        if p.pool_size is not None:
            found = _pool(found, p.pool_size, p.pool_seed, p.folder, p.pattern)
        return tuple(asset_name(p.folder, f) for f in found)

    def sample(self, rng: np.random.Generator) -> str:
        raise SamplingError("files: samples only inside an episode (it needs the asset folders)")

    def sample_in(self, rng: np.random.Generator, ctx: SamplingContext) -> str:
        c = self.candidates(ctx)
        return c[int(rng.integers(len(c)))]
