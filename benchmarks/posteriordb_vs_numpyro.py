"""posteriordb: posterax's ``run_nuts`` vs NumPyro 0.22's ``MCMC(NUTS(model))`` on 12 reference
posteriors (issue 23, part 1).

The same NumPyro model (``tests/posteriordb_models.py``), data and settings for both: 4 chains,
1,000 warmup + 1,000 draws each, target acceptance 0.8, max tree depth 10, diagonal mass matrix,
uniform starts in [-2, 2] (arma11 in [-0.5, 0.5] for both: see
``tests/inference/test_posteriordb.py``). NumPyro runs its chains with
``chain_method="sequential"`` (what it falls back to on one CPU device); posterax runs them one
after another inside one compiled program on CPU.

Per posterior and library:

- worst |z| of the posterior mean and of the sd against the reference draws (z: the difference
  over the combined Monte Carlo standard error, ArviZ's ESS-based MCSE);
- min bulk ESS over the parameters and the wall time of the first run (compile included) and of a
  repeat run (new key, same data: NumPyro with ``progress_bar=False`` re-traces and re-compiles,
  posterax reuses its program);
- min-ESS per second of each, and posterax's over NumPyro's (goal >= 1).

Run by hand (not in CI; about 5 minutes on 2 cores, keep the machine otherwise idle)::

    .venv/bin/python benchmarks/posteriordb_vs_numpyro.py [--names arK-arK ...]
        [--out-dir benchmarks/results]

Writes ``posteriordb_vs_numpyro.json`` and ``.md`` to ``--out-dir`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np
import numpyro
from numpyro.infer import MCMC, NUTS, init_to_uniform

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from posterax.inference import run_nuts
from posteriordb_models import POSTERIORS, agreement, root

SETTINGS = dict(num_warmup=1000, num_samples=1000, num_chains=4)
INIT = {"arma-arma11": init_to_uniform(radius=0.5)}


def summarise(samples, reference, seconds_first, seconds_repeat):
    rows = agreement(samples, reference)
    ess = min(r.ess_bulk for r in rows)
    return {
        "max_abs_z_mean": max(abs(r.z_mean) for r in rows),
        "max_abs_z_sd": max(abs(r.z_sd) for r in rows),
        "min_ess_bulk": ess,
        "seconds_first": seconds_first,
        "seconds_repeat": seconds_repeat,
        "min_ess_per_s_first": ess / seconds_first,
        "min_ess_per_s_repeat": ess / seconds_repeat,
    }


def timed(fn):
    start = time.perf_counter()
    out = fn()
    jax.block_until_ready(out)
    return out, time.perf_counter() - start


def run_posterax(name):
    posterior = POSTERIORS[name]
    data = posterior.data()
    init = INIT.get(name)

    def go(seed):
        return run_nuts(
            jax.random.key(seed),
            posterior.model,
            progress_bar=False,
            init_strategy=init,
            **SETTINGS,
            **data,
        ).samples

    _, first = timed(lambda: go(1))
    samples, repeat = timed(lambda: go(0))
    return summarise(samples, posterior.reference(), first, repeat)


def run_numpyro(name):
    posterior = POSTERIORS[name]
    data = posterior.data()
    kernel = NUTS(posterior.model, init_strategy=INIT.get(name, init_to_uniform))
    mcmc = MCMC(kernel, chain_method="sequential", progress_bar=False, **SETTINGS)

    def go(seed):
        mcmc.run(jax.random.key(seed), **data)
        return mcmc.get_samples(group_by_chain=True)

    _, first = timed(lambda: go(1))
    samples, repeat = timed(lambda: go(0))
    return summarise(samples, posterior.reference(), first, repeat)


def table(results) -> str:
    lines = [
        "| posterior | max abs z (mean / sd) posterax | NumPyro | min ESS posterax | NumPyro "
        "| first run s posterax | NumPyro | repeat s posterax | NumPyro "
        "| min-ESS/s ratio first | repeat |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        ours, peer = r["posterax"], r["numpyro"]
        lines.append(
            f"| {name} | {ours['max_abs_z_mean']:.1f} / {ours['max_abs_z_sd']:.1f} "
            f"| {peer['max_abs_z_mean']:.1f} / {peer['max_abs_z_sd']:.1f} "
            f"| {ours['min_ess_bulk']:.0f} | {peer['min_ess_bulk']:.0f} "
            f"| {ours['seconds_first']:.2f} | {peer['seconds_first']:.2f} "
            f"| {ours['seconds_repeat']:.2f} | {peer['seconds_repeat']:.2f} "
            f"| {r['ess_per_s_ratio_first']:.2f} | {r['ess_per_s_ratio_repeat']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", nargs="*", default=sorted(POSTERIORS))
    parser.add_argument("--out-dir", default="benchmarks/results")
    args = parser.parse_args()
    if root() is None:
        raise SystemExit("../shared/data/posteriordb is not here")
    results = {}
    for name in args.names:
        ours, peer = run_posterax(name), run_numpyro(name)
        results[name] = {
            "posterax": ours,
            "numpyro": peer,
            "ess_per_s_ratio_first": ours["min_ess_per_s_first"] / peer["min_ess_per_s_first"],
            "ess_per_s_ratio_repeat": ours["min_ess_per_s_repeat"] / peer["min_ess_per_s_repeat"],
        }
        print(name, json.dumps(results[name]["ess_per_s_ratio_first"]), flush=True)
    ratios = {
        k: float(np.exp(np.mean([np.log(r[k]) for r in results.values()])))
        for k in ("ess_per_s_ratio_first", "ess_per_s_ratio_repeat")
    }
    out = {
        "settings": SETTINGS,
        "machine": {"platform": platform.platform(), "cpus": jax.local_device_count()},
        "versions": {"jax": jax.__version__, "numpyro": numpyro.__version__},
        "results": results,
        "geometric_mean": ratios,
    }
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "posteriordb_vs_numpyro.json").write_text(json.dumps(out, indent=2))
    text = table(results) + (
        f"\n\nGeometric mean of posterax's min-ESS/s over NumPyro's: first run "
        f"{ratios['ess_per_s_ratio_first']:.2f}x, repeat {ratios['ess_per_s_ratio_repeat']:.2f}x."
    )
    (out_dir / "posteriordb_vs_numpyro.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
