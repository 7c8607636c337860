// Sparse backward: entries (row, latent) grouped by latent with a counting sort, so each task owns a
// band of latents and writes its gradient rows without atomics; deterministic for a given thread count.
#include "backward.h"

#include <algorithm>
#include <cstring>

#include "../common/thread_pool.h"
#include "kernels.h"

namespace cmsae {

void SparseGrads::resize(int d_, int m_) {
  if (d_ != d || m_ != m) {
    d = d_;
    m = m_;
    g_enc.reset(static_cast<size_t>(m) * d);
    g_dec.reset(static_cast<size_t>(m) * d);
    slot.assign(m, -1);
    g_benc.assign(m, 0.f);
    g_bdec.assign(d, 0.f);
  }
  touched.clear();
}

double SparseGrads::sum_squares() const {
  const SaeKernels& K = kernels();
  const long n = static_cast<long>(touched.size()) * d;
  const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), n / 65536 + 1)));
  std::vector<double> part(T, 0.0);
  parallel_for(T, [&](int t) {
    const long b = split_begin(n, T, t), e = split_begin(n, T, t + 1);
    part[t] = K.sumsq(g_enc.data() + b, e - b) + K.sumsq(g_dec.data() + b, e - b);
  });
  double s = K.sumsq(g_benc.data(), m) + K.sumsq(g_bdec.data(), d);
  for (int t = 0; t < T; ++t) s += part[t];
  return s;
}

namespace {

struct Entry {
  int32_t row;
  int32_t pos;  // index into val/extra_dval ([R,k]) for main entries, -1 for AuxK entries
  float val;
};

// Active entries (main codes, then AuxK codes, per row) grouped by latent: a counting sort, stable in row order.
// offsets[j]..offsets[j + 1] are latent j's entries; fills out.slot / out.touched.
struct EntriesByLatent {
  std::vector<int32_t> offsets;
  std::vector<Entry> entries;
};
EntriesByLatent sort_entries_by_latent(const BackwardInput& in, SparseGrads& out) {
  const int m = in.m;
  EntriesByLatent g;
  g.offsets.assign(static_cast<size_t>(m) + 1, 0);
  auto for_each_entry = [&](auto&& fn) {
    for (long r = 0; r < in.R; ++r) {
      for (int s = 0; s < in.k; ++s) {
        const long p = r * in.k + s;
        if (in.val[p] > 0.f) fn(in.idx[p], Entry{static_cast<int32_t>(r), static_cast<int32_t>(p), in.val[p]});
      }
      for (int s = 0; s < in.k_aux; ++s) {
        const long p = r * in.k_aux + s;
        if (in.aux_val[p] > 0.f) fn(in.aux_idx[p], Entry{static_cast<int32_t>(r), -1, in.aux_val[p]});
      }
    }
  };
  for_each_entry([&](int32_t j, const Entry&) { ++g.offsets[j + 1]; });
  for (int j = 0; j < m; ++j) g.offsets[j + 1] += g.offsets[j];
  g.entries.resize(g.offsets[m]);
  {
    std::vector<int32_t> cursor(g.offsets.begin(), g.offsets.end() - 1);
    for_each_entry([&](int32_t j, const Entry& e) { g.entries[cursor[j]++] = e; });
  }
  for (int j = 0; j < m; ++j)
    if (g.offsets[j + 1] > g.offsets[j]) {
      out.slot[j] = static_cast<int32_t>(out.touched.size());
      out.touched.push_back(j);
    }
  return g;
}

// T bands of the touched latents, balanced by entry count: band[t]..band[t + 1] are thread t's.
std::vector<int> entry_bands(const std::vector<int32_t>& offsets, const std::vector<int32_t>& touched, int m, int T) {
  const int n_touched = static_cast<int>(touched.size());
  std::vector<int> band(T + 1, 0);
  const long total = offsets[m];
  int t = 1;
  for (int i = 0; i < n_touched && t < T; ++i) {
    const int32_t j = touched[i];
    while (t < T && offsets[j + 1] >= total * t / T) band[t++] = i + 1;
  }
  while (t < T) band[t++] = n_touched;
  band[T] = n_touched;
  return band;
}

// Gradient rows of the touched latents [i0, i1): dW_dec[j] = sum val G; dpre = G.W_dec[j] (+extra);
// dW_enc[j] = sum dpre x - (sum dpre) b_dec; db_enc[j] = sum dpre; bpart -= db_enc[j] W_enc[j].
void latent_gradient_rows(const BackwardInput& in, const EntriesByLatent& g, int i0, int i1, SparseGrads& out,
                          std::vector<float>& bpart) {
  const SaeKernels& K = kernels();
  const int d = in.d;
  for (int i = i0; i < i1; ++i) {
    const int32_t j = out.touched[i];
    const float* wd = in.W_dec + static_cast<long>(j) * d;
    float* gd = out.g_dec.data() + static_cast<long>(i) * d;
    float* ge = out.g_enc.data() + static_cast<long>(i) * d;
    std::memset(gd, 0, sizeof(float) * d);
    std::memset(ge, 0, sizeof(float) * d);
    float dpre_sum = 0.f;
    for (int32_t e = g.offsets[j]; e < g.offsets[j + 1]; ++e) {
      const Entry& en = g.entries[e];
      if (e + 1 < g.offsets[j + 1]) {  // rows are random: prefetch the next entry's G and x rows
        const Entry& nx = g.entries[e + 1];
        const float* ng = (nx.pos >= 0 ? in.G : in.G_aux) + static_cast<long>(nx.row) * d;
        const float* nxr = in.X + static_cast<long>(nx.row) * d;
        for (int c = 0; c < d; c += 16) {
          __builtin_prefetch(ng + c);
          __builtin_prefetch(nxr + c);
        }
      }
      const float* grow = (en.pos >= 0 ? in.G : in.G_aux) + static_cast<long>(en.row) * d;
      float dval = en.pos >= 0 ? in.dval[en.pos] : K.dot(grow, wd, d);
      if (en.pos >= 0 && in.extra_dval) dval += in.extra_dval[en.pos];
      K.axpy(en.val, grow, gd, d);
      K.axpy(dval, in.X + static_cast<long>(en.row) * d, ge, d);
      dpre_sum += dval;
    }
    K.axpy(-dpre_sum, in.b_dec, ge, d);
    out.g_benc[j] = dpre_sum;
    K.axpy(-dpre_sum, in.W_enc_rows + static_cast<long>(j) * d, bpart.data(), d);
  }
}

// dL/db_dec = sum_rows G + the encoder-path partials, summed in a fixed order (float64).
void bias_dec_gradient(const BackwardInput& in, const std::vector<std::vector<float>>& bdec_partial, SparseGrads& out) {
  const int d = in.d;
  std::fill(out.g_bdec.begin(), out.g_bdec.end(), 0.f);
  const int TR = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), in.R)));
  std::vector<std::vector<double>> colsum(TR, std::vector<double>(d, 0.0));
  parallel_for(TR, [&](int t) {
    std::vector<double>& cs = colsum[t];
    for (long r = split_begin(in.R, TR, t); r < split_begin(in.R, TR, t + 1); ++r) {
      const float* g = in.G + r * d;
      for (int c = 0; c < d; ++c) cs[c] += g[c];
    }
  });
  for (int c = 0; c < d; ++c) {
    double s = 0.0;
    for (int t = 0; t < TR; ++t) s += colsum[t][c];
    for (const std::vector<float>& part : bdec_partial) s += part[c];
    out.g_bdec[c] = static_cast<float>(s);
  }
}

}  // namespace

void sparse_backward(const BackwardInput& in, SparseGrads& out) {
  out.resize(in.d, in.m);
  std::fill(out.slot.begin(), out.slot.end(), -1);
  std::fill(out.g_benc.begin(), out.g_benc.end(), 0.f);
  const EntriesByLatent g = sort_entries_by_latent(in, out);
  const int n_touched = static_cast<int>(out.touched.size());
  const int T = std::max(1, std::min(num_threads(), n_touched));
  const std::vector<int> band = entry_bands(g.offsets, out.touched, in.m, T);
  std::vector<std::vector<float>> bdec_partial(T, std::vector<float>(in.d, 0.f));
  parallel_for(T, [&](int t) { latent_gradient_rows(in, g, band[t], band[t + 1], out, bdec_partial[t]); });
  bias_dec_gradient(in, bdec_partial, out);
}

void project_decoder_grads(const float* W_dec, SparseGrads& g) {
  const SaeKernels& K = kernels();
  const int d = g.d;
  const int n = static_cast<int>(g.touched.size());
  const int T = std::max(1, std::min(num_threads(), n / 64 + 1));
  parallel_for(T, [&](int t) {
    for (long i = split_begin(n, T, t); i < split_begin(n, T, t + 1); ++i) {
      const float* w = W_dec + static_cast<long>(g.touched[i]) * d;
      float* gd = g.g_dec.data() + i * d;
      K.axpy(-K.dot(gd, w, d), w, gd, d);
    }
  });
}

}  // namespace cmsae
