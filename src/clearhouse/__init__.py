"""Clearhouse: the clearing house of a multi-partner loyalty coalition."""

__version__ = "0.1.0"
