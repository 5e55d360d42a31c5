"""Collecting every problem in a competition's raw files into one error: the data modules'
``Problems`` and ``DataError``, which the competitions' checks share (data flows from
``datamodules`` to ``competitions``)."""

from datamodules.problems import SHOWN, DataError, Problems

__all__ = ["SHOWN", "DataError", "Problems"]
