"""Methods as values: an object holding one method's settings, as an optax optimiser holds its
hyperparameters.

Every method class follows scikit-learn's ``get_params`` / ``set_params`` (it is a
``BaseEstimator`` for that contract only), so ``sklearn.base.clone``,
``est.set_params(method__num_members=3)`` and ``GridSearchCV(est, {"method__num_members": [2,
5]})`` work on the estimators that hold them. A method's settings are checked when it is fitted,
with errors naming the parameter.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

from sklearn.base import BaseEstimator


class _Value(BaseEstimator):
    """Settings compare as values: equal when of one class with equal parameters (so a loaded
    model's method equals the one it was fitted with)."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_params(False) == self.get_params(False)

    def __hash__(self) -> int:  # mutable (set_params): hash by class only, consistent with ==
        return hash(type(self))


class Method(_Value):
    """Base of every method object; ``name`` is the string that means its defaults."""

    name: ClassVar[str]
    sampled: ClassVar[bool] = False  # MCMC chains (R-hat / ESS apply)
    # What a regressor's likelihood="auto" means with this method (see BayesianRegressor).
    regression_likelihood: ClassVar[str] = "homoscedastic"

    def settings(self) -> dict[str, Any]:
        """The flat settings the fit functions read (the names of the estimator parameters
        they replace)."""
        return dict(self.get_params(deep=False))

    @classmethod
    def trains(cls, own: dict[str, Any]) -> bool:
        """Whether the method with its own settings ``own`` trains a network (and so takes
        :class:`Training` settings)."""
        return "training" in inspect.signature(cls.__init__).parameters


class Training(_Value):
    """Optimisation settings shared by the trained methods (MAP, ensembles, VI, MC dropout,
    SWAG, Laplace's MAP).

    Parameters
    ----------
    optimizer : optax.GradientTransformation, optional
        Default ``optax.adam(learning_rate)``.
    learning_rate : float
    num_epochs : int or "auto"
        ``"auto"``: with early stopping (which decides when to stop) a cap of about 200000
        optimiser steps (20 to 10000 epochs); without, about 5000 steps (20 to 2000 epochs).
    batch_size : int
        Minibatch size (clipped to the data with a warning).
    validation_fraction : float, "auto" or None
        Share of the rows held out for early stopping (best parameters kept). ``"auto"`` (the
        default) holds out 10% when there are at least 100 rows (so at least 10 to judge by)
        and none below; ``None`` trains on every row for ``num_epochs``. A regressor's
        held-out rows judge the fit of the mean (the noise profiled out) and then set the
        noise (see the README's "Scalable network posteriors").
    patience : int or "auto"
        Epochs without improvement before stopping. ``"auto"`` (the default): 20 epochs or
        the epochs of 10000 optimiser steps, whichever is more (the held-out fit still
        improves slowly long after a first plateau: UCI power, MAP test LL -2.846 at 20
        epochs, -2.824 at 100).

    Examples
    --------
    >>> import posterax as px
    >>> px.methods.MAP(training=px.methods.Training(num_epochs=200, learning_rate=1e-2))
    MAP(training=Training(learning_rate=0.01, num_epochs=200))
    """

    def __init__(
        self,
        optimizer: Any = None,
        learning_rate: float = 1e-3,
        num_epochs: int | str = "auto",
        batch_size: int = 32,
        validation_fraction: float | str | None = "auto",
        patience: int | str = "auto",
    ):
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.num_epochs = num_epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.patience = patience


class TrainedMethod(Method):
    """A method that trains the network by minibatch optimisation (``training`` settings; NUTS
    too, for ``subset="last_layer"``: the MAP network whose last layer it samples)."""

    def set_params(self, **params: Any) -> TrainedMethod:
        """As scikit-learn's; ``training__*`` on ``training=None`` starts from ``Training()``."""
        if self.training is None and any(k.startswith("training__") for k in params):
            self.training = Training()
        return super().set_params(**params)

    def settings(self) -> dict[str, Any]:
        own = {k: v for k, v in self.get_params(deep=False).items() if k != "training"}
        training = self.training if self.training is not None else Training()
        if not isinstance(training, Training):
            raise ValueError(
                f"The 'training' parameter of px.methods.{type(self).__name__} must be "
                f"px.methods.Training(...) or None. Got {training!r}."
            )
        return {**training.get_params(deep=False), **own}


__all__ = ["Method", "TrainedMethod", "Training"]
