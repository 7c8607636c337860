#include "synth.h"

#include <algorithm>
#include <cmath>

#include "../common/errors.h"
#include "../common/thread_pool.h"

namespace cmsae {
namespace {

// splitmix64: seeds the per-stream generators.
uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// xoshiro256**: uniform doubles in [0, 1), Exp(1), N(0, 1) (Marsaglia polar).
struct Rng {
  uint64_t s[4];
  bool has_spare = false;
  double spare = 0;
  explicit Rng(uint64_t seed) {
    for (auto& w : s) w = splitmix(seed);
  }
  uint64_t next() {
    const uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double exponential() { return -std::log1p(-uniform()); }
  double normal() {
    if (has_spare) {
      has_spare = false;
      return spare;
    }
    double u, v, q;
    do {
      u = 2 * uniform() - 1;
      v = 2 * uniform() - 1;
      q = u * u + v * v;
    } while (q >= 1 || q == 0);
    const double f = std::sqrt(-2 * std::log(q) / q);
    spare = v * f;
    has_spare = true;
    return u * f;
  }
};

uint64_t stream_seed(uint64_t seed, uint64_t stream) {
  uint64_t s = seed ^ (stream * 0xD1B54A32D192ED03ull);
  return splitmix(s);
}

void normalize_rows(float* w, int n, int d) {
  for (int i = 0; i < n; ++i) {
    double s = 0;
    for (int c = 0; c < d; ++c) s += static_cast<double>(w[i * d + c]) * w[i * d + c];
    const double inv = 1.0 / std::max(std::sqrt(s), 1e-12);
    for (int c = 0; c < d; ++c) w[i * d + c] = static_cast<float>(w[i * d + c] * inv);
  }
}

// G = W W^T (off-diagonal), rows split over threads; returns max off-diagonal.
double gram(const float* W, int n, int d, std::vector<double>& G) {
  G.assign(static_cast<size_t>(n) * n, 0.0);
  const int T = std::max(1, std::min(num_threads(), n));
  std::vector<double> mx(T, -1e300);
  parallel_for(T, [&](int t) {
    for (long i = split_begin(n, T, t); i < split_begin(n, T, t + 1); ++i)
      for (int j = 0; j < n; ++j) {
        if (j == i) continue;
        double s = 0;
        for (int c = 0; c < d; ++c) s += static_cast<double>(W[i * d + c]) * W[j * d + c];
        G[static_cast<size_t>(i) * n + j] = s;
        mx[t] = std::max(mx[t], s);
      }
  });
  return *std::max_element(mx.begin(), mx.end());
}

}  // namespace

int bounded_dictionary(int d, int n, double delta, uint64_t seed, int max_iters, float* W, double* max_dot) {
  require(d >= 1 && n >= 1, "ERR_ARG", "dictionary needs d, n >= 1");
  Rng rng(stream_seed(seed, 0xD1C7));
  for (long p = 0; p < static_cast<long>(n) * d; ++p) W[p] = static_cast<float>(rng.normal());
  normalize_rows(W, n, d);
  const double t = delta - 1e-3, lneg = 1e-3, lr = 0.05, tol = 1e-4;
  std::vector<double> G;
  std::vector<float> next(static_cast<size_t>(n) * d);
  int steps = 0;
  double mx = gram(W, n, d, G);
  while (steps < max_iters) {
    // D_ij = 2 (G_ij - t)[G_ij > t] + 2 lneg G_ij [G_ij > 0] (G symmetric, zero diagonal); W <- norm(W - lr 2 D W)
    const int T = std::max(1, std::min(num_threads(), n));
    parallel_for(T, [&](int th) {
      std::vector<double> acc(d);
      for (long i = split_begin(n, T, th); i < split_begin(n, T, th + 1); ++i) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int j = 0; j < n; ++j) {
          const double g = G[static_cast<size_t>(i) * n + j];
          if (j == i || g <= 0) continue;
          const double D = (g > t ? 2 * (g - t) : 0.0) + 2 * lneg * g;
          for (int c = 0; c < d; ++c) acc[c] += D * W[j * d + c];
        }
        for (int c = 0; c < d; ++c) next[i * d + c] = static_cast<float>(W[i * d + c] - lr * 2 * acc[c]);
      }
    });
    std::copy(next.begin(), next.end(), W);
    normalize_rows(W, n, d);
    ++steps;
    mx = gram(W, n, d, G);
    if (mx <= delta + tol) break;
  }
  if (max_dot) *max_dot = mx;
  return steps;
}

void aligned_partner(const float* phi, int n, int d, double alpha, uint64_t seed, float* psi) {
  require(alpha >= -1 && alpha <= 1, "ERR_ARG", "alpha must be in [-1, 1]");
  require(d >= 2 || alpha == 1 || alpha == -1, "ERR_ARG", "a partner at cos alpha needs d >= 2");
  const double beta = std::sqrt(std::max(0.0, 1 - alpha * alpha));
  for (int i = 0; i < n; ++i) {
    Rng rng(stream_seed(seed, 0x9517 + static_cast<uint64_t>(i)));
    const float* f = phi + static_cast<size_t>(i) * d;
    std::vector<double> u(d);
    double nu = 0;
    do {
      double dot = 0;
      for (int c = 0; c < d; ++c) dot += (u[c] = rng.normal()) * f[c];
      nu = 0;
      for (int c = 0; c < d; ++c) nu += (u[c] -= dot * f[c]) * u[c];
    } while (nu < 1e-12);
    nu = std::sqrt(nu);
    double s = 0;
    std::vector<double> p(d);
    for (int c = 0; c < d; ++c) s += (p[c] = alpha * f[c] + beta * u[c] / nu) * p[c];
    for (int c = 0; c < d; ++c) psi[static_cast<size_t>(i) * d + c] = static_cast<float>(p[c] / std::sqrt(s));
  }
}

void sample_pairs(const SynthSampleSpec& s, long N, uint64_t seed, float* x, float* y) {
  require(s.d >= 1 && s.nS >= 0 && s.nI >= 0 && s.nT >= 0 && N >= 0, "ERR_ARG", "bad synthetic sizes");
  require(s.p_active > 0 && s.p_active <= 1, "ERR_ARG", "p_active (1 - sparsity) must be in (0, 1]");
  const int d = s.d;
  const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), N / 256)));
  parallel_for(T, [&](int t) {
    std::vector<int> act;
    std::vector<double> mag;
    for (long r = split_begin(N, T, t); r < split_begin(N, T, t + 1); ++r) {
      Rng rng(stream_seed(seed, static_cast<uint64_t>(r)));
      float* xr = x + r * d;
      float* yr = y + r * d;
      std::fill(xr, xr + d, 0.f);
      std::fill(yr, yr + d, 0.f);
      // Bernoulli support with at least one active concept per block.
      auto support = [&](int n) {
        act.clear();
        for (int j = 0; j < n; ++j)
          if (rng.uniform() < s.p_active) act.push_back(j);
        if (act.empty() && n > 0) act.push_back(static_cast<int>(rng.uniform() * n) % n);
      };
      auto add = [&](float* out, const float* atoms, int j, double g) {
        const float* a = atoms + static_cast<size_t>(j) * d;
        for (int c = 0; c < d; ++c) out[c] += static_cast<float>(g * a[c]);
      };
      support(s.nI);
      for (int j : act) add(xr, s.phi_image, j, rng.exponential());
      support(s.nT);
      for (int j : act) add(yr, s.psi_text, j, rng.exponential());
      support(s.nS);
      for (int j : act) {
        const double gx = rng.exponential();
        const double gy = s.identical_shared ? gx : rng.exponential();
        add(xr, s.phi_shared, j, gx);
        add(yr, s.psi_shared, j, gy);
      }
      for (int c = 0; c < d; ++c) xr[c] += static_cast<float>(s.noise * rng.normal());
      for (int c = 0; c < d; ++c) yr[c] += static_cast<float>(s.noise * rng.normal());
      if (s.l2_normalize)
        for (float* row : {xr, yr}) {
          double q = 0;
          for (int c = 0; c < d; ++c) q += static_cast<double>(row[c]) * row[c];
          const double inv = 1.0 / (std::sqrt(q) + 1e-12);
          for (int c = 0; c < d; ++c) row[c] = static_cast<float>(row[c] * inv);
        }
    }
  });
}

void argmax_cosine(const float* W, int m, const float* G, int n, int d, int32_t* idx, float* cosv) {
  std::vector<double> inv(m);
  for (int j = 0; j < m; ++j) {
    double s = 0;
    for (int c = 0; c < d; ++c) s += static_cast<double>(W[static_cast<size_t>(j) * d + c]) * W[static_cast<size_t>(j) * d + c];
    inv[j] = s > 0 ? 1.0 / std::sqrt(s) : 0.0;
  }
  const int T = std::max(1, std::min(num_threads(), n));
  parallel_for(T, [&](int t) {
    for (long i = split_begin(n, T, t); i < split_begin(n, T, t + 1); ++i) {
      const float* g = G + i * d;
      double gn = 0;
      for (int c = 0; c < d; ++c) gn += static_cast<double>(g[c]) * g[c];
      const double ginv = gn > 0 ? 1.0 / std::sqrt(gn) : 0.0;
      int best = 0;
      double bc = -2;
      for (int j = 0; j < m; ++j) {
        const float* w = W + static_cast<size_t>(j) * d;
        float s = 0;
        for (int c = 0; c < d; ++c) s += w[c] * g[c];
        const double cs = s * inv[j] * ginv;
        if (cs > bc) {
          bc = cs;
          best = j;
        }
      }
      idx[i] = best;
      cosv[i] = static_cast<float>(bc);
    }
  });
}

int bounded_paired_dictionary(int d, int nI, int nS, int nT, double alpha, double delta, uint64_t seed, int max_iters,
                              float* phi_image, float* phi_shared, float* psi_shared, float* psi_text, double* max_abs) {
  require(d >= 2 && nI >= 0 && nS >= 0 && nT >= 0, "ERR_ARG", "bad dictionary sizes");
  require(alpha >= 0 && alpha <= 1, "ERR_ARG", "alpha must be in [0, 1]");
  const int nA = nI + nS;             // image atoms: [phi_I; phi_S]
  const int nB = nS + nT;             // text free directions: [u_S; psi_T]
  const int N = nA + nB;              // all atoms: [phi_I; phi_S; psi_S; psi_T]
  const double beta = std::sqrt(std::max(0.0, 1 - alpha * alpha));
  Rng rng(stream_seed(seed, 0xC2055));
  std::vector<float> A(static_cast<size_t>(nA) * d), U(static_cast<size_t>(nB) * d), X(static_cast<size_t>(N) * d);
  for (float& v : A) v = static_cast<float>(rng.normal());
  for (float& v : U) v = static_cast<float>(rng.normal());
  normalize_rows(A.data(), nA, d);
  // u_i orthogonal to phi_i (shared), unit; then the atoms X.
  auto assemble = [&]() {
    for (int i = 0; i < nS; ++i) {
      float* u = U.data() + static_cast<size_t>(i) * d;
      const float* f = A.data() + static_cast<size_t>(nI + i) * d;
      double dot = 0;
      for (int c = 0; c < d; ++c) dot += static_cast<double>(u[c]) * f[c];
      for (int c = 0; c < d; ++c) u[c] = static_cast<float>(u[c] - dot * f[c]);
    }
    normalize_rows(U.data(), nB, d);
    std::copy(A.begin(), A.end(), X.begin());
    for (int i = 0; i < nS; ++i)
      for (int c = 0; c < d; ++c)
        X[static_cast<size_t>(nA + i) * d + c] = static_cast<float>(alpha * A[static_cast<size_t>(nI + i) * d + c] + beta * U[static_cast<size_t>(i) * d + c]);
    normalize_rows(X.data() + static_cast<size_t>(nA) * d, nS, d);
    std::copy(U.begin() + static_cast<size_t>(nS) * d, U.end(), X.begin() + static_cast<size_t>(nA + nS) * d);
  };
  // Atom p and q are the same concept's two sides (excluded from the bound).
  auto partners = [&](int p, int q) {
    return (p >= nI && p < nA && q == p - nI + nA) || (q >= nI && q < nA && p == q - nI + nA);
  };
  const double t = delta - 1e-3, lr = 0.05, tol = 1e-4;
  std::vector<double> grad(static_cast<size_t>(N) * d);
  const int T = std::max(1, std::min(num_threads(), N));
  int steps = 0;
  double mx = 0;
  for (;;) {
    assemble();
    std::vector<double> tmx(T, 0.0);
    parallel_for(T, [&](int th) {
      std::vector<double> g(d);
      for (long p = split_begin(N, T, th); p < split_begin(N, T, th + 1); ++p) {
        std::fill(g.begin(), g.end(), 0.0);
        const float* xp = X.data() + p * d;
        for (int q = 0; q < N; ++q) {
          if (q == p || partners(static_cast<int>(p), q)) continue;
          const float* xq = X.data() + static_cast<size_t>(q) * d;
          double s = 0;
          for (int c = 0; c < d; ++c) s += static_cast<double>(xp[c]) * xq[c];
          tmx[th] = std::max(tmx[th], std::fabs(s));
          if (std::fabs(s) <= t) continue;
          const double D = 2 * (std::fabs(s) - t) * (s > 0 ? 1 : -1);
          for (int c = 0; c < d; ++c) g[c] += D * xq[c];
        }
        std::copy(g.begin(), g.end(), grad.begin() + p * d);
      }
    });
    mx = *std::max_element(tmx.begin(), tmx.end());
    if ((steps > 0 && mx <= delta + tol) || steps >= max_iters) break;
    // Chain rule through psi_S = alpha phi_S + beta u_S: phi gets alpha * g_psi, u gets beta * g_psi.
    for (int p = 0; p < nA; ++p)
      for (int c = 0; c < d; ++c) {
        double g = grad[static_cast<size_t>(p) * d + c];
        if (p >= nI) g += alpha * grad[static_cast<size_t>(nA + p - nI) * d + c];
        A[static_cast<size_t>(p) * d + c] = static_cast<float>(A[static_cast<size_t>(p) * d + c] - lr * g);
      }
    for (int p = 0; p < nB; ++p)
      for (int c = 0; c < d; ++c) {
        const double g = p < nS ? beta * grad[static_cast<size_t>(nA + p) * d + c] : grad[static_cast<size_t>(nA + p) * d + c];
        U[static_cast<size_t>(p) * d + c] = static_cast<float>(U[static_cast<size_t>(p) * d + c] - lr * g);
      }
    normalize_rows(A.data(), nA, d);
    ++steps;
  }
  std::copy(X.begin(), X.begin() + static_cast<size_t>(nI) * d, phi_image);
  std::copy(X.begin() + static_cast<size_t>(nI) * d, X.begin() + static_cast<size_t>(nA) * d, phi_shared);
  std::copy(X.begin() + static_cast<size_t>(nA) * d, X.begin() + static_cast<size_t>(nA + nS) * d, psi_shared);
  std::copy(X.begin() + static_cast<size_t>(nA + nS) * d, X.end(), psi_text);
  if (max_abs) *max_abs = mx;
  return steps;
}

}  // namespace cmsae
