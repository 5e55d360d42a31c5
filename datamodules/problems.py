"""The data error and the problem list live in ``zoo.core.problems``, the ground floor every
reader (data modules and the image reader alike) imports."""

from zoo.core.problems import SHOWN, DataError, Problems

__all__ = ["SHOWN", "DataError", "Problems"]
