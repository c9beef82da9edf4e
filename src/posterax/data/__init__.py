"""Data: synthetic generators (the seed examples) and input validation."""

from posterax.data.synthetic import seed_regression

__all__ = ["seed_regression"]
