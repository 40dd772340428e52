"""simgen: scene files to labeled synthetic sensor datasets."""

__version__ = "0.1.0"
