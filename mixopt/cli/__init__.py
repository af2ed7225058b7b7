"""The command line: ``main`` (dispatch, exit codes), ``parser`` (flags in groups), ``format`` (tables)."""
from mixopt.cli.main import main

__all__ = ["main"]
