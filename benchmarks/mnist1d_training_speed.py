"""Training the MNIST-1D CNN: posterax MAP / deep ensemble vs a hand-written optax loop.

Issue 20's speed goal ("time per epoch of MAP / a 5-member ensemble on the MNIST-1D CNN vs a
hand-written optax loop on the same network, <= 1.1x"), measured as
``benchmarks/own_network_training.py`` measures it for a regression MLP, on the image problem:

Problem: ``px.data.mnist1d()`` (4,000 training sequences of shape (40, 1), 1,000 test), the
reference CNN ``posterax.networks.reference.MNIST1DCNN`` (Flax NNX, 5,210 params), the optimiser
of ``reference_training("mnist1d")`` (Adam 1e-2, cut tenfold after 90% of its 200 epochs: one
optax object shared by every run, so the rate is constant 1e-2 over the epochs timed here),
batch 100 (40 steps per epoch, a new permutation every epoch), the same number of epochs
everywhere, no validation split.

- ``posterax map``: ``px.BayesianClassifier(network=net, method=px.methods.MAP(training=
  px.methods.Training(optimizer=opt, num_epochs=E, batch_size=100,
  validation_fraction=None))).fit(X, y)``, the whole ``fit`` call timed (input checks, label
  encoding, network adapter, training, posterior);
- ``posterax ensemble (5)``: the same with ``px.methods.Ensemble(num_members=5, ...)``;
- ``hand-written map``: ``nnx.split`` the module once; a loss that ``nnx.merge``-s it: the
  softmax cross-entropy (mean over the batch) plus ``0.5 * ||w||^2 / N``, which is posterax's
  MAP objective (``MAPLoss``: ``-mean_b log p(y_b | w) - log N(w; 0, 1) / N``) less the
  prior's constant ``P log(2 pi) / (2 N)``; one ``jax.jit`` over all epochs (``lax.scan``
  over epochs, ``lax.scan`` over minibatches inside, the last minibatch topped up from the
  start of the epoch's permutation, as posterax does);
- ``hand-written ensemble (5, vmap)``: that training function under ``jax.vmap`` over the 5
  members' params and keys, one jitted program;
- ``hand-written ensemble (5 loops)``: the single-network program called 5 times (compiled
  once).

The objectives are checked to be the same: posterax's own ``MAPLoss`` and the hand-written loss
are evaluated at the same (posterax-trained) params on all training rows, and the final-epoch
losses of every run are reported (posterax's less the prior's constant).

Cold = the first call of that run in a fresh Python process (the script re-runs itself with
``--cold-run NAME``; data made and JAX's backend started before the clock starts: tracing,
compilation and first-use costs included). Warm = the fastest of ``--repeats`` calls with new
seeds after one untimed compiling call (posterax: a fit of one compiled chunk of epochs, the
same program; hand-written: ``jit(...).lower(...).compile()``). The warm repeats are
interleaved (every run once per round, ``--repeats`` rounds) because this benchmark may share
the machine with other work; the 1-minute load average is recorded at every measurement.
Seconds per epoch = time / E; the ratio is posterax / hand-written (goal: <= 1.1 warm).

Note: posterax groups epochs into compiled calls of ``256 // steps per epoch`` epochs (6 here);
a last partial group still computes its masked epochs, so ``--epochs`` defaults to a multiple
of 6 (12). On CPU posterax runs ensemble members one after another inside one compiled program
(``lax.map``; vmapped only on accelerators, see ``posterax.inference.devices.vectorize_items``).

Run by hand (not in CI; about 4-5 minutes on 2 cores)::

    .venv/bin/python benchmarks/mnist1d_training_speed.py [--epochs 12] [--members 5]
        [--repeats 3] [--out-dir benchmarks/results] [--no-cold]

Writes ``mnist1d_training_speed.json`` and ``mnist1d_training_speed.md`` to ``--out-dir``
(default ``benchmarks/results``) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import posterax as px
from posterax.inference.network_model import NetworkModel
from posterax.models.weight_prior import WeightPrior
from posterax.networks.reference import MNIST1DCNN, reference_training

BATCH_SIZE = 100


def load() -> float:
    """The 1-minute load average (other work on the machine slows every run)."""
    return round(os.getloadavg()[0], 2)


def hand_written_trainer(graphdef, optimizer, n: int, batch_size: int, num_epochs: int):
    """``(loss_fn, train)``; ``train(params, key, X, y) -> (params, epoch losses)``."""
    n_batches = math.ceil(n / batch_size)
    pad = n_batches * batch_size - n

    def loss_fn(params, xb, yb):
        logits = nnx.merge(graphdef, params)(xb)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()
        l2 = sum(jnp.sum(w**2) for w in jax.tree_util.tree_leaves(params))
        return ce + 0.5 * l2 / n

    def train(params, key, X, y):
        def epoch(carry, epoch_key):
            perm = jax.random.permutation(epoch_key, n)
            order = jnp.concatenate([perm, perm[:pad]]).reshape(n_batches, batch_size)

            def step(carry, idx):
                params, opt_state = carry
                loss, grads = jax.value_and_grad(loss_fn)(params, X[idx], y[idx])
                updates, opt_state = optimizer.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), loss

            carry, losses = jax.lax.scan(step, carry, order)
            return carry, jnp.mean(losses)

        carry = (params, optimizer.init(params))
        (params, _), losses = jax.lax.scan(epoch, carry, jax.random.split(key, num_epochs))
        return params, losses

    return loss_fn, train


class Problem:
    """Data, network, optimiser and the five runs; ``runs[name](seed)`` is one timed training
    run returning ``(what to block on, posterax's train-loop seconds or None, final epoch
    loss, test accuracy thunk)``."""

    def __init__(self, E: int, M: int, compile_now: bool = True):
        split = px.data.mnist1d()
        self.split = split
        self.E, self.M = E, M
        X, y = split.X_train, split.y_train
        self.n = n = X.shape[0]
        self.net = MNIST1DCNN(rngs=nnx.Rngs(0))
        self.graphdef, state = nnx.split(self.net)
        self.n_params = sum(leaf.size for leaf in jax.tree_util.tree_leaves(state))
        # The prior's normalising constant in posterax's MAP loss: P * log(2 pi) / 2 / N.
        self.constant = self.n_params * 0.5 * math.log(2 * math.pi) / n
        self.optimizer = reference_training("mnist1d")["optimizer"]  # one object: one program
        self.chunk = max(1, min(E, 256 // math.ceil(n / BATCH_SIZE)))  # posterax's epoch group
        self.Xj, self.yj = jnp.asarray(X), jnp.asarray(y)
        self.Xt, self.yt = jnp.asarray(split.X_test), np.asarray(split.y_test)
        self.loss_fn, train = hand_written_trainer(self.graphdef, self.optimizer, n, BATCH_SIZE, E)
        self.train_jit = jax.jit(train)
        self.ens_jit = jax.jit(jax.vmap(train, in_axes=(0, 0, None, None)))
        self.compiled = {}
        self.last = {}
        self.runs = {
            "posterax map": self.posterax_fit("map"),
            f"posterax ensemble ({M})": self.posterax_fit("ensemble"),
            "hand-written map": self.single,
            f"hand-written ensemble ({M}, vmap)": self.vmapped,
            f"hand-written ensemble ({M} loops)": self.loops,
        }

    # -- posterax ---------------------------------------------------------------------------
    def classifier(self, method: str, seed: int, epochs: int):
        training = px.methods.Training(
            optimizer=self.optimizer,
            num_epochs=epochs,
            batch_size=BATCH_SIZE,
            validation_fraction=None,
        )
        if method == "map":
            method_object = px.methods.MAP(training=training)
        else:
            method_object = px.methods.Ensemble(num_members=self.M, training=training)
        return px.BayesianClassifier(
            network=self.net, method=method_object, progress_bar=False, random_state=seed
        )

    def posterax_fit(self, method: str):
        def call(seed: int):
            clf = self.classifier(method, seed, self.E)
            clf.fit(self.split.X_train, self.split.y_train)
            info = clf.posterior_.info
            loss = float(np.mean(info["loss_history"][-1])) - self.constant
            self.last[method] = clf
            accuracy = lambda: float(clf.score(self.split.X_test, self.split.y_test))  # noqa: E731
            return clf.posterior_.draws, info["train_seconds"], loss, accuracy

        def warm_up():  # one compiled group of epochs: the program the timed fits run
            self.classifier(method, 0, self.chunk).fit(self.split.X_train, self.split.y_train)

        call.warm_up = warm_up
        return call

    # -- hand-written -----------------------------------------------------------------------
    def start(self, seed: int):
        return nnx.split(MNIST1DCNN(rngs=nnx.Rngs(seed)))[1]

    def stacked_starts(self, seed: int):
        starts = [self.start(seed * 100 + m) for m in range(self.M)]
        return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *starts)

    def program(self, which: str):
        """The AOT-compiled program (warm calls: no tracing, no compilation)."""
        if which not in self.compiled:
            if which == "single":
                args = (self.start(0), jax.random.key(0), self.Xj, self.yj)
                self.compiled[which] = self.train_jit.lower(*args).compile()
            else:
                keys = jax.random.split(jax.random.key(0), self.M)
                args = (self.stacked_starts(0), keys, self.Xj, self.yj)
                self.compiled[which] = self.ens_jit.lower(*args).compile()
        return self.compiled[which]

    def accuracy(self, members: list) -> float:
        probs = [jax.nn.softmax(nnx.merge(self.graphdef, p)(self.Xt)) for p in members]
        return float(np.mean(np.asarray(jnp.mean(jnp.stack(probs), 0)).argmax(-1) == self.yt))

    def single(self, seed: int, compiled: bool = True):
        train = self.program("single") if compiled else self.train_jit
        params, losses = train(self.start(seed), jax.random.key(seed), self.Xj, self.yj)
        return params, None, float(losses[-1]), lambda: self.accuracy([params])

    def vmapped(self, seed: int, compiled: bool = True):
        train = self.program("vmap") if compiled else self.ens_jit
        keys = jax.random.split(jax.random.key(seed), self.M)
        params, losses = train(self.stacked_starts(seed), keys, self.Xj, self.yj)
        members = [jax.tree_util.tree_map(lambda a, m=m: a[m], params) for m in range(self.M)]
        return params, None, float(jnp.mean(losses[:, -1])), lambda: self.accuracy(members)

    def loops(self, seed: int, compiled: bool = True):
        out = [self.single(seed * 100 + m, compiled) for m in range(self.M)]
        members = [o[0] for o in out]
        return members, None, float(np.mean([o[2] for o in out])), lambda: self.accuracy(members)

    def warm_up(self, name: str) -> None:
        call = self.runs[name]
        if hasattr(call, "warm_up"):
            call.warm_up()
        else:
            self.program("vmap" if "vmap" in name else "single")

    # -- the objectives agree ---------------------------------------------------------------
    def objective_check(self) -> dict:
        """posterax's ``MAPLoss`` and the hand-written loss at the same params (the last
        posterax MAP fit's), on all training rows."""
        clf = self.last["map"]
        post = clf.posterior_
        model = NetworkModel(post.apply_fn, post.likelihood, WeightPrior())
        params = jax.tree_util.tree_map(lambda a: a[0], post.draws)
        ours = float(model.map_loss(self.n)(params, None, self.Xj, self.yj))
        state = nnx.split(self.net)[1]
        nnx.replace_by_pure_dict(state, jax.tree_util.tree_map(np.asarray, params["net"]))
        theirs = float(self.loss_fn(state, self.Xj, self.yj))
        return {
            "posterax_map_loss": ours,
            "posterax_map_loss_less_prior_constant": ours - self.constant,
            "hand_written_loss": theirs,
            "prior_constant": self.constant,
            "abs_difference": abs(ours - self.constant - theirs),
        }


def timed(call, seed: int, **kwargs) -> dict:
    before = load()
    start = time.perf_counter()
    out, loop_s, loss, accuracy = call(seed, **kwargs)
    jax.block_until_ready(out)
    seconds = time.perf_counter() - start
    return {"s": seconds, "loop_s": loop_s, "loss": loss, "load": before, "accuracy": accuracy}


def cold_in_fresh_process(name: str, args: argparse.Namespace) -> dict:
    """The first call of run ``name`` in a new Python process (data made and JAX's backend
    started before the clock starts): tracing, compilation and first-use costs included."""
    cmd = [sys.executable, __file__, "--cold-run", name, "--epochs", str(args.epochs)]
    cmd += ["--members", str(args.members)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out-dir", default="benchmarks/results")
    parser.add_argument("--no-cold", action="store_true", help="skip the fresh-process runs")
    parser.add_argument("--cold-run", default=None, help=argparse.SUPPRESS)  # internal
    args = parser.parse_args()
    E, M = args.epochs, args.members
    problem = Problem(E, M)
    jax.block_until_ready(jax.jit(lambda a: a + 1)(jnp.zeros(3)))  # start the backend
    if args.cold_run is not None:
        kwargs = {} if args.cold_run.startswith("posterax") else {"compiled": False}
        row = timed(problem.runs[args.cold_run], 0, **kwargs)
        print(json.dumps({"s": row["s"], "load": row["load"]}))
        return

    names = list(problem.runs)
    rows: dict[str, dict] = {name: {} for name in names}
    total = time.perf_counter()
    if not args.no_cold:
        for name in names:
            cold = cold_in_fresh_process(name, args)
            rows[name].update(cold_s=cold["s"], cold_load=cold["load"])
            print(f"cold  {name:34s} {cold['s']:7.2f} s   (load {cold['load']})", flush=True)
    for name in names:
        problem.warm_up(name)
    warm: dict[str, list] = {name: [] for name in names}
    for r in range(1, args.repeats + 1):  # interleaved: every run once per round
        for name in names:
            result = timed(problem.runs[name], r)
            warm[name].append(result)
            print(
                f"warm  {name:34s} {result['s']:7.2f} s   {1e3 * result['s'] / E:7.1f} ms/epoch"
                f"   loss {result['loss']:.4f}   (round {r}, load {result['load']})",
                flush=True,
            )
    for name in names:
        best = min(warm[name], key=lambda w: w["s"])
        row = rows[name]
        row.update(
            warm_s=best["s"],
            warm_s_per_epoch=best["s"] / E,
            warm_all_s=[w["s"] for w in warm[name]],
            warm_loads=[w["load"] for w in warm[name]],
            final_epoch_loss=warm[name][-1]["loss"],
            test_accuracy=warm[name][-1]["accuracy"](),
        )
        if "cold_s" in row:
            row["cold_s_per_epoch"] = row["cold_s"] / E
        if best["loop_s"] is not None:
            row["warm_train_loop_s_per_epoch"] = min(w["loop_s"] for w in warm[name]) / E
    objective = problem.objective_check()

    ens = rows[f"posterax ensemble ({M})"]
    refs = {
        "map": (rows["posterax map"], rows["hand-written map"]),
        "ensemble_vs_vmap": (ens, rows[f"hand-written ensemble ({M}, vmap)"]),
        "ensemble_vs_loops": (ens, rows[f"hand-written ensemble ({M} loops)"]),
    }
    ratios = {}
    for key, (ours, ref) in refs.items():
        ratios[f"{key}_warm"] = ours["warm_s"] / ref["warm_s"]
        ratios[f"{key}_warm_train_loop"] = (
            ours["warm_train_loop_s_per_epoch"] / ref["warm_s_per_epoch"]
        )
        if "cold_s" in ours:
            ratios[f"{key}_cold"] = ours["cold_s"] / ref["cold_s"]
    split = problem.split
    result = {
        "problem": {
            "data": "px.data.mnist1d()",
            "n_train": int(split.X_train.shape[0]),
            "n_test": int(split.X_test.shape[0]),
            "input_shape": list(split.X_train.shape[1:]),
            "network": "posterax.networks.reference.MNIST1DCNN (Flax NNX)",
            "n_params": int(problem.n_params),
            "optimizer": 'reference_training("mnist1d")["optimizer"] (Adam 1e-2 piecewise)',
        },
        "epochs": E,
        "batch_size": BATCH_SIZE,
        "steps_per_epoch": math.ceil(split.X_train.shape[0] / BATCH_SIZE),
        "posterax_epochs_per_compiled_call": problem.chunk,
        "members": M,
        "repeats": args.repeats,
        "interleaved": True,
        "runs": rows,
        "objective_check": objective,
        "ratios_posterax_over_hand_written": ratios,
        "targets": {"map_warm": "<= 1.1", "ensemble_vs_vmap_warm": "<= 1.1"},
        "total_seconds": time.perf_counter() - total,
        "load_average_at_end": list(os.getloadavg()),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "jax": jax.__version__,
            "flax": flax.__version__,
            "optax": optax.__version__,
            "posterax": px.__version__,
            "devices": [str(dev) for dev in jax.devices()],
        },
    }
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "mnist1d_training_speed.json").write_text(json.dumps(result, indent=2))

    table = [
        f"MNIST-1D CNN ({problem.n_params} params), {split.X_train.shape[0]} train rows, batch "
        f"{BATCH_SIZE}, {E} epochs, {M} members; {os.cpu_count()} CPU(s), "
        f"{jax.devices()[0].platform}; warm = best of {args.repeats} interleaved rounds",
        "",
        "| run | cold (s) | warm (s) | warm ms / epoch | posterax train loop ms / epoch "
        "| load (warm runs) | final epoch loss | test accuracy |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for name, row in rows.items():
        loop = row.get("warm_train_loop_s_per_epoch")
        cold = f"{row['cold_s']:.2f}" if "cold_s" in row else "-"
        table.append(
            f"| {name} | {cold} | {row['warm_s']:.2f} | {1e3 * row['warm_s_per_epoch']:.1f} | "
            + (f"{1e3 * loop:.1f}" if loop is not None else "-")
            + f" | {', '.join(f'{v:.1f}' for v in row['warm_loads'])} | "
            f"{row['final_epoch_loss']:.4f} | {row['test_accuracy']:.3f} |"
        )
    table.append("")
    for key, label in (
        ("map", "MAP, posterax / hand-written"),
        ("ensemble_vs_vmap", f"Ensemble, posterax / hand-written vmap ({M})"),
        ("ensemble_vs_loops", f"Ensemble, posterax / hand-written {M} loops"),
    ):
        cold = f", cold {ratios[f'{key}_cold']:.2f}x" if f"{key}_cold" in ratios else ""
        table.append(
            f"- {label}: warm {ratios[f'{key}_warm']:.2f}x (train loop only "
            f"{ratios[f'{key}_warm_train_loop']:.2f}x){cold}"
        )
    table.append(
        f"- Same objective: posterax MAPLoss less the prior constant "
        f"{objective['posterax_map_loss_less_prior_constant']:.6f} vs hand-written "
        f"{objective['hand_written_loss']:.6f} at the same params (|diff| "
        f"{objective['abs_difference']:.1e})"
    )
    text = "\n".join(table)
    (out / "mnist1d_training_speed.md").write_text(
        "# MNIST-1D CNN training speed: posterax vs a hand-written optax loop\n\n"
        "`.venv/bin/python benchmarks/mnist1d_training_speed.py "
        + " ".join(sys.argv[1:])
        + "`\n\n"
        + text
        + "\n"
    )
    print("\n" + text)


if __name__ == "__main__":
    main()
