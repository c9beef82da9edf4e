"""The functional-layer example (own apply_fn; deep ensemble and mean-field VI) runs and its
uncertainty grows away from the data."""


def test_scalable_posteriors_example_runs():
    import scalable_posteriors as example  # examples/ is on sys.path via conftest

    out = example.main(num_epochs=300)
    middle = len(out["grid"]) // 2
    for name in ("ensemble", "vi"):
        sd = out[name]
        assert sd[0] > 1.5 * sd[middle] and sd[-1] > 1.5 * sd[middle], name
