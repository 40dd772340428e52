"""Asset paths: where files named in a scene are looked up, and the folders they may come from.

A path in a scene file is one of:

* ``pybullet:<path>``: a file of the ``pybullet_data`` package (``pybullet:duck_vhacd.urdf``,
  ``pybullet:random_urdfs/000/000.urdf``);
* ``simgen:<path>``: a file shipped in simgen's ``assets/`` folder;
* a relative path: resolved against the scene file's folder;
* an absolute path: allowed only inside one of the allowed roots.

Allowed roots are the scene file's folder, simgen's assets, the pybullet_data package and any
folder passed explicitly (``--asset-root``). A path that escapes them (``..``, or a symlink
pointing elsewhere) is refused with :class:`AssetError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from simgen.errors import AssetError

PYBULLET_PREFIX = "pybullet:"
SIMGEN_PREFIX = "simgen:"


@lru_cache(maxsize=1)
def pybullet_data_dir() -> Path:
    import pybullet_data

    return Path(pybullet_data.getDataPath()).resolve()


@lru_cache(maxsize=1)
def simgen_assets_dir() -> Path:
    """The ``assets/`` folder shipped next to the package (repository layout)."""
    return (Path(__file__).resolve().parents[2] / "assets").resolve()


@dataclass(frozen=True)
class AssetResolver:
    """Resolves asset names to files inside the allowed roots."""

    base_dir: Path
    extra_roots: tuple[Path, ...] = field(default_factory=tuple)

    @classmethod
    def for_scene(
        cls, base_dir: str | Path | None, extra_roots: tuple[Path, ...] = ()
    ) -> AssetResolver:
        base = Path(base_dir).resolve() if base_dir else Path.cwd().resolve()
        return cls(base_dir=base, extra_roots=tuple(Path(r).resolve() for r in extra_roots))

    def roots(self) -> list[Path]:
        return [self.base_dir, simgen_assets_dir(), pybullet_data_dir(), *self.extra_roots]

    def _confined(self, name: str, what: str) -> Path:
        if not name or "\x00" in name:
            raise AssetError(f"{what}: empty or invalid file name {name!r}")
        if name.startswith(PYBULLET_PREFIX):
            candidate = pybullet_data_dir() / name[len(PYBULLET_PREFIX) :]
        elif name.startswith(SIMGEN_PREFIX):
            candidate = simgen_assets_dir() / name[len(SIMGEN_PREFIX) :]
        else:
            candidate = Path(name) if Path(name).is_absolute() else self.base_dir / name
        try:
            real = candidate.resolve()
        except (OSError, RuntimeError) as e:  # a symlink loop, a name too long
            raise AssetError(f"{what} {name!r}: cannot be resolved ({_reason(e)})") from None
        if not any(_inside(real, r) for r in self.roots()):
            raise AssetError(
                f"{what} {name!r} resolves to {real}, outside the allowed folders "
                f"({', '.join(str(r) for r in self.roots())}); "
                "pass --asset-root to allow another folder"
            )
        return real

    def resolve_dir(self, name: str, what: str = "folder") -> Path:
        """The real path of asset folder ``name`` (same prefixes and roots as files)."""
        real = self._confined(name, what)
        try:
            is_dir = real.is_dir()
        except OSError as e:
            raise AssetError(f"{what} {name!r}: cannot be read ({_reason(e)})") from None
        if not is_dir:
            raise AssetError(f"{what} {name!r}: no such folder {real}")
        return real

    def resolve(self, name: str, what: str = "asset") -> Path:
        """The real path of asset ``name``; raises AssetError if missing or outside the roots."""
        real = self._confined(name, what)
        try:
            is_file, size = real.is_file(), real.stat().st_size if real.exists() else 0
        except OSError as e:  # a name too long, no permission on a folder
            raise AssetError(f"{what} {name!r}: cannot be read ({_reason(e)})") from None
        if not is_file:
            hint = ""
            if name.startswith(PYBULLET_PREFIX):
                hint = ' (list them with: python -c "import pybullet_data; print(pybullet_data.getDataPath())")'
            raise AssetError(f"{what} {name!r}: no such file {real}{hint}")
        from simgen.limits import current, exceeded

        if size > current().max_asset_bytes:
            raise AssetError(
                f"{what} {name!r} ({real}): "
                + exceeded("max_asset_bytes", "file size, bytes", size)
            )
        return real


def _reason(e: BaseException) -> str:
    return (e.strerror if isinstance(e, OSError) and e.strerror else str(e)) or type(e).__name__


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False
