"""Post-hoc recalibration, scikit-learn style: ``fit`` on held-out data; learned names end in ``_``.

- Classification: :class:`TemperatureScaling`, :class:`VectorScaling` (logits, fitted by NLL with
  optax L-BFGS), :class:`IsotonicCalibration` (top-label, on probabilities).
- Regression: :class:`StdScaling` (closed form), :class:`QuantileRecalibration` (isotonic on the
  predictive CDF).

Inputs are a :class:`~posterax.base.PredictiveSamples` or plain NumPy/JAX arrays.
"""

from posterax.calibration.isotonic import IsotonicCalibration, QuantileRecalibration
from posterax.calibration.scaling import TemperatureScaling, VectorScaling
from posterax.calibration.std_scaling import StdScaling

__all__ = [
    "IsotonicCalibration",
    "QuantileRecalibration",
    "StdScaling",
    "TemperatureScaling",
    "VectorScaling",
]
