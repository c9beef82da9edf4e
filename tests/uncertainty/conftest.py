import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import posterax as px


@pytest.fixture(scope="session")
def digits_ood():
    """A 5-member deep ensemble on digits 0-4; digits 5-9 are out of distribution.

    Returns the classifier and the in-distribution test split, a calibration split (for
    selective prediction) and the OOD inputs.
    """
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    inside = y < 5
    X_tr, X_rest, y_tr, y_rest = train_test_split(
        X[inside], y[inside], test_size=0.4, random_state=0, stratify=y[inside]
    )
    X_cal, X_te, y_cal, y_te = train_test_split(
        X_rest, y_rest, test_size=0.5, random_state=0, stratify=y_rest
    )
    clf = px.BayesianClassifier(
        method=px.methods.Ensemble(
            num_members=5,
            training=px.methods.Training(num_epochs=15, batch_size=128, learning_rate=2e-2),
        ),
        network=(32,),
        progress_bar=False,
        random_state=0,
    ).fit(X_tr, y_tr)
    return {
        "clf": clf,
        "X_cal": X_cal,
        "y_cal": y_cal,
        "X_test": X_te,
        "y_test": y_te,
        "X_out": X[~inside],
    }
