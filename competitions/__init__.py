"""Kaggle pipelines, one folder per competition: ``python -m competitions <slug> <stage>``."""
