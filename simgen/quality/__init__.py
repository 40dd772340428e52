"""Dataset quality: streaming statistics, coverage of the randomization space, comparison with
other (real) datasets, dataset cards and the HTML report (docs/quality.md)."""

from simgen.quality.engine import compute_stats, load_stats, save_stats

__all__ = ["compute_stats", "load_stats", "save_stats"]
