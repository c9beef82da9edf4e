"""A CNN that knows when it doesn't know: trained on the digits 0-4, shown 5-9 and noise.

The seeds' example: a plain network shown something it has never seen (a dog in a cat costume)
still answers "cat", confidently; a Bayesian one should say "I don't know". Here the network is
posterax's reference 8x8 CNN (an ordinary Flax NNX module, :mod:`posterax.networks.reference`),
trained on scikit-learn's digits 0-4 only, then shown held-out 0-4 digits (in distribution),
the digits 5-9 (classes it has never seen) and uniform noise images.

For the MAP network, MC dropout (the seeds' method: dropout kept on at prediction, 100 passes)
and a deep ensemble of 5, it prints test accuracy, NLL and the predictive entropy on
each group, the AUROC of entropy for telling unseen digits from seen ones, and saves a figure of
a few images with what each method says about them (``digits_ood.png``).

Run: python examples/images_knows_when_it_does_not_know.py   (about 1-2 min on 2 CPU cores)
"""

from __future__ import annotations

import time

import numpy as np
from flax import nnx

import posterax as px
from posterax.networks.reference import DigitsCNN, reference_training
from posterax.plots import plot_image_predictions


def main(out: str | None = "digits_ood.png") -> dict:
    X_train, y_train, X_test, y_test = px.data.digits()
    seen_train, seen_test = y_train < 5, y_test < 5
    X_in, y_in = X_test[seen_test], y_test[seen_test]
    groups = {
        "seen digits 0-4": X_in,
        "unseen digits 5-9": X_test[~seen_test],
        "noise": px.data.shift.noise_images((200, 8, 8, 1), seed=1),
    }
    training = px.methods.Training(**reference_training("digits", n_train=int(seen_train.sum())))
    methods = {
        "MAP": px.methods.MAP(training=training),
        "MC dropout": px.methods.MCDropout(num_samples=100, training=training),
        "ensemble (5)": px.methods.Ensemble(num_members=5, training=training),
    }
    results, probs_shown = {}, {}
    shown = np.r_[0:4, len(X_in) : len(X_in) + 4, -4:0]  # four of each group
    everything = np.concatenate(list(groups.values()))
    names = [name for name, X in groups.items() for _ in range(len(X))]
    print(f"{'method':16s} {'fit s':>6s} {'acc':>6s} {'NLL':>6s}  entropy: seen / unseen / noise"
          "   AUROC unseen")  # fmt: skip
    for name, method in methods.items():
        clf = px.BayesianClassifier(
            network=DigitsCNN(
                num_classes=5, dropout_rate=0.25 if name == "MC dropout" else 0.0, rngs=nnx.Rngs(0)
            ),
            method=method,
            random_state=0,
            progress_bar=False,
        )
        start = time.perf_counter()
        clf.fit(X_train[seen_train], y_train[seen_train])
        seconds = time.perf_counter() - start
        probs = clf.predict_proba(everything)
        entropy = np.asarray(px.uncertainty.entropy(probs))
        by_group = {g: entropy[[n == g for n in names]] for g in groups}
        p_in = probs[: len(X_in)]
        auroc = float(px.metrics.auroc(
            np.r_[np.zeros(len(X_in)), np.ones(len(groups["unseen digits 5-9"]))],
            np.r_[by_group["seen digits 0-4"], by_group["unseen digits 5-9"]],
        ))  # fmt: skip
        results[name] = {
            "fit_seconds": seconds,
            "accuracy": float(px.metrics.accuracy(y_in, p_in)),
            "nll": float(px.metrics.log_loss(y_in, p_in)),
            "auroc_unseen": auroc,
            **{f"entropy/{g}": float(v.mean()) for g, v in by_group.items()},
        }
        probs_shown[name] = probs[shown]
        row = results[name]
        print(
            f"{name:16s} {seconds:6.1f} {row['accuracy']:6.3f} {row['nll']:6.3f}  "
            + " / ".join(f"{row[f'entropy/{g}']:.2f}" for g in groups)
            + f"   {auroc:.3f}"
        )
    print(f"(the most unsure answer over 5 classes has entropy log 5 = {np.log(5):.2f} nats)")
    if out:
        fig = plot_image_predictions(
            everything[shown],
            probs_shown,
            groups=[names[i].split(" ")[0] for i in shown],
            title="trained on digits 0-4: what each method says (class, probability, entropy)",
        )
        fig.savefig(out, dpi=130)
        print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
