// corr_ij = (n Sxy - Sx Sy) / sqrt((n Sxx - Sx^2)(n Syy - Sy^2)) over the corpus pairs, per image latent band, plus
// fire counts and exact top-N rows per latent (see concept_index.h).
#include "concept_index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../common/errors.h"
#include "../common/thread_pool.h"

namespace cmsae {
namespace {

// Latents by latent: for latent j, rows[offsets[j] .. offsets[j+1]) ascending with their values.
struct LatentLists {
  std::vector<long> offsets;
  std::vector<int32_t> rows;
  std::vector<float> values;
};

// Checks every active slot (index in range, finite value, no latent twice in a row) and builds the latent lists,
// rows ascending: per-chunk counts, a prefix over (latent, chunk), then each chunk fills its own positions.
LatentLists latent_lists(const CodeRows& c, long m, const char* side) {
  const int T = std::max(1, std::min<int>(num_threads(), static_cast<int>(c.rows / 4096 + 1)));
  std::vector<long> counts(static_cast<size_t>(T) * m, 0);
  std::vector<long> bad_row(T, -1);
  std::vector<std::string> bad_msg(T);
  parallel_for(T, [&](int t) {
    std::vector<long> stamp(m, -1);
    long* cnt = counts.data() + static_cast<size_t>(t) * m;
    for (long r = split_begin(c.rows, T, t); r < split_begin(c.rows, T, t + 1); ++r)
      for (int s = 0; s < c.k; ++s) {
        const float v = c.val[r * c.k + s];
        const int32_t j = c.idx[r * c.k + s];
        std::string why;
        if (!std::isfinite(v)) why = "ERR_NONFINITE:holds a non-finite value";
        else if (v == 0.f) continue;
        else if (j < 0 || j >= m) why = "ERR_RANGE:names latent " + std::to_string(j) + ", outside [0, " + std::to_string(m) + ")";
        else if (stamp[j] == r) why = "ERR_ARG:names latent " + std::to_string(j) + " twice";
        if (!why.empty()) {
          bad_row[t] = r;
          bad_msg[t] = why;
          return;
        }
        stamp[j] = r;
        ++cnt[j];
      }
  });
  for (int t = 0; t < T; ++t)
    if (bad_row[t] >= 0) {
      const std::string& w = bad_msg[t];
      const size_t colon = w.find(':');
      fail(w.substr(0, colon).c_str(), std::string(side) + " codes: row " + std::to_string(bad_row[t]) + " " + w.substr(colon + 1));
    }
  LatentLists L;
  L.offsets.assign(m + 1, 0);
  long pos = 0;
  for (long j = 0; j < m; ++j) {
    L.offsets[j] = pos;
    for (int t = 0; t < T; ++t) {
      const long n = counts[static_cast<size_t>(t) * m + j];
      counts[static_cast<size_t>(t) * m + j] = pos;  // this chunk's first position for latent j
      pos += n;
    }
  }
  L.offsets[m] = pos;
  L.rows.resize(pos);
  L.values.resize(pos);
  parallel_for(T, [&](int t) {
    long* at = counts.data() + static_cast<size_t>(t) * m;
    for (long r = split_begin(c.rows, T, t); r < split_begin(c.rows, T, t + 1); ++r)
      for (int s = 0; s < c.k; ++s) {
        const float v = c.val[r * c.k + s];
        if (v == 0.f) continue;
        const long p = at[c.idx[r * c.k + s]]++;
        L.rows[p] = static_cast<int32_t>(r);
        L.values[p] = v;
      }
  });
  return L;
}

// Fire counts and the top-N rows of every latent (value descending, row ascending).
void top_rows(const LatentLists& L, long m, int N, int32_t* fire, int32_t* rows_out, float* values_out) {
  const int tasks = static_cast<int>(std::min<long>(m, 256));
  parallel_for(tasks, [&](int task) {
    std::vector<std::pair<float, int32_t>> buf;
    for (long j = split_begin(m, tasks, task); j < split_begin(m, tasks, task + 1); ++j) {
      const long b = L.offsets[j], e = L.offsets[j + 1];
      fire[j] = static_cast<int32_t>(e - b);
      buf.clear();
      for (long p = b; p < e; ++p) buf.emplace_back(L.values[p], L.rows[p]);
      auto better = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& c) {
        return a.first > c.first || (a.first == c.first && a.second < c.second);
      };
      const long keep = std::min<long>(N, static_cast<long>(buf.size()));
      if (static_cast<long>(buf.size()) > keep) std::nth_element(buf.begin(), buf.begin() + keep, buf.end(), better);
      std::sort(buf.begin(), buf.begin() + keep, better);
      for (int p = 0; p < N; ++p) {
        rows_out[j * N + p] = p < keep ? buf[p].second : -1;
        values_out[j * N + p] = p < keep ? buf[p].first : 0.f;
      }
    }
  });
}

// A best-first list of at most P (correlation, index) entries; ties by ascending index.
inline bool better(double c, int32_t i, double c2, int32_t i2) { return c > c2 || (c == c2 && i < i2); }
inline void offer(double* cs, int32_t* is, int P, int& size, double c, int32_t i) {
  if (size == P && !better(c, i, cs[P - 1], is[P - 1])) return;
  int p = size < P ? size++ : P - 1;
  while (p > 0 && better(c, i, cs[p - 1], is[p - 1])) {
    cs[p] = cs[p - 1];
    is[p] = is[p - 1];
    --p;
  }
  cs[p] = c;
  is[p] = i;
}

}  // namespace

void concept_index(const CodeRows& image, const CodeRows& text, const int32_t* image_of_text, long m, int top_n, int partners,
                   const ConceptIndexOutput& out) {
  require(m >= 1 && top_n >= 1 && partners >= 1, "ERR_ARG", "concept_index needs m, top_n and partners >= 1");
  require(image.rows >= 1 && text.rows >= 1 && image.k >= 1 && text.k >= 1, "ERR_SHAPE", "concept_index needs at least one image row and one text row");
  if (!image_of_text)
    require(image.rows == text.rows, "ERR_SHAPE", std::to_string(image.rows) + " image rows and " + std::to_string(text.rows) + " text rows, and no imageOfText");
  const long n = text.rows, nI = image.rows;
  auto img_of = [&](long t) -> long { return image_of_text ? image_of_text[t] : t; };
  for (long t = 0; t < n; ++t)
    if (img_of(t) < 0 || img_of(t) >= nI)
      fail("ERR_RANGE", "imageOfText[" + std::to_string(t) + "] = " + std::to_string(img_of(t)) + " is outside [0, " + std::to_string(nI) + ")");

  const LatentLists LI = latent_lists(image, m, "image");
  {
    const LatentLists LT = latent_lists(text, m, "text");
    top_rows(LT, m, top_n, out.fire_text, out.top_text_rows, out.top_text_values);
  }
  top_rows(LI, m, top_n, out.fire_image, out.top_image_rows, out.top_image_values);

  // First and second moments over the pairs, t ascending.
  std::vector<double> sx(m, 0.0), sxx(m, 0.0), sy(m, 0.0), syy(m, 0.0);
  // s1[j] += v, s2[j] += v^2 over the active slots of one row of codes.
  const auto add_row = [](const CodeRows& c, long r, std::vector<double>& s1, std::vector<double>& s2) {
    for (int s = 0; s < c.k; ++s) {
      const float v = c.val[r * c.k + s];
      if (v == 0.f) continue;
      const int32_t j = c.idx[r * c.k + s];
      s1[j] += v;
      s2[j] += static_cast<double>(v) * v;
    }
  };
  for (long t = 0; t < n; ++t) {
    add_row(image, img_of(t), sx, sxx);
    add_row(text, t, sy, syy);
  }
  const double nd = static_cast<double>(n);
  std::vector<double> vx(m), vy(m);
  for (long j = 0; j < m; ++j) {
    vx[j] = nd * sxx[j] - sx[j] * sx[j];
    vy[j] = nd * syy[j] - sy[j] * sy[j];
  }
  // The texts of each image row, ascending.
  std::vector<long> toff(nI + 1, 0);
  std::vector<int32_t> texts(n);
  for (long t = 0; t < n; ++t) ++toff[img_of(t) + 1];
  for (long r = 0; r < nI; ++r) toff[r + 1] += toff[r];
  {
    std::vector<long> at(toff.begin(), toff.end() - 1);
    for (long t = 0; t < n; ++t) texts[at[img_of(t)]++] = static_cast<int32_t>(t);
  }

  const int P = partners;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (long p = 0; p < m * P; ++p) {
    out.image_partners[p] = -1;
    out.image_partner_corr[p] = nan;
    out.text_partners[p] = -1;
    out.text_partner_corr[p] = nan;
  }
  // Per worker: one band row of co-moments and its own best-P list per text latent (merged below).
  const int W = num_threads();
  std::vector<std::vector<double>> col_c(W, std::vector<double>(static_cast<size_t>(m) * P, nan));
  std::vector<std::vector<int32_t>> col_i(W, std::vector<int32_t>(static_cast<size_t>(m) * P, -1));
  std::vector<std::vector<int>> col_n(W, std::vector<int>(m, 0));
  const int tasks = static_cast<int>(std::min<long>(m, 64L * W));
  parallel_for_workers(tasks, [&](int task, int w) {
    std::vector<double> acc(m);
    double* cc = col_c[w].data();
    int32_t* ci = col_i[w].data();
    int* cn = col_n[w].data();
    for (long i = split_begin(m, tasks, task); i < split_begin(m, tasks, task + 1); ++i) {
      out.matched[i] = nan;
      if (!(vx[i] > 0)) continue;
      std::fill(acc.begin(), acc.end(), 0.0);
      const long pe = LI.offsets[i + 1];
      for (long p = LI.offsets[i]; p < pe; ++p) {
        if (p + 8 < pe) {  // the text rows a few entries ahead: they are scattered over the corpus
          const long ahead = texts[toff[LI.rows[p + 8]]];
#if defined(__GNUC__)
          __builtin_prefetch(text.idx + ahead * text.k);
          __builtin_prefetch(text.val + ahead * text.k);
#endif
        }
        const long r = LI.rows[p];
        const double x = LI.values[p];
        for (long q = toff[r]; q < toff[r + 1]; ++q) {
          const long t = texts[q];
          const int32_t* ti = text.idx + t * text.k;
          const float* tv = text.val + t * text.k;
          for (int s = 0; s < text.k; ++s)
            if (tv[s] != 0.f) acc[ti[s]] += x * static_cast<double>(tv[s]);
        }
      }
      int rn = 0;
      double* rc = out.image_partner_corr + i * P;
      int32_t* ri = out.image_partners + i * P;
      for (long j = 0; j < m; ++j) {
        if (!(vy[j] > 0)) continue;
        const double c = std::min(1.0, std::max(-1.0, (nd * acc[j] - sx[i] * sy[j]) / std::sqrt(vx[i] * vy[j])));
        if (j == i) out.matched[i] = c;
        offer(rc, ri, P, rn, c, static_cast<int32_t>(j));
        offer(cc + j * P, ci + j * P, P, cn[j], c, static_cast<int32_t>(i));
      }
    }
  });
  // Each text latent's partners: the best P of the workers' lists.
  parallel_for(static_cast<int>(std::min<long>(m, 64)), [&](int task) {
    const int tk = static_cast<int>(std::min<long>(m, 64));
    for (long j = split_begin(m, tk, task); j < split_begin(m, tk, task + 1); ++j) {
      if (!(vy[j] > 0)) continue;
      int size = 0;
      for (int w = 0; w < W; ++w)
        for (int p = 0; p < col_n[w][j]; ++p)
          offer(out.text_partner_corr + j * P, out.text_partners + j * P, P, size, col_c[w][j * P + p], col_i[w][j * P + p]);
    }
  });
}

}  // namespace cmsae
