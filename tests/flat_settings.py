"""Tests that sweep methods with shared settings spell them flat; this builds the estimator:
its own parameters by name, ``hidden`` / ``activation`` as ``network=``, every other setting the method's
(``posterax.methods.method_from_settings``, the command line's route too)."""

import inspect

from posterax.methods import Method, method_from_settings
from posterax.networks import MLP


def flat_estimator(cls, method="nuts", **flat):
    own = set(inspect.signature(cls.__init__).parameters)
    kwargs = {k: flat.pop(k) for k in list(flat) if k in own}
    if "activation" in flat:
        kwargs["network"] = MLP(flat.pop("hidden", cls._default_hidden), flat.pop("activation"))
    elif "hidden" in flat:
        kwargs["network"] = flat.pop("hidden")
    if not isinstance(method, Method):
        method = method_from_settings(method, flat, ignore_unknown=True)
    return cls(method=method, **kwargs)
