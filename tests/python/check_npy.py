"""Reads a Sluice tensor dump with NumPy and prints what it holds, as JSON.

usage: check_npy.py DUMP_DIR

For each entry of DUMP_DIR/dump.json: numpy.load of its file, and the file's dtype, shape
and the sum of its values (NaN-free values only), which the Rust test compares with the
tensors it dumped.
"""

import json
import pathlib
import sys

import numpy

folder = pathlib.Path(sys.argv[1])
manifest = json.loads((folder / "dump.json").read_text())
seen = {}
for entry in manifest["tensors"]:
    array = numpy.load(folder / entry["file"], allow_pickle=False)
    seen[f'{entry["node"]}:{entry["output"]}'] = {
        "dtype": str(array.dtype),
        "shape": list(array.shape),
        "sum": float(numpy.nansum(array.astype(numpy.float64))),
    }
print(json.dumps(seen))
