"""Build, check and ship hardened container images of Python services."""

__version__ = "0.1.0"
