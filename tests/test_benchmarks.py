"""Every benchmark still runs (smoke test at tiny sizes; the timings themselves are taken by
hand on a quiet machine and recorded in benchmarks/RESULTS.md, never asserted)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.gl

SMOKE = {
    "bench_camera.py": ["--frames", "2", "--width", "64", "--height", "48"],
    "bench_lidar.py": ["--columns", "128", "--repeats", "1"],
    "bench_labels.py": ["--scene", "tabletop", "--width", "64", "--height", "48", "--repeat", "1"],
    "bench_effects.py": ["--width", "64", "--height", "48", "--columns", "64", "--repeat", "1"],
    "bench_randomization.py": ["--episodes", "1", "--scenes", "street"],
    "bench_selfcheck.py": ["--episodes", "1", "--repeat", "1"],
    "bench_stats.py": ["--frames", "20"],
    "bench_scale.py": ["--episodes", "1", "--scenes", "tabletop", "--no-ray"],
}


def test_every_benchmark_has_a_smoke_run() -> None:
    assert sorted(SMOKE) == sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py"))


@pytest.mark.parametrize("script", sorted(SMOKE))
def test_benchmark_runs(script: str) -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *SMOKE[script]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
