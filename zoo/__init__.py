"""d2l-zoo: the "Dive into Deep Learning" course's models as a PyTorch Lightning model zoo."""

__version__ = "0.1.0"
