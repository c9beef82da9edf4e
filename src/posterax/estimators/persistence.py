"""Save and load fitted estimators without pickle: ``model.json`` (metadata with a format
version) + ``arrays.npz`` (loaded with ``allow_pickle=False``), written atomically.

Loading a file never executes code: the JSON names an estimator class from a fixed registry and
the arrays are plain numbers. ``BayesianLinearRegression`` is handled here; what the network
estimators store is in :mod:`posterax.estimators.persistence_networks`.

Corruption is detected, never loaded as a wrong model: ``model.json`` records a SHA-256 of every
array (dtype, shape and bytes, :func:`posterax.storage.digest_array`) and of its own content
(:func:`posterax.storage.digest_json`), verified on load. Files saved before the checksums were
added (same ``format_version`` 1, no ``"checksums"`` entry) still load, unverified; older
posterax versions ignore the entry, so new files still load there.

Writing: both files go to a staging directory next to the target and are fsynced, then the
directory is renamed into place (an existing model is moved aside first and removed after).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from posterax import storage
from posterax.base import Posterior
from posterax.estimators.persistence_networks import (
    NETWORK_ESTIMATORS,
    from_estimator_settings,
    method_from_dict,
    method_to_dict,
    network_state,
    plain_param,
    restore_network,
)
from posterax.inference.exact import NormalInverseGammaPosterior
from posterax.methods import Method
from posterax.models import GaussianLikelihood, linear_apply
from posterax.models.priors import prior_from_dict

FORMAT_NAME = "posterax-estimator"
FORMAT_VERSION = 1
_META = "model.json"
_ARRAYS = "arrays.npz"
_CHECKSUMS = "checksums"
_FIX = "Re-save the model from its source."

ESTIMATORS: dict[str, type] = {}
"""The estimator classes ``px.load`` can rebuild, by name (filled by :func:`persistable`: the
estimators import this module, never the other way round)."""


def persistable(cls: type) -> type:
    """Class decorator: ``px.load`` may rebuild instances of ``cls`` by its name."""
    ESTIMATORS[cls.__name__] = cls
    return cls


def _jsonable_params(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in params.items():
        if isinstance(value, Method):
            out[key] = method_to_dict(value)
        elif hasattr(value, "to_dict"):
            out[key] = {"__prior__": value.to_dict()}
        else:
            out[key] = plain_param(key, value)
    return out


def _restore_params(params: dict[str, Any]) -> dict[str, Any]:
    def restore(value: Any) -> Any:
        if isinstance(value, dict) and "__method__" in value:
            return method_from_dict(value)
        return prior_from_dict(value["__prior__"]) if isinstance(value, dict) else value

    return {key: restore(value) for key, value in params.items()}


def _posterior_arrays(posterior: Posterior) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    if isinstance(posterior.distribution, NormalInverseGammaPosterior):
        dist = posterior.distribution
        arrays.update(nig_loc=dist.loc, nig_cov_factor=dist.cov_factor)
        meta = {
            "kind": "normal_inverse_gamma",
            "concentration": dist.concentration,
            "rate": dist.rate,
        }
    else:
        meta = {
            "kind": "draws",
            "names": sorted(posterior.draws),
            "chain_shape": list(posterior.chain_shape) if posterior.chain_shape else None,
        }
        arrays.update({f"draws/{k}": np.asarray(v) for k, v in posterior.draws.items()})
    stats = posterior.info.get("sample_stats") or {}
    arrays.update({f"sample_stats/{k}": np.asarray(v) for k, v in stats.items()})
    mode = posterior.info.get("mode") or {}
    arrays.update({f"mode/{k}": np.asarray(v) for k, v in mode.items()})
    meta["mode"] = sorted(mode)
    meta["sample_stats"] = sorted(stats)
    meta["info"] = {k: v for k, v in posterior.info.items() if isinstance(v, int | float | bool)}
    return meta, arrays


def _linear_state(estimator: Any) -> tuple[dict, dict, dict, dict[str, np.ndarray]]:
    posterior_meta, arrays = _posterior_arrays(estimator.posterior_)
    fitted = {
        "n_features_in_": int(estimator.n_features_in_),
        "fit_seconds_": float(estimator.fit_seconds_),
        "prior_": estimator.prior_.to_dict(),
    }
    if hasattr(estimator, "feature_names_in_"):
        fitted["feature_names_in_"] = [str(n) for n in estimator.feature_names_in_]
    return _jsonable_params(estimator.get_params(deep=False)), fitted, posterior_meta, arrays


def save_estimator(estimator: Any, path: Any, *, overwrite: bool = False) -> None:
    """Write ``estimator`` to the directory ``path`` (atomically: write, then rename)."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"The 'path' parameter of save: {str(target)!r} already exists. Pass overwrite=True "
            "to replace it, or choose a new path."
        )
    name = type(estimator).__name__
    state = network_state if name in NETWORK_ESTIMATORS else _linear_state
    params, fitted, posterior_meta, raw_arrays = state(estimator)
    arrays = {key: np.asarray(value) for key, value in raw_arrays.items()}
    for key, value in arrays.items():
        if value.dtype.hasobject:
            raise TypeError(
                f"save: the array {key!r} has dtype object, which cannot be stored without "
                "pickle. Convert it to a numeric or string dtype."
            )
    meta: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "estimator": name,
        "params": params,
        "fitted": fitted,
        "posterior": posterior_meta,
    }
    meta[_CHECKSUMS] = {
        "algorithm": "sha256",
        "arrays": {key: storage.digest_array(value) for key, value in arrays.items()},
        # Over model.json itself without this entry (canonical JSON; see _verify_meta).
        "model_json": storage.digest_json(meta),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with open(staging / _META, "w", encoding="utf-8") as file:
            file.write(json.dumps(meta, indent=2))
            file.flush()
            os.fsync(file.fileno())
        with open(staging / _ARRAYS, "wb") as file:
            np.savez(file, allow_pickle=False, **arrays)
            file.flush()
            os.fsync(file.fileno())
        storage.fsync_path(staging)
        if target.exists():
            backup = target.with_name(f".{target.name}.old")
            shutil.rmtree(backup, ignore_errors=True)  # left by an interrupted earlier save
            os.replace(target, backup)
            os.replace(staging, target)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(staging, target)
        storage.fsync_path(target.parent)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if not path.is_dir() or not (path / _META).is_file():
        raise FileNotFoundError(
            f"px.load: {str(path)!r} is not a saved posterax model (a directory holding "
            f"{_META} and {_ARRAYS}). Pass the directory given to est.save(path)."
        )
    try:
        meta = json.loads((path / _META).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"px.load: {_META} in {str(path)!r} is corrupted ({err}).") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ValueError(f"px.load: {str(path)!r} does not hold a posterax model file.")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"px.load: {str(path)!r} was written in posterax file format version {version!r}; "
            f"this posterax reads versions up to {FORMAT_VERSION}. Upgrade posterax "
            "(pip install -U posterax) to load it."
        )
    if _CHECKSUMS in meta:
        _verify_meta(path, meta)
    try:
        data = np.load(path / _ARRAYS, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with data:
            arrays = {k: data[k] for k in data.files}
    except Exception as err:  # untrusted bytes: any failure to parse them means damage
        raise ValueError(
            f"px.load: {_ARRAYS} in {str(path)!r} is truncated or corrupted ({err}). {_FIX}"
        ) from None
    if _CHECKSUMS in meta:
        _verify_arrays(path, meta[_CHECKSUMS]["arrays"], arrays)
    return meta, arrays


def _verify_meta(path: Path, meta: dict[str, Any]) -> None:
    """model.json is intact: its checksum entry is well formed and matches its content."""
    checks = meta[_CHECKSUMS]
    well_formed = (
        isinstance(checks, dict)
        and checks.get("algorithm") == "sha256"
        and isinstance(checks.get("model_json"), str)
        and isinstance(checks.get("arrays"), dict)
    )
    content = {k: v for k, v in meta.items() if k != _CHECKSUMS}
    if not well_formed or storage.digest_json(content) != checks["model_json"]:
        raise ValueError(
            f"px.load: {_META} in {str(path)!r} is corrupted (its content fails the SHA-256 "
            f"check recorded when it was saved). {_FIX}"
        )


def _verify_arrays(path: Path, expected: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Every array listed in model.json is present, unchanged, and nothing else is."""
    missing = sorted(expected.keys() - arrays.keys())
    if missing:
        raise ValueError(
            f"px.load: {str(path)!r} is missing or has malformed entries ({_ARRAYS} lacks "
            f"{missing[:5]}). {_FIX}"
        )
    unexpected = sorted(arrays.keys() - expected.keys())
    if unexpected:
        raise ValueError(
            f"px.load: {_ARRAYS} in {str(path)!r} is corrupted (unexpected entries "
            f"{unexpected[:5]}, not written by est.save). {_FIX}"
        )
    for name in sorted(expected):
        try:
            ok = storage.digest_array(arrays[name]) == expected[name]
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(
                f"px.load: {_ARRAYS} in {str(path)!r} is corrupted (the array {name!r} fails the "
                f"SHA-256 check recorded when it was saved). {_FIX}"
            )


def _rebuild_posterior(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Posterior:
    stats = {k: arrays[f"sample_stats/{k}"] for k in meta["sample_stats"]}
    info: dict[str, Any] = dict(meta.get("info", {}))
    if stats:
        info["sample_stats"] = stats
    if meta.get("mode"):
        info["mode"] = {k: arrays[f"mode/{k}"] for k in meta["mode"]}
    if meta["kind"] == "normal_inverse_gamma":
        dist = NormalInverseGammaPosterior(
            arrays["nig_loc"], arrays["nig_cov_factor"], meta["concentration"], meta["rate"]
        )
        return Posterior(linear_apply, GaussianLikelihood(), distribution=dist, info=info)
    draws = {k: jnp.asarray(arrays[f"draws/{k}"]) for k in meta["names"]}
    chain_shape = tuple(meta["chain_shape"]) if meta.get("chain_shape") else None
    return Posterior(
        linear_apply, GaussianLikelihood(), draws=draws, info=info, chain_shape=chain_shape
    )


def _restore_linear(cls: type, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    estimator = cls(**from_estimator_settings(cls, _restore_params(meta["params"])))
    fitted = meta["fitted"]
    estimator.n_features_in_ = fitted["n_features_in_"]
    estimator.fit_seconds_ = fitted["fit_seconds_"]
    estimator.prior_ = prior_from_dict(fitted["prior_"])
    if "feature_names_in_" in fitted:
        estimator.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)
    estimator.posterior_ = _rebuild_posterior(meta["posterior"], arrays)
    return estimator


def load(path: Any, network: Any = None) -> Any:
    """Load an estimator saved with ``est.save(path)``; it predicts identically.

    A model fitted on a network of your own (Flax, Equinox, ``px.networks.Functional``) is
    saved as its weights: pass ``network=`` a network of the same structure, built as for the
    fit (Equinox's ``tree_deserialise_leaves(path, like)`` convention); a different structure
    is refused with the arrays that differ.

    Raises
    ------
    FileNotFoundError
        ``path`` is not a saved model directory.
    ValueError
        The files are corrupted, truncated, or from a newer file-format version.
    """
    registry = ESTIMATORS
    meta, arrays = _read(Path(path))
    name = meta.get("estimator")
    if name not in registry:
        raise ValueError(f"px.load: unknown estimator {name!r}; known: {sorted(registry)}.")
    try:
        if name in NETWORK_ESTIMATORS:
            estimator = restore_network(registry[name], meta, arrays, network)
        else:
            estimator = _restore_linear(registry[name], meta, arrays)
    except (KeyError, TypeError) as err:
        raise ValueError(
            f"px.load: {str(path)!r} is missing or has malformed entries ({err!r}). Re-save the "
            "model from its source."
        ) from None
    if name not in NETWORK_ESTIMATORS:
        estimator._set_point_estimates()
    return estimator


__all__ = ["FORMAT_VERSION", "load", "save_estimator"]
