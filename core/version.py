"""Visage's version: the one place it is declared (main.py --version and pyproject.toml read it)."""
__version__ = "0.1.0"
