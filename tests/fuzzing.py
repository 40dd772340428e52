"""Mutations of scene files for property-based fuzzing (hypothesis), and the oracle they obey.

Used by ``tests/test_fuzz.py`` (a bounded, derandomized run in CI) and by
``benchmarks/fuzz_campaign.py`` (a large campaign in subprocesses, recorded in
docs/reliability.md). A mutant is an example scene with one to four mutations:

* on the parsed tree: a value replaced by a wrong type, an extreme number (negative, zero, NaN,
  infinity, 1e308, 10**30, denormals), a huge string, a nonsense distribution; a key deleted
  (missing field); an unknown key added; a value wrapped in a list or mapping (wrong nesting);
  a subtree moved somewhere else; a list item duplicated (duplicate names); a name replaced by
  one that does not exist (dangling references to objects, cameras, lights); numbers scaled by
  huge factors;
* on the text: truncation, a deleted or inserted character, a duplicated line (duplicate keys),
  an object-constructing tag, an alias bomb, tabs, a NUL byte.

The oracle (:func:`check_load`): loading a mutant either gives a scene or raises
:class:`~simgen.errors.SceneFileError` whose every problem names the file, a line, a field and
a message; nothing else is allowed.
"""

from __future__ import annotations

import copy
import functools
import math
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
SCENES = sorted((ROOT / "scenes").glob("*.yaml"))
FUZZ_FILE = "fuzz.yaml"

Tree = Any
Path_ = tuple[Any, ...]

#: Values that are wrong somewhere (types, ranges, shapes, references).
BAD_VALUES: list[Any] = [
    None,
    True,
    False,
    "",
    "ghost",
    "x" * 300,
    "#zzzzzz",
    -1,
    0,
    -0.0,
    1e-320,
    1e308,
    -1e308,
    10**30,
    -(10**30),
    2**63,
    float("nan"),
    float("inf"),
    float("-inf"),
    [],
    {},
    [1, 2],
    [0, 0, 0, 0, 0],
    [float("nan"), 0, 0],
    [1e300, 1e300, 1e300],
    {"uniform": [1, 0]},
    {"uniform": [0, 1e308]},
    {"uniform": [-1e308, 1e308]},
    {"normal": {"mean": 0, "std": 1e300}},
    {"log_uniform": [0, 1]},
    {"randint": [0, 10**12]},
    {"randint": [5, 2]},
    {"choice": []},
    {"choice": [{"uniform": [0, 1]}]},
    {"files": {"folder": "..", "pattern": "*"}},
    {"files": {"folder": "/etc", "pattern": "*"}},
    {"files": {"folder": "pybullet:random_urdfs", "pattern": "../*"}},
    {"custom": {"name": "os.system", "args": {"command": "ls"}}},
    {"per_frame": {"uniform": [0, 1]}},
    {"hsv": {"hue_deg": [400, -5]}},
    {"in_box": {"center": [0, 0], "size": [1, 1, 1]}},
    {"uniform_rotation": {"extra": 1}},
    {"unknown_dist": [0, 1]},
    "../../../../etc/passwd",
    "/etc/passwd",
    "pybullet:../../../../etc/passwd",
    "simgen:../pyproject.toml",
    "pybullet:does_not_exist.urdf",
    "!!python/object/apply:os.system ['ls']",
]

#: Factors applied to numbers (sizes, masses, velocities, rates, resolutions...).
SCALES = [-1.0, 0.0, 1e-12, 1e-6, 1e3, 1e6, 1e12, 1e300]

UNKNOWN_KEYS = ["colour", "sise", "extra", "kind", "name", "mass", "__class__", "<<", "1"]


def load_tree(path: Path) -> Tree:
    """A fresh copy of the parsed scene (parsed once per process)."""
    return copy.deepcopy(_parsed(path))


@functools.lru_cache(maxsize=32)
def _parsed(path: Path) -> Tree:
    return yaml.safe_load(path.read_text())


def all_paths(tree: Tree, base: Path_ = ()) -> list[Path_]:
    """Every path to a node of the tree (the root excluded), depth first."""
    out: list[Path_] = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.append((*base, k))
            out.extend(all_paths(v, (*base, k)))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out.append((*base, i))
            out.extend(all_paths(v, (*base, i)))
    return out


def get(tree: Tree, path: Path_) -> Any:
    for p in path:
        tree = tree[p]
    return tree


def put(tree: Tree, path: Path_, value: Any) -> None:
    get(tree, path[:-1])[path[-1]] = value


# -- tree mutations -----------------------------------------------------------------------------


def _replace(draw: Any, t: Tree, p: Path_) -> None:
    value = draw(
        st.one_of(
            st.sampled_from(BAD_VALUES),
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(min_value=-(2**70), max_value=2**70),
            st.text(max_size=8),
        )
    )
    put(t, p, copy.deepcopy(value))


def _delete(draw: Any, t: Tree, p: Path_) -> None:
    parent = get(t, p[:-1])
    if isinstance(parent, dict):
        del parent[p[-1]]
    else:
        parent.pop(p[-1])


def _add_key(draw: Any, t: Tree, p: Path_) -> None:
    node = get(t, p)
    if isinstance(node, dict):
        node[draw(st.sampled_from(UNKNOWN_KEYS))] = draw(st.sampled_from([1, "a", [0], {}]))
    else:
        _replace(draw, t, p)


def _wrap(draw: Any, t: Tree, p: Path_) -> None:
    v = get(t, p)
    wrapped = draw(
        st.sampled_from(
            [[v], {"value": v}, {"uniform": v}, {"choice": [v]}, [[v]], {"per_frame": v}]
        )
    )
    put(t, p, copy.deepcopy(wrapped))


def _move(draw: Any, t: Tree, p: Path_) -> None:
    """Put another subtree here (wrong nesting, wrong kinds of blocks)."""
    other = draw(st.sampled_from(all_paths(t)))
    put(t, p, copy.deepcopy(get(t, other)))


def _duplicate(draw: Any, t: Tree, p: Path_) -> None:
    parent = get(t, p[:-1])
    if isinstance(parent, list):
        parent.append(copy.deepcopy(get(t, p)))
    else:
        _replace(draw, t, p)


def _dangle(draw: Any, t: Tree, p: Path_) -> None:
    """Replace a string (a name, a reference, an asset) by one that exists nowhere."""
    strings = [q for q in all_paths(t) if isinstance(get(t, q), str)]
    target = draw(st.sampled_from(strings)) if strings else p
    put(t, target, draw(st.sampled_from(["ghost", "cam_missing", "front2", "Ghost", "toy_99"])))


def _scale(draw: Any, t: Tree, p: Path_) -> None:
    """Scale every number under ``p`` by one factor (huge, tiny, zero or negative sizes)."""
    k = draw(st.sampled_from(SCALES))

    def go(node: Any) -> Any:
        if isinstance(node, bool):
            return node
        if isinstance(node, int):
            return int(node * k) if math.isfinite(node * k) and abs(node * k) < 2**62 else node
        if isinstance(node, float):
            return node * k
        if isinstance(node, list):
            return [go(x) for x in node]
        if isinstance(node, dict):
            return {key: go(x) for key, x in node.items()}
        return node

    put(t, p, go(get(t, p)))


TREE_MUTATIONS = {
    "replace": _replace,
    "delete": _delete,
    "add_key": _add_key,
    "wrap": _wrap,
    "move": _move,
    "duplicate": _duplicate,
    "dangle": _dangle,
    "scale": _scale,
}

# -- text mutations -----------------------------------------------------------------------------

_CHARS = [*list(":[]{}-!&*|>'\"\t\n#%@`,?\\"), "\x00", "\ufeff", "  ", "- ", ": "]


def _truncate(draw: Any, text: str) -> str:
    return text[: draw(st.integers(0, max(0, len(text) - 1)))]


def _delete_char(draw: Any, text: str) -> str:
    if not text:
        return text
    i = draw(st.integers(0, len(text) - 1))
    return text[:i] + text[i + 1 :]


def _insert_char(draw: Any, text: str) -> str:
    i = draw(st.integers(0, len(text)))
    return text[:i] + draw(st.sampled_from(_CHARS)) + text[i:]


def _duplicate_line(draw: Any, text: str) -> str:
    lines = text.splitlines(keepends=True)
    if not lines:
        return text
    i = draw(st.integers(0, len(lines) - 1))
    return "".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])


def _inject(draw: Any, text: str) -> str:
    snippet = draw(
        st.sampled_from(
            [
                "evil: !!python/object/apply:os.system ['echo hacked']\n",
                "evil: !!python/name:os.system\n",
                "evil: !custom_tag {a: 1}\n",
                "evil: !!binary aGVsbG8=\n",
                "evil: !!set {a, b}\n",
                "evil: 2001-12-14t21:59:43.10-05:00\n",
                "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c]\n"
                "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e]\n",
                "<<: {schema_version: 2}\n",
                "? [a, b]\n: c\n",
                "%YAML 1.1\n---\n",
                "---\nsecond: document\n",
            ]
        )
    )
    lines = text.splitlines(keepends=True)
    i = draw(st.integers(0, len(lines)))
    return "".join([*lines[:i], snippet, *lines[i:]])


TEXT_MUTATIONS = {
    "truncate": _truncate,
    "delete_char": _delete_char,
    "insert_char": _insert_char,
    "duplicate_line": _duplicate_line,
    "inject": _inject,
}


@st.composite
def mutants(draw: Any, scenes: list[Path] | None = None) -> tuple[str, list[str], str]:
    """(source scene name, mutations applied, mutated YAML text)."""
    src = draw(st.sampled_from(scenes or SCENES))
    tree = load_tree(src)
    applied: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        paths = all_paths(tree)
        if not paths:
            break
        kind = draw(st.sampled_from(sorted(TREE_MUTATIONS)))
        p = draw(st.sampled_from(paths))
        TREE_MUTATIONS[kind](draw, tree, p)
        applied.append(f"{kind}@{'.'.join(str(x) for x in p)}")
    text = yaml.safe_dump(tree, sort_keys=False, allow_unicode=True, width=120)
    if draw(st.integers(0, 3)) == 0:
        kind = draw(st.sampled_from(sorted(TEXT_MUTATIONS)))
        text = TEXT_MUTATIONS[kind](draw, text)
        applied.append(kind)
    return src.name, applied, text


#: Extreme but type-correct numbers: these mutants often still validate, and exercise sampling,
#: placement and the physics engine.
EXTREME = [1e-300, 1e-12, 1e-6, 1e-3, 0.5, 2.0, 1e3, 1e6, 1e9, 1e12, 1e300]


def _numbers(tree: Tree) -> list[Path_]:
    return [
        p
        for p in all_paths(tree)
        if isinstance(get(tree, p), (int, float)) and not isinstance(get(tree, p), bool)
    ]


@st.composite
def numeric_mutants(draw: Any, scenes: list[Path] | None = None) -> tuple[str, list[str], str]:
    """Mutants whose numbers (sizes, masses, velocities, rates, counts, resolutions, timesteps)
    take extreme values of the right type."""
    src = draw(st.sampled_from(scenes or SCENES))
    tree = load_tree(src)
    applied: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        p = draw(st.sampled_from(_numbers(tree)))
        v = get(tree, p)
        new = draw(
            st.one_of(
                st.sampled_from(EXTREME),
                st.sampled_from([v * k for k in EXTREME]),
                st.floats(min_value=1e-300, max_value=1e300),
            )
        )
        if isinstance(v, int) and abs(new) < 2**62:
            new = max(1, int(new))
        put(tree, p, new)
        applied.append(f"number@{'.'.join(str(x) for x in p)}={new!r}")
    text = yaml.safe_dump(tree, sort_keys=False, allow_unicode=True, width=120)
    return src.name, applied, text


# -- the oracle ---------------------------------------------------------------------------------


def check_scene_error(e: Exception, filename: str = FUZZ_FILE) -> None:
    """A loader error must be a SceneFileError naming file, line, field and a message."""
    from simgen.errors import SceneFileError

    assert isinstance(e, SceneFileError), f"{type(e).__name__}: {e}"
    assert e.filename == filename
    assert e.problems, "an error without problems"
    text = str(e)
    for p in e.problems:
        assert p.line is not None and p.line >= 1, f"no line: {p.render(filename)}"
        assert p.message.strip(), f"empty message: {p.render(filename)}"
        assert f"{filename}:{p.line}:" in text
        assert p.field, "no field"
        assert "Traceback" not in text


def check_load(text: str, base_dir: Path = ROOT / "scenes") -> Any:
    """Load ``text``: a Scene, or None after checking the error (any other outcome fails)."""
    from simgen.errors import SceneFileError
    from simgen.scene.loader import parse_scene

    try:
        return parse_scene(text, filename=FUZZ_FILE, base_dir=base_dir)
    except SceneFileError as e:
        check_scene_error(e)
        return None


def check_clean(e: BaseException) -> None:
    """An error after loading must be one of simgen's own, with a message."""
    from simgen.errors import SimgenError

    assert isinstance(e, SimgenError), f"{type(e).__name__}: {e}"
    assert str(e).strip(), f"{type(e).__name__} without a message"
    assert "Traceback" not in str(e)


def clipped(scene: Any, duration: float = 0.1, resolution: tuple[int, int] = (32, 24)) -> Any:
    """The scene with short episodes and tiny cameras (the render stage of the campaign)."""
    from simgen.scene.types import value
    from simgen.sensors.camera import scene_with_resolution

    sim = scene.simulation
    dur = value(sim.duration) if not hasattr(sim.duration, "sample") else duration
    short = sim.model_copy(update={"duration": min(dur, duration)})
    out = scene_with_resolution(scene, *resolution).model_copy(update={"simulation": short})
    return out


def run_stages(
    text: str, *, meshes: Any = None, steps: int = 24, sim: Any = None, messages: Any = None
) -> tuple[str, str]:
    """Load ``text``, then prepare episode 0 (sampling, placement), build its physics world and
    step it; with ``sim`` (a Simulator) also run the episode clipped to 0.1 s at 32 x 24 pixels.
    Returns (last stage reached, outcome class); an outcome that is not a clean error raises
    AssertionError (or the error itself). ``messages``: a list that gets the error's text."""
    from simgen.errors import SimgenError
    from simgen.run.prepare import prepare_episode
    from simgen.sim.assets import AssetResolver
    from simgen.sim.visuals import MeshLibrary
    from simgen.sim.world import PhysicsWorld

    scene = check_load(text)
    if scene is None:
        return "load", "SceneFileError"
    meshes = meshes if meshes is not None else MeshLibrary()
    stage = "prepare"
    try:
        params = prepare_episode(scene, 0, 0, num_episodes=4, meshes=meshes)
        stage = "build"
        assets = AssetResolver.for_scene(scene.base_dir)
        with PhysicsWorld(params, assets=assets, meshes=meshes) as world:
            for _ in range(min(steps, world.num_steps - 1)):
                world.step()
            world.object_states()
        if sim is not None:
            stage = "render"
            short = clipped(scene)
            for _ in sim.run(sim.prepare(short, 0, 0, num_episodes=4)):
                pass
    except SimgenError as e:
        check_clean(e)
        if messages is not None:
            messages.append(str(e))
        return stage, type(e).__name__
    return "done", "ok"
