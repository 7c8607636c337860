"""Anchors for bench/compare/evaluation.ts: the reference's retrieval (dense L2-normalized codes, float32 GEMM,
pessimistic ranks), the same with scipy.sparse, and the monosemanticity score with numpy.
  python3 evaluation_anchor.py codes BASE N_IMAGES CAPS_PER_IMAGE M K SEED   -> writes BASE.{ii,iv,ti,tv,gt}
  python3 evaluation_anchor.py dense BASE N_IMAGES CAPS_PER_IMAGE M K        -> {"seconds", "i2t": [r1,r5,r10], "t2i": [...]}
  python3 evaluation_anchor.py sparse BASE N_IMAGES CAPS_PER_IMAGE M K
  python3 evaluation_anchor.py ms BASE N M K DEXT SEED                        -> writes BASE.{mi,mv,me}, then times numpy MS
"""
import json, sys, time
import numpy as np


def load(base, n_img, cpi, m, k):
    ii = np.fromfile(base + '.ii', dtype=np.int32).reshape(n_img, k)
    iv = np.fromfile(base + '.iv', dtype=np.float32).reshape(n_img, k)
    ti = np.fromfile(base + '.ti', dtype=np.int32).reshape(n_img * cpi, k)
    tv = np.fromfile(base + '.tv', dtype=np.float32).reshape(n_img * cpi, k)
    return ii, iv, ti, tv


def dense(idx, val, m):
    z = np.zeros((idx.shape[0], m), dtype=np.float32)
    np.put_along_axis(z, idx, val, axis=1)
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return z


def recalls(ranks):
    return [float(np.mean(ranks < k)) for k in (1, 5, 10)]


def main():
    cmd, base = sys.argv[1], sys.argv[2]
    if cmd == 'codes':
        n_img, cpi, m, k, seed = map(int, sys.argv[3:8])
        rng = np.random.default_rng(seed)
        ii = np.stack([rng.choice(m, k, replace=False) for _ in range(n_img)]).astype(np.int32)
        iv = rng.exponential(1.0, (n_img, k)).astype(np.float32)
        # Each caption keeps half of its image's latents (jittered values) and draws the rest at random.
        ti = np.repeat(ii, cpi, axis=0).copy()
        tv = (np.repeat(iv, cpi, axis=0) * rng.uniform(0.5, 1.5, (n_img * cpi, k))).astype(np.float32)
        for r in range(n_img * cpi):
            keep = set(ti[r, : k // 2].tolist())
            fresh = [j for j in rng.choice(m, 2 * k, replace=False) if j not in keep][: k - k // 2]
            ti[r, k // 2:] = fresh
        for name, a in (('ii', ii), ('iv', iv), ('ti', ti), ('tv', tv)):
            a.tofile(base + '.' + name)
        return
    if cmd in ('dense', 'sparse'):
        n_img, cpi, m, k = map(int, sys.argv[3:7])
        ii, iv, ti, tv = load(base, n_img, cpi, m, k)
        gt = np.repeat(np.arange(n_img), cpi)
        t0 = time.perf_counter()
        if cmd == 'dense':
            zi, zt = dense(ii, iv, m), dense(ti, tv, m)
            t2i_rank = np.empty(len(gt), dtype=np.int64)
            best = np.full(n_img, -np.inf, dtype=np.float32)
            chunk = 5000
            s_all = []
            for q in range(0, len(gt), chunk):
                s = zt[q:q + chunk] @ zi.T                       # captions x images
                g = s[np.arange(s.shape[0]), gt[q:q + chunk]]
                t2i_rank[q:q + chunk] = (s >= g[:, None]).sum(1) - 1
                np.maximum.at(best, gt[q:q + chunk], g)
                s_all.append(s)
            S = np.concatenate(s_all)                            # captions x images
            i2t_rank = (S >= best[None, :]).sum(0) - 1
        else:
            import scipy.sparse as sp
            def csr(idx, val):
                n = idx.shape[0]
                z = sp.csr_matrix((val.ravel(), idx.ravel(), np.arange(0, n * k + 1, k)), shape=(n, m), dtype=np.float64)
                nrm = np.sqrt(np.asarray(z.multiply(z).sum(1)).ravel())
                return sp.diags(1 / np.maximum(nrm, 1e-12)) @ z
            zi, zt = csr(ii, iv), csr(ti, tv)
            S = (zt @ zi.T).toarray()                            # exact float64 scores
            g = S[np.arange(len(gt)), gt]
            t2i_rank = (S >= g[:, None]).sum(1) - 1
            best = np.full(n_img, -np.inf)
            np.maximum.at(best, gt, g)
            i2t_rank = (S >= best[None, :]).sum(0) - 1
        sec = time.perf_counter() - t0
        print(json.dumps({'seconds': sec, 'i2t': recalls(i2t_rank), 't2i': recalls(t2i_rank)}))
        return
    if cmd == 'ms':
        n, m, k, dext, seed = map(int, sys.argv[3:8])
        rng = np.random.default_rng(seed)
        idx = np.stack([rng.choice(m, k, replace=False) for _ in range(n)]).astype(np.int32)
        val = rng.exponential(1.0, (n, k)).astype(np.float32)
        E = rng.standard_normal((n, dext)).astype(np.float32)
        idx.tofile(base + '.mi'); val.tofile(base + '.mv'); E.tofile(base + '.me')
        t0 = time.perf_counter()
        # The reference (ms.py): dense activations per latent, min-max normalized, E (E^T a) without forming S.
        A = np.zeros((n, m), dtype=np.float32)
        np.put_along_axis(A, idx, val, axis=1)
        En = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
        lo, hi = A.min(0), A.max(0)
        At = (A - lo) / np.maximum(hi - lo, 1e-12)
        U = En.T @ At                                            # dext x m
        quad = (U * U).sum(0)
        s1, s2 = At.sum(0), (At * At).sum(0)
        den = s1 * s1 - s2
        ms = np.where(den > 1e-12, (quad - s2) / np.where(den > 1e-12, den, 1), 0.0)
        fires = (A > 0).sum(0)
        sec = time.perf_counter() - t0
        print(json.dumps({'seconds': sec, 'mean': float(ms[fires >= 2].mean()), 'scored': int((fires >= 2).sum())}))
        return
    raise SystemExit('unknown command ' + cmd)


main()
