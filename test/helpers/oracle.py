#!/usr/bin/env python3
"""Independent numpy/scipy oracles for the tests (the tests skip when python3, numpy or scipy are missing).

  oracle.py corr DIR N mA mB    reads DIR/A.f32 [N, mA], DIR/B.f32 [N, mB]; writes DIR/C.f64 = numpy float64
                                corrcoef block (NaN from zero-variance columns -> 0)
  oracle.py lsa DIR             reads DIR/jobs.json ([{rows, cols, maximize, dtype, offset}]) and DIR/costs.bin;
                                prints JSON [{objective, row_ind, col_ind} | {error}] from scipy's linear_sum_assignment
"""
import json
import os
import sys

import numpy as np


def corr(d, n, ma, mb):
    a = np.fromfile(os.path.join(d, "A.f32"), dtype=np.float32).reshape(n, ma).astype(np.float64)
    b = np.fromfile(os.path.join(d, "B.f32"), dtype=np.float32).reshape(n, mb).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.corrcoef(a, b, rowvar=False)[:ma, ma:]
    c[~np.isfinite(c)] = 0.0
    a_const = (a.max(0) == a.min(0))
    b_const = (b.max(0) == b.min(0))
    c[a_const, :] = 0.0
    c[:, b_const] = 0.0
    c.astype(np.float64).tofile(os.path.join(d, "C.f64"))


def lsa(d):
    from scipy.optimize import linear_sum_assignment

    jobs = json.load(open(os.path.join(d, "jobs.json")))
    blob = open(os.path.join(d, "costs.bin"), "rb").read()
    out = []
    for j in jobs:
        dt = np.float32 if j["dtype"] == "f32" else np.float64
        n = j["rows"] * j["cols"]
        c = np.frombuffer(blob, dtype=dt, count=n, offset=j["offset"]).reshape(j["rows"], j["cols"])
        try:
            r, k = linear_sum_assignment(c, maximize=j["maximize"])
            out.append({"objective": float(c[r, k].astype(np.float64).sum()), "row_ind": r.tolist(), "col_ind": k.tolist()})
        except ValueError as e:
            out.append({"error": str(e)})
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "corr":
        corr(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        lsa(sys.argv[2])
