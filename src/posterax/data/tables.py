"""Tables from files (CSV or Parquet) to the float feature matrix the estimators take.

:class:`TableEncoder` remembers, from the training table, which columns are numeric, which are
categorical (with their categories, one-hot encoded) and, with ``impute=True``, the value that
fills each column's missing entries (numeric: the training median; categorical: the most
frequent category). It is saved as JSON beside a fitted model, so ``posterax predict`` encodes
new rows exactly as the training rows were. Missing values without ``impute`` are an error that
lists the columns and the first rows affected.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SUFFIXES = (".csv", ".parquet", ".pq")
_MAX_ROWS_SHOWN = 5


def read_table(path: Any) -> pd.DataFrame:
    """Read a CSV or Parquet file (by suffix) into a DataFrame, with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"The data file {str(path)!r} does not exist. Pass a CSV or Parquet file."
        )
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"The data file {str(path)!r} must end in {', '.join(SUFFIXES)} (CSV or Parquet). "
            f"Got {suffix or 'no suffix'!r}. Save the table as CSV."
        )
    if suffix == ".csv":
        table = pd.read_csv(path)
    else:
        try:
            table = pd.read_parquet(path)
        except ImportError as error:
            raise ImportError(
                f"Reading Parquet ({str(path)!r}) needs pyarrow: pip install 'posterax[parquet]', "
                "or save the table as CSV."
            ) from error
    if table.shape[0] == 0 or table.shape[1] == 0:
        raise ValueError(f"The data file {str(path)!r} holds no rows or no columns.")
    return table


def split_target(table: pd.DataFrame, target: str, where: str) -> tuple[pd.DataFrame, pd.Series]:
    """Features and the target column; the target must exist and have no missing values."""
    if target not in table.columns:
        raise ValueError(
            f"The '--target' of {where} must name a column of the table. Got {target!r}; the "
            f"columns are {list(map(str, table.columns))}."
        )
    y = table[target]
    missing = np.flatnonzero(y.isna().to_numpy())
    if missing.size:
        raise ValueError(
            f"The target column {target!r} of {where} has {missing.size} missing values (rows "
            f"{_rows(missing)}). Drop those rows: a model cannot learn from an unknown target."
        )
    return table.drop(columns=[target]), y


def _rows(index: np.ndarray) -> str:
    shown = ", ".join(map(str, index[:_MAX_ROWS_SHOWN].tolist()))
    return shown + (", ..." if index.size > _MAX_ROWS_SHOWN else "")


@dataclasses.dataclass
class TableEncoder:
    """Numeric columns pass through; categorical ones become one indicator per category."""

    numeric: list[str]
    categorical: dict[str, list[str]]
    fill: dict[str, Any]
    impute: bool

    @classmethod
    def fit(cls, features: pd.DataFrame, *, impute: bool = False, where: str = "fit"):
        """Learn the encoding from the training features (checks them first)."""
        if features.shape[1] == 0:
            raise ValueError(f"{where}: the table has no feature columns besides the target.")
        empty = [str(c) for c in features.columns if features[c].isna().all()]
        if empty:
            raise ValueError(
                f"{where}: the columns {empty} hold no values at all (all missing). Drop them; "
                "nothing can be imputed from an empty column."
            )
        numeric = [str(c) for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
        categorical = {
            str(c): sorted(map(str, features[c].dropna().unique()))
            for c in features.columns
            if str(c) not in numeric
        }
        fill: dict[str, Any] = {}
        if impute:
            fill = {c: float(features[c].median()) for c in numeric}
            fill |= {c: str(features[c].dropna().astype(str).mode()[0]) for c in categorical}
        return cls(numeric, categorical, fill, impute)

    @property
    def feature_names(self) -> list[str]:
        names = list(self.numeric)
        for column, categories in self.categorical.items():
            names += [f"{column}={category}" for category in categories]
        return names

    def transform(self, features: pd.DataFrame, *, where: str = "predict") -> np.ndarray:
        """``(n_rows, n_features)`` float64; unseen categories encode as all zeros."""
        absent = [c for c in [*self.numeric, *self.categorical] if c not in features.columns]
        if absent:
            raise ValueError(
                f"{where}: the table lacks the columns {absent} that the model was trained on."
            )
        frame = features.rename(columns=str)
        if self.impute:
            frame = frame.fillna(self.fill)
        self._check_missing(frame, where)
        blocks = [frame[self.numeric].to_numpy(dtype=np.float64)]
        for column, categories in self.categorical.items():
            values = frame[column].astype(str).to_numpy()
            blocks.append((values[:, None] == np.asarray(categories)[None, :]).astype(np.float64))
        X = np.concatenate(blocks, axis=1)
        bad = ~np.isfinite(X[:, : len(self.numeric)])
        if bad.any():
            columns = [self.numeric[j] for j in np.flatnonzero(bad.any(axis=0))]
            rows = frame.index.to_numpy()[bad.any(axis=1)]
            raise ValueError(
                f"{where}: the columns {columns} hold infinite values (rows {_rows(rows)}). "
                "Replace or drop them."
            )
        return X

    def _check_missing(self, frame: pd.DataFrame, where: str) -> None:
        columns = [*self.numeric, *self.categorical]
        missing = frame[columns].isna()
        if missing.to_numpy().any():
            names = [c for c in columns if missing[c].any()]
            rows = frame.index.to_numpy()[missing.any(axis=1).to_numpy()]
            raise ValueError(
                f"{where}: missing values in the columns {names} (rows {_rows(rows)}). Drop "
                "those rows, or pass --impute to fill numeric columns with the training median "
                "and categorical ones with the most frequent category."
            )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TableEncoder:
        return cls(**json.loads(text))


__all__ = ["SUFFIXES", "TableEncoder", "read_table", "split_target"]
