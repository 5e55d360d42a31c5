"""Machinery every competition shares: fetch, checks, folds, training per fold, prediction
with TTA and fold averaging, checked atomic submissions and the score log."""

from competitions.kit.competition import Competition, Prepared, load_prepared
from zoo.core.problems import DataError, Problems

__all__ = ["Competition", "Prepared", "DataError", "Problems", "load_prepared"]
