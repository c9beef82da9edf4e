"""Estimators with the scikit-learn contract."""

from posterax.estimators.linear import BayesianLinearRegression
from posterax.estimators.neural import BayesianClassifier, BayesianRegressor
from posterax.estimators.persistence import load

__all__ = ["BayesianClassifier", "BayesianLinearRegression", "BayesianRegressor", "load"]
