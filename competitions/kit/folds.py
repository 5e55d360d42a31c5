"""The competitions' folds are ``zoo.run.folds``'s (the same code ``zoo.fit --folds`` uses)."""

from zoo.run.folds import FOLD_COLUMNS, load_or_make_folds, make_folds

__all__ = ["FOLD_COLUMNS", "load_or_make_folds", "make_folds"]
