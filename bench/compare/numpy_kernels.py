#!/usr/bin/env python3
"""numpy/scipy anchors for the engine benchmarks (run by bench/compare/run.ts, side by side with ours).

Reads a JSON job from argv[1]; prints one JSON line of best-of-N timings in milliseconds:
  {"sgemm": ms, "sgemm_argpartition": ms}            for kind "encode"  (X @ W, and X @ W + argpartition top-k)
  {"step": ms}                                       for kind "step"    (the best numpy training step we could write)
Run it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (see ../../shared docs: anchors.md).
"""
import json
import sys
import time

import numpy as np


def best_of(fn, reps):
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def encode_job(B, d, m, k, reps, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((B, d), dtype=np.float32)
    W = ((rng.random((d, m), dtype=np.float32) * 2 - 1) / np.float32(np.sqrt(d))).astype(np.float32)
    b = np.zeros(m, dtype=np.float32)
    assert X.dtype == W.dtype == np.float32  # a float64 operand would silently turn this into dgemm

    def sgemm():
        X @ W

    def sgemm_topk():
        pre = X @ W
        pre += b
        np.maximum(pre, 0, out=pre)
        idx = np.argpartition(pre, m - k, axis=1)[:, m - k:]
        np.take_along_axis(pre, idx, axis=1)

    return {"sgemm": best_of(sgemm, reps), "sgemm_argpartition": best_of(sgemm_topk, reps)}


class NumpySae:
    """Top-K SAE step in numpy: dense encoder GEMM, argpartition top-k, gathered sparse decode,
    scipy.sparse scatters for the decoder/encoder gradients, projection, clipping, in-place AdamW, renorm."""

    def __init__(self, d, m, k, seed):
        import scipy.sparse as sp  # noqa: F401  (imported here so the encode job does not need scipy)

        rng = np.random.default_rng(seed)
        self.d, self.m, self.k = d, m, k
        self.W_enc = ((rng.random((d, m), dtype=np.float32) * 2 - 1) / np.sqrt(d)).astype(np.float32)
        self.b_enc = np.zeros(m, np.float32)
        self.W_dec = np.ascontiguousarray(self.W_enc.T)
        self.W_dec /= np.linalg.norm(self.W_dec, axis=1, keepdims=True) + np.float32(1.1920929e-7)
        self.b_dec = np.zeros(d, np.float32)
        self.params = [self.W_enc, self.b_enc, self.W_dec, self.b_dec]
        self.m1 = [np.zeros_like(p) for p in self.params]
        self.m2 = [np.zeros_like(p) for p in self.params]
        self.t = 0
        assert all(p.dtype == np.float32 for p in self.params)

    def step(self, X, lr, b1=0.9, b2=0.999, eps=1e-8, wd=1e-5, max_norm=1.0):
        import scipy.sparse as sp

        B, d, m, k = X.shape[0], self.d, self.m, self.k
        Xc = X - self.b_dec
        pre = Xc @ self.W_enc
        pre += self.b_enc
        np.maximum(pre, 0, out=pre)
        idx = np.argpartition(pre, m - k, axis=1)[:, m - k:]
        val = np.take_along_axis(pre, idx, axis=1)
        rows = self.W_dec[idx]                                  # (B, k, d) gathered decoder rows
        xhat = np.einsum("bk,bkd->bd", val, rows) + self.b_dec
        r = xhat - X
        tv = float(((X - X.mean(0)) ** 2).sum())
        loss = float((r * r).sum()) / tv
        g = (2.0 / tv) * r                                      # dL/dxhat
        dval = np.einsum("bd,bkd->bk", g, rows) * (val > 0)
        rr = np.repeat(np.arange(B), k)
        Zv = sp.csr_matrix((val.ravel(), (rr, idx.ravel())), shape=(B, m))
        Zd = sp.csr_matrix((dval.ravel(), (rr, idx.ravel())), shape=(B, m))
        gW_dec = np.asarray(Zv.T @ g, dtype=np.float32)         # (m, d)
        gW_enc = np.asarray((Zd.T @ Xc).T, dtype=np.float32)    # (d, m)
        gb_enc = np.asarray(Zd.sum(0), dtype=np.float32).ravel()
        gb_dec = g.sum(0) - self.W_enc @ gb_enc
        gW_dec -= (gW_dec * self.W_dec).sum(1, keepdims=True) * self.W_dec
        grads = [gW_enc, gb_enc, gW_dec, gb_dec.astype(np.float32)]
        assert all(gg.dtype == np.float32 for gg in grads) and pre.dtype == np.float32
        norm = np.sqrt(sum(float((gg * gg).sum()) for gg in grads))
        coef = min(1.0, max_norm / (norm + 1e-6))
        self.t += 1
        bc1, bc2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for p, gg, m1, m2 in zip(self.params, grads, self.m1, self.m2):
            if coef < 1:
                gg *= coef
            p *= 1 - lr * wd
            m1 *= b1
            m1 += (1 - b1) * gg
            m2 *= b2
            gg *= gg
            m2 += (1 - b2) * gg
            denom = np.sqrt(m2)
            denom *= 1 / np.sqrt(bc2)
            denom += eps
            np.divide(m1, denom, out=denom)
            denom *= lr / bc1
            p -= denom
        self.W_dec /= np.linalg.norm(self.W_dec, axis=1, keepdims=True) + np.float32(1.1920929e-7)
        return loss


def step_job(B, d, m, k, reps, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((B, d), dtype=np.float32)
    sae = NumpySae(d, m, k, seed)
    return {"step": best_of(lambda: sae.step(X, 5e-4), reps)}


def trajectory_job(B, d, m, k, steps, lr, seed, out_dir):
    """Writes the initial weights and data as raw float32 files and returns the numpy step's losses, so a
    test can check that this anchor computes the same training step as ours."""
    import os

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((B, d), dtype=np.float32)
    sae = NumpySae(d, m, k, seed)
    sae.b_enc += rng.standard_normal(m, dtype=np.float32) * np.float32(0.01)
    for name, arr in [("X", X), ("W_enc", sae.W_enc), ("b_enc", sae.b_enc), ("W_dec", sae.W_dec), ("b_dec", sae.b_dec)]:
        np.ascontiguousarray(arr, dtype=np.float32).tofile(os.path.join(out_dir, name + ".f32"))
    losses = [sae.step(X, lr) for _ in range(steps)]
    return {"losses": losses, "W_dec_sum": float(np.abs(sae.W_dec).sum())}


def main():
    job = json.loads(sys.argv[1])
    kind = job.pop("kind")
    runner = {"encode": encode_job, "step": step_job, "trajectory": trajectory_job}[kind]
    print(json.dumps(runner(**job)))


if __name__ == "__main__":
    main()
