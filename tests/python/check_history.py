"""Reads a Sluice metric history, exported as Arrow IPC and as Parquet, with pandas and polars.

Usage: check_history.py EXPECTED.csv HISTORY.arrow HISTORY.parquet

EXPECTED.csv holds the points the engine wrote (header step,loss,wall_time; floats written so
that they read back exactly). Every reader must see exactly the columns step (int64), loss
(float64) and wall_time (float64) with those values, NaN matching NaN. Exits 1 with a message
naming the reader and the first difference; prints one "ok" line per reader otherwise.
Run by engine/tests/columnar.rs with the venv python of .ci/run (env SLUICE_PY).
"""

import csv
import math
import sys

import pandas as pd
import polars as pl

COLUMNS = ["step", "loss", "wall_time"]


def expected_rows(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if rows[0] != COLUMNS:
        sys.exit(f"{path}: header {rows[0]} is not {COLUMNS}")
    return [(int(s), float(l), float(w)) for s, l, w in rows[1:]]


def same(want, got):
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    return want == got


def check(reader, columns, dtypes, want_dtypes, values, expected):
    if columns != COLUMNS:
        sys.exit(f"{reader}: columns {columns}, expected {COLUMNS}")
    if dtypes != want_dtypes:
        sys.exit(f"{reader}: dtypes {dtypes}, expected {want_dtypes}")
    if len(values) != len(expected):
        sys.exit(f"{reader}: {len(values)} rows, expected {len(expected)}")
    for i, (got, want) in enumerate(zip(values, expected)):
        if not all(same(w, g) for g, w in zip(got, want)):
            sys.exit(f"{reader}: row {i} is {got}, expected {want}")
    print(f"ok: {reader}: {len(values)} rows")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    expected_csv, arrow_path, parquet_path = sys.argv[1:]
    expected = expected_rows(expected_csv)

    pandas_dtypes = ["int64", "float64", "float64"]
    for reader, df in [
        (f"pandas {pd.__version__} read_feather", pd.read_feather(arrow_path)),
        (f"pandas {pd.__version__} read_parquet", pd.read_parquet(parquet_path)),
    ]:
        values = [
            (int(s), float(l), float(w))
            for s, l, w in zip(df["step"], df["loss"], df["wall_time"])
        ]
        dtypes = [str(df[c].dtype) for c in df.columns]
        check(reader, list(df.columns), dtypes, pandas_dtypes, values, expected)

    polars_dtypes = [pl.Int64, pl.Float64, pl.Float64]
    for reader, df in [
        (f"polars {pl.__version__} read_ipc", pl.read_ipc(arrow_path)),
        (f"polars {pl.__version__} read_parquet", pl.read_parquet(parquet_path)),
    ]:
        check(reader, df.columns, list(df.dtypes), polars_dtypes, df.rows(), expected)


if __name__ == "__main__":
    main()
