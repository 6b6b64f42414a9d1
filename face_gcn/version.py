"""The package version, read by setup.py and reported by `face-gcn info`."""

__version__ = "0.1.0"
