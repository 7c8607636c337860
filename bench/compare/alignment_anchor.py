#!/usr/bin/env python3
"""Anchors for the alignment benchmarks (run by bench/compare/alignment.ts side by side with ours).

  codes OUT N M K SEED [PARTNERLESS]  writes paired sparse codes (OUT.ai/.av/.bi/.bv: int32/float32 [N, K])
                                    where B is a noisy permutation of A (anchors.md's correlation-like model)
  lapmat OUT KIND N SEED            writes a cost matrix OUT.f32 and OUT.json {rows, cols}: KIND = uniform |
                                    corr | corrhard (Pearson correlation of such codes, dead latents removed)
  scipy OUT                         times scipy.optimize.linear_sum_assignment(C, maximize=True) on OUT.f32
  numpycorr OUT N M K               times the authors' approach on the codes: densify + float32 GEMM corrcoef
"""
import json
import sys
import time

import numpy as np


def make_codes(n, m, k, seed, partnerless=0.0):
    rng = np.random.default_rng(seed)
    freq = rng.lognormal(0.0, 1.0, m)
    freq /= freq.sum()
    ai = np.empty((n, k), np.int32)
    for r in range(n):
        ai[r] = rng.choice(m, size=k, replace=False, p=freq)
    av = rng.lognormal(0.0, 0.5, (n, k)).astype(np.float32)
    perm = rng.permutation(m)
    p_keep = rng.beta(2.8, 1.2, m)
    if partnerless > 0:
        p_keep[rng.random(m) < partnerless] = 0.02
    keep = rng.random((n, k)) < p_keep[ai]
    bi = np.where(keep, perm[ai], -1)
    # Replace the dropped partners by random latents not already in the row.
    for r in range(n):
        row = bi[r]
        used = set(row[row >= 0].tolist())
        for s in range(k):
            if row[s] < 0:
                j = int(rng.integers(m))
                while j in used:
                    j = int(rng.integers(m))
                used.add(j)
                row[s] = j
    bv = (av * rng.lognormal(0.0, 0.3, (n, k))).astype(np.float32)
    return ai, av, bi.astype(np.int32), bv


def corr_of_codes(ai, av, bi, bv, m):
    import scipy.sparse as sp

    n, k = ai.shape
    rows = np.repeat(np.arange(n), k)
    A = sp.csr_matrix((av.ravel().astype(np.float64), (rows, ai.ravel())), shape=(n, m))
    B = sp.csr_matrix((bv.ravel().astype(np.float64), (rows, bi.ravel())), shape=(n, m))
    S = (A.T @ B).toarray()
    ma, mb = np.asarray(A.mean(0)).ravel(), np.asarray(B.mean(0)).ravel()
    va = np.asarray(A.multiply(A).mean(0)).ravel() - ma**2
    vb = np.asarray(B.multiply(B).mean(0)).ravel() - mb**2
    C = (S / n - np.outer(ma, mb)) / np.sqrt(np.outer(va, vb))
    alive_a, alive_b = va > 1e-12, vb > 1e-12
    return C[np.ix_(alive_a, alive_b)].astype(np.float32)


def main():
    cmd, out = sys.argv[1], sys.argv[2]
    if cmd == "codes":
        n, m, k, seed = map(int, sys.argv[3:7])
        partnerless = float(sys.argv[7]) if len(sys.argv) > 7 else 0.0
        ai, av, bi, bv = make_codes(n, m, k, seed, partnerless)
        ai.tofile(out + ".ai"); av.tofile(out + ".av"); bi.tofile(out + ".bi"); bv.tofile(out + ".bv")
    elif cmd == "lapmat":
        kind, n, seed = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        if kind == "uniform":
            C = np.random.default_rng(seed).random((n, n), dtype=np.float32)
        else:
            ai, av, bi, bv = make_codes(20000, n, 32, seed, 0.3 if kind == "corrhard" else 0.0)
            C = corr_of_codes(ai, av, bi, bv, n)
        np.ascontiguousarray(C, np.float32).tofile(out + ".f32")
        json.dump({"rows": C.shape[0], "cols": C.shape[1]}, open(out + ".json", "w"))
    elif cmd == "scipy":
        from scipy.optimize import linear_sum_assignment

        meta = json.load(open(out + ".json"))
        C = np.fromfile(out + ".f32", np.float32).reshape(meta["rows"], meta["cols"])
        t = time.perf_counter()
        r, c = linear_sum_assignment(C, maximize=True)
        dt = time.perf_counter() - t
        print(json.dumps({"seconds": dt, "objective": float(C[r, c].astype(np.float64).sum())}))
    elif cmd == "numpycorr":
        n, m, k = map(int, sys.argv[3:6])
        ai = np.fromfile(out + ".ai", np.int32).reshape(-1, k)[:n]
        av = np.fromfile(out + ".av", np.float32).reshape(-1, k)[:n]
        bi = np.fromfile(out + ".bi", np.int32).reshape(-1, k)[:n]
        bv = np.fromfile(out + ".bv", np.float32).reshape(-1, k)[:n]
        t = time.perf_counter()
        Za = np.zeros((n, m), np.float32); np.put_along_axis(Za, ai, av, 1)
        Zb = np.zeros((n, m), np.float32); np.put_along_axis(Zb, bi, bv, 1)
        Za -= Za.mean(0); Zb -= Zb.mean(0)
        Za /= np.linalg.norm(Za, axis=0) + 1e-8; Zb /= np.linalg.norm(Zb, axis=0) + 1e-8
        C = Za.T @ Zb
        dt = time.perf_counter() - t
        print(json.dumps({"seconds": dt, "checksum": float(np.abs(C).sum())}))


if __name__ == "__main__":
    main()
