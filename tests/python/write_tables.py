"""Writes small tables the way pandas and polars users do, for Sluice to read.

Usage: write_tables.py OUT_DIR

50 rows, row i: a = i - 10 (int32), b = i / 4 (float64), label = i % 3 (int64), and in the
polars files also img = [i, i + 1, i + 2, i + 3] (Array(Float32, 4), a FixedSizeList in
Arrow). Files, each in its library's default compression: pandas.feather (lz4),
pandas.parquet (snappy), polars.arrow (IPC file), polars.parquet (zstd).
Run by engine/tests/columnar.rs with the venv python of .ci/run (env SLUICE_PY).
"""

import os
import sys

import numpy as np
import pandas as pd
import polars as pl


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    i = np.arange(50)
    a = (i - 10).astype(np.int32)
    b = i / 4
    label = (i % 3).astype(np.int64)

    df = pd.DataFrame({"a": a, "b": b, "label": label})
    df.to_feather(os.path.join(out, "pandas.feather"))
    df.to_parquet(os.path.join(out, "pandas.parquet"))

    img = np.stack([i, i + 1, i + 2, i + 3], axis=1).astype(np.float32)
    pf = pl.DataFrame(
        {
            "a": a,
            "b": b,
            "img": pl.Series(img, dtype=pl.Array(pl.Float32, 4)),
            "label": label,
        }
    )
    pf.write_ipc(os.path.join(out, "polars.arrow"))
    pf.write_parquet(os.path.join(out, "polars.parquet"))
    print("ok: wrote 4 tables")


if __name__ == "__main__":
    main()
