"""The bring-your-own-network examples run and show what they claim (slow: 25-40 s each)."""

import pytest


@pytest.mark.slow
def test_nnx_cnn_example_knows_when_it_does_not_know():
    import own_network_nnx as example  # examples/ is on sys.path via conftest

    results = example.main(num_epochs=20)
    for name, row in results.items():
        assert row["accuracy"] > 0.9, name
        assert row["entropy_noise"] > 2 * row["entropy_test"], name  # unsure on noise images


@pytest.mark.slow
def test_equinox_example_covers(tmp_path):
    import own_network_equinox as example

    results = example.main(out=str(tmp_path / "band.png"))
    for name, row in results.items():
        assert 0.9 < row["coverage"] < 0.99, name
        assert row["rmse"] < 0.45, name  # noise sd 0.3
    assert (tmp_path / "band.png").stat().st_size > 0


@pytest.mark.slow
def test_images_example_knows_when_it_does_not_know(tmp_path):
    import images_knows_when_it_does_not_know as example

    results = example.main(out=str(tmp_path / "digits_ood.png"))
    for name, row in results.items():
        assert row["accuracy"] > 0.98, name
        assert row["entropy/unseen digits 5-9"] > 5 * row["entropy/seen digits 0-4"], name
        assert row["entropy/noise"] > 5 * row["entropy/seen digits 0-4"], name
    for name in ("MC dropout", "ensemble (5)"):  # better at flagging unseen digits than MAP
        assert results[name]["auroc_unseen"] > results["MAP"]["auroc_unseen"], name
    assert (tmp_path / "digits_ood.png").stat().st_size > 0
