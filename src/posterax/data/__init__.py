"""Data: synthetic generators (the seed examples), image data sets, dataset shift
(:mod:`posterax.data.shift`) and input validation."""

from posterax.data import shift
from posterax.data.images import ImageSplit, digits, mnist1d
from posterax.data.synthetic import seed_regression

__all__ = [
    "ImageSplit",
    "digits",
    "mnist1d",
    "seed_regression",
    "shift",
]
