"""Re-read every committed episode and check it against its stored checksum
(``simgen verify --integrity``).

A dataset directory's manifest records each committed episode's content checksum
(:func:`simgen.io.digest.episode_digest`, computed by the worker before the commit), and every
part and shard file carries the records of its own episodes, so the check still works when the
manifest is lost. A single file written by ``simgen render -o x.h5`` carries its episodes'
checksums in the root attribute ``episode_records``; files without any are read completely
(every chunk decoded) and reported as unchecked.

Statuses: ``ok`` (checksum matches), ``mismatch`` (readable, content differs), ``unreadable``
(the file or a chunk cannot be read or decoded), ``missing`` (recorded as committed, but its file
or group is gone), ``unchecked`` (read completely, no checksum to compare with).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py

from simgen.errors import DatasetError
from simgen.io.damage import raised_by_h5py
from simgen.io.digest import episode_digest
from simgen.io.layout import episode_group_name

BAD = ("mismatch", "unreadable", "missing")


@dataclass
class EpisodeCheck:
    index: int
    status: str  # ok, mismatch, unreadable, missing, unchecked
    file: str = ""
    detail: str = ""


@dataclass
class IntegrityReport:
    path: Path
    layout: str  # directory or file
    episodes: list[EpisodeCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # not about one episode; make it fail
    notes: list[str] = field(default_factory=list)  # worth saying; not a failure

    @property
    def bad(self) -> list[EpisodeCheck]:
        return [e for e in self.episodes if e.status in BAD]

    @property
    def ok(self) -> bool:
        return not self.bad and not self.problems

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.episodes:
            out[e.status] = out.get(e.status, 0) + 1
        return out


@dataclass
class _Expected:
    file: str  # relative to the directory ("" for a single file)
    sha256: str | None


def episode_digests(path: Path) -> dict[int, str]:
    """Content checksum (:func:`simgen.io.digest.episode_digest`) of every readable episode of a
    dataset, file or directory: what two renders of the same episodes must agree on."""
    from simgen.io.reader import Dataset

    with Dataset(path) as ds:
        return {i: episode_digest(ds.episode(i).g) for i in ds.episode_indices}


def check_integrity(
    path: str | Path, *, progress: Callable[[int, int], None] | None = None
) -> IntegrityReport:
    """Check every committed episode of a dataset directory or file (see the module doc)."""
    p = Path(path)
    if p.is_dir():
        return _check_directory(p, progress)
    if not p.exists():
        raise DatasetError(f"{p}: no such dataset")
    return _check_file(p, progress)


# -- single files -------------------------------------------------------------------------------


def _check_file(p: Path, progress: Callable[[int, int], None] | None) -> IntegrityReport:
    from simgen.io.reader import Dataset
    from simgen.io.store import RECORDS_ATTR

    report = IntegrityReport(p, "file")
    with Dataset(p) as ds:  # refuses foreign, truncated and newer files with a clear error
        if ds.is_directory:
            raise DatasetError(f"{p} is the index of a dataset directory: check {p.parent}")
        raw = ds.file.attrs.get(RECORDS_ATTR)
        records = _parse_records(raw, report, str(p.name))
        names = sorted(ds.file["episodes"])
        if raw is None:
            report.notes.append(
                "this file carries no checksums (written by an older simgen): every episode "
                "was read completely, but its content cannot be compared with a checksum"
            )
        expected = {int(n): _Expected("", records.get(int(n))) for n in names}
        for i in set(records) - set(expected):
            expected[i] = _Expected("", records[i])
        for done, (i, exp) in enumerate(sorted(expected.items()), 1):
            g = ds.file["episodes"].get(episode_group_name(i))
            report.episodes.append(_check_group(i, g, exp, str(p.name), raw is not None))
            if progress is not None:
                progress(done, len(expected))
    return report


# -- dataset directories ------------------------------------------------------------------------


def _check_directory(root: Path, progress: Callable[[int, int], None] | None) -> IntegrityReport:
    from simgen.io.store import INDEX, MANIFEST, PARTS, RECORDS_ATTR, SHARDS

    report = IntegrityReport(root, "directory")
    manifest = _read_manifest(root / MANIFEST, report)
    if manifest is None and not (root / INDEX).exists():
        if not any((root / d).glob("*.h5") for d in (PARTS, SHARDS)):
            raise DatasetError(f"{root}: not a simgen dataset directory (no {MANIFEST}, {INDEX})")
    # the records each committed file carries (they survive a lost manifest)
    carried: dict[int, _Expected] = {}
    files = sorted([*(root / PARTS).glob("*.h5"), *(root / SHARDS).glob("*.h5")])
    for f in files:
        rel = f"{f.parent.name}/{f.name}"
        try:
            with h5py.File(f, "r") as h:
                raw = h.attrs.get(RECORDS_ATTR)
        except OSError as e:
            report.problems.append(f"{rel} cannot be read ({e})")
            continue
        for i, sha in _parse_records(raw, report, rel).items():
            carried.setdefault(i, _Expected(rel, sha))
    if manifest is not None:
        expected = {
            int(k): _Expected(str(v.get("file", "")), v.get("sha256"))
            for k, v in manifest.get("episodes", {}).items()
        }
        for i, c in carried.items():
            m = expected.get(i)
            if m is not None and m.file == c.file and m.sha256 != c.sha256:
                report.problems.append(
                    f"episode {i}: the manifest and {c.file} record different checksums"
                )
        for i in sorted(set(carried) - set(expected)):
            report.notes.append(
                f"episode {i} ({carried[i].file}) is committed but not yet in the manifest "
                "(a run that stopped; --resume records it); checked against its file's record"
            )
            expected[i] = carried[i]
    else:
        expected = carried
    _note_index(root / INDEX, expected, report)
    if manifest is not None:
        _note_run(manifest, expected, report)
    handles: dict[str, h5py.File | str] = {}
    try:
        for done, (i, exp) in enumerate(sorted(expected.items()), 1):
            report.episodes.append(_check_in_file(root, i, exp, handles))
            if progress is not None:
                progress(done, len(expected))
    finally:
        for h in handles.values():
            if isinstance(h, h5py.File):
                h.close()
    return report


def _read_manifest(m: Path, report: IntegrityReport) -> dict[str, Any] | None:
    if not m.is_file():
        report.problems.append(
            f"{m.name} is missing: checked against the records the shards and parts carry; "
            "failed episodes are unknown"
        )
        return None
    try:
        d = json.loads(m.read_text())
        if not isinstance(d, dict) or not isinstance(d.get("episodes", {}), dict):
            raise ValueError("not a simgen manifest")
    except (OSError, ValueError) as e:
        report.problems.append(
            f"{m.name} cannot be read ({e}): checked against the records the shards and parts "
            "carry; failed episodes are unknown"
        )
        return None
    return d


def _parse_records(raw: Any, report: IntegrityReport, where: str) -> dict[int, str | None]:
    if raw is None:
        return {}
    try:
        items = json.loads(raw)
        return {int(r["index"]): r.get("sha256") for r in items}
    except (ValueError, KeyError, TypeError) as e:
        report.problems.append(f"{where}: its episode records cannot be read ({e})")
        return {}


def _note_index(index: Path, expected: dict[int, _Expected], report: IntegrityReport) -> None:
    if not index.is_file():
        report.problems.append(
            f"{index.name} is missing ('simgen render ... --resume' rebuilds it)"
        )
        return
    try:
        with h5py.File(index, "r") as h:
            linked = {int(n) for n in h["episodes"]}
    except (OSError, KeyError) as e:
        report.problems.append(f"{index.name} cannot be read ({e}); --resume rebuilds it")
        return
    for i in sorted(linked - set(expected)):
        report.problems.append(f"episode {i} is in {index.name} but no record of it exists")
    lag = sorted(set(expected) - linked)
    if lag:
        report.notes.append(
            f"{len(lag)} committed episodes are not in {index.name} yet (it is rewritten from "
            "time to time; --resume brings it up to date)"
        )


def _note_run(manifest: dict[str, Any], expected: dict[int, _Expected], r: IntegrityReport) -> None:
    failed = manifest.get("failed", {})
    for k, v in sorted(failed.items()):
        r.notes.append(
            f"episode {int(k)} failed in the run (seed {v.get('seed')}, {v.get('attempts')} "
            f"attempts): {v.get('error')}"
        )
    requested = {i for a, b in manifest.get("requested", []) for i in range(int(a), int(b))}
    left = sorted(requested - set(expected) - {int(k) for k in failed})
    if left:
        r.notes.append(
            f"{len(left)} requested episodes were not rendered (the run stopped early; "
            "--resume continues it)"
        )


def _check_in_file(
    root: Path, index: int, exp: _Expected, handles: dict[str, h5py.File | str]
) -> EpisodeCheck:
    if exp.file not in handles:
        target = root / exp.file
        if not exp.file or not target.is_file():
            handles[exp.file] = "missing"
        else:
            try:
                handles[exp.file] = h5py.File(target, "r")
            except OSError as e:
                handles[exp.file] = f"cannot be opened ({e})"
    h = handles[exp.file]
    if isinstance(h, str):
        status = "missing" if h == "missing" else "unreadable"
        return EpisodeCheck(index, status, exp.file, f"its file {h}")
    return _check_group(index, h.get(f"episodes/{episode_group_name(index)}"), exp, exp.file)


def _check_group(
    index: int, g: Any, exp: _Expected, file: str, has_checksums: bool = True
) -> EpisodeCheck:
    if g is None:
        return EpisodeCheck(index, "missing", file, "its group is not in the file")
    if not g.attrs.get("complete", False):
        return EpisodeCheck(index, "unreadable", file, "incomplete (never committed)")
    from simgen.io.reader import EPISODE_MEMBERS

    lacking = [m for m in EPISODE_MEMBERS if m not in g]
    if lacking:
        return EpisodeCheck(index, "unreadable", file, f"damaged: lacks {', '.join(lacking)}")
    try:
        digest = episode_digest(g)  # reads and decodes every chunk
    except (OSError, KeyError) as e:
        if raised_by_h5py(e):
            return EpisodeCheck(index, "unreadable", file, f"cannot be read: {e}")
        raise
    if exp.sha256 is None:
        why = "" if not has_checksums else "no checksum recorded for it"
        return EpisodeCheck(index, "unchecked", file, why)
    if digest != exp.sha256:
        return EpisodeCheck(
            index,
            "mismatch",
            file,
            f"content checksum {digest[:12]}… != recorded {exp.sha256[:12]}…",
        )
    return EpisodeCheck(index, "ok", file)
