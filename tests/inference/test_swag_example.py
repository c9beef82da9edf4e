"""examples/swag_regression.py: SWAG's auto step keeps it by its MAP where a fixed one does not."""


def test_auto_step_keeps_swag_near_the_map_where_a_fixed_step_diverges():
    import swag_regression as example  # examples/ is on sys.path via conftest

    noisy, clean = (example.main()[noise] for noise in (0.3, 0.01))
    # Ordinary noise: the loss is flat enough for the fixed step, and auto takes it.
    assert noisy["swag (auto step)"]["step"] == 1e-2
    # Nearly no noise: the curvature is about 1 / 0.01^2, so auto's step is far below 1e-2,
    # and SWAG stays as close to the truth as its MAP while the fixed step throws it off.
    assert clean["swag (auto step)"]["step"] < 1e-3
    map_rmse = clean["map"]["rmse"]
    assert clean["swag (auto step)"]["rmse"] < 2 * map_rmse
    assert clean["swag (step 1e-2)"]["rmse"] > 20 * map_rmse
