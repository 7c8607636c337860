// The SAE's state in the external (SAELens) layout (external_layout.h).
#include "external_layout.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "../common/errors.h"
#include "../common/validate.h"

namespace cmsae {

const char* const kMomentNames[4][2] = {{"W_enc.exp_avg", "W_enc.exp_avg_sq"},
                                        {"b_enc.exp_avg", "b_enc.exp_avg_sq"},
                                        {"W_dec.exp_avg", "W_dec.exp_avg_sq"},
                                        {"b_dec.exp_avg", "b_dec.exp_avg_sq"}};

namespace {

// Largest count a float64 holds exactly (fires, samples, steps).
constexpr double kMaxCount = 9007199254740992.0;

// dst[c * src_rows + r] = src[r * src_cols + c]: [m, d] latent-major <-> SAELens [d, m], in cache blocks.
void transpose(const float* src, long src_rows, long src_cols, float* dst) {
  constexpr long B = 32;
  for (long r0 = 0; r0 < src_rows; r0 += B)
    for (long c0 = 0; c0 < src_cols; c0 += B)
      for (long r = r0; r < std::min(src_rows, r0 + B); ++r)
        for (long c = c0; c < std::min(src_cols, c0 + B); ++c) dst[c * src_rows + r] = src[r * src_cols + c];
}

// Finiteness of a flat array (checked in row-sized pieces: check_finite takes an int column count).
void check_finite_all(const float* p, size_t n, const char* name) {
  constexpr size_t kPiece = size_t{1} << 30;
  for (size_t off = 0; off < n; off += kPiece) check_finite(p + off, 1, static_cast<int>(std::min(kPiece, n - off)), name);
}

void require_count(double v, const std::string& what) {
  if (!(v >= 0 && v <= kMaxCount && v == std::floor(v)))
    fail("ERR_RANGE", what + " = " + std::to_string(v) + " is not a count (a whole number >= 0): corrupt training state?");
}

}  // namespace

void read_params(const SaeModel& m, const ExternalParams& out) {
  const size_t d = m.d(), M = m.m();
  transpose(m.W_enc_rows(), M, d, out.W_enc);
  std::memcpy(out.b_enc, m.b_enc(), sizeof(float) * M);
  std::memcpy(out.W_dec, m.W_dec(), sizeof(float) * d * M);
  std::memcpy(out.b_dec, m.b_dec(), sizeof(float) * d);
}

void write_params(SaeModel& m, const ExternalParams& in) {
  const size_t d = m.d(), M = m.m();
  check_finite_all(in.W_enc, d * M, "W_enc");
  check_finite_all(in.b_enc, M, "b_enc");
  check_finite_all(in.W_dec, d * M, "W_dec");
  check_finite_all(in.b_dec, d, "b_dec");
  transpose(in.W_enc, d, M, m.W_enc_rows());
  std::memcpy(m.b_enc(), in.b_enc, sizeof(float) * M);
  std::memcpy(m.W_dec(), in.W_dec, sizeof(float) * d * M);
  std::memcpy(m.b_dec(), in.b_dec, sizeof(float) * d);
}

void read_dense_grads(const SaeModel& m, const ExternalParams& out) {
  const size_t d = m.d(), M = m.m();
  const SparseGrads& g = m.grads();
  if (g.d != m.d()) fail("ERR_STATE", "no gradients yet: call computeGradients first");
  std::fill(out.W_enc, out.W_enc + d * M, 0.f);
  std::fill(out.W_dec, out.W_dec + d * M, 0.f);
  for (size_t i = 0; i < g.touched.size(); ++i) {
    const size_t j = g.touched[i];
    for (size_t c = 0; c < d; ++c) out.W_enc[c * M + j] = g.g_enc[i * d + c];
    std::memcpy(out.W_dec + j * d, g.g_dec.data() + i * d, sizeof(float) * d);
  }
  std::memcpy(out.b_enc, g.g_benc.data(), sizeof(float) * M);
  std::memcpy(out.b_dec, g.g_bdec.data(), sizeof(float) * d);
}

StateScalars read_state(const SaeModel& m, const ExternalState& out) {
  const size_t d = m.d(), M = m.m();
  for (int p = 0; p < 4; ++p)
    for (int q = 0; q < 2; ++q) {
      const std::vector<float>& s = m.adam_state(p, q);
      if (p == 0) transpose(s.data(), M, d, out.moments[p][q]);
      else std::memcpy(out.moments[p][q], s.data(), sizeof(float) * s.size());
    }
  const std::vector<double>& fc = m.fire_counts();
  const std::vector<long long>& sf = m.since_fired();
  for (size_t j = 0; j < M; ++j) {
    out.fires[j] = fc[j];
    out.since[j] = static_cast<double>(sf[j]);
  }
  StateScalars s;
  s.step = static_cast<double>(m.step_count());
  s.samples_seen = static_cast<double>(m.samples_seen());
  s.threshold = m.threshold();
  s.threshold_ready = m.threshold_ready();
  s.b_dec_mean_pending = m.b_dec_mean_init_pending();
  return s;
}

void write_state(SaeModel& m, const ExternalState& in, const StateScalars& sc) {
  const size_t d = m.d(), M = m.m();
  const SaeModel& cm = m;  // const reads: checking marks nothing stale
  for (int i = 0; i < 8; ++i) check_finite_all(in.moments[i / 2][i % 2], cm.adam_state(i / 2, i % 2).size(), kMomentNames[i / 2][i % 2]);
  for (int p = 0; p < 4; ++p) {
    const float* v = in.moments[p][1];
    const size_t len = cm.adam_state(p, 1).size();
    for (size_t q = 0; q < len; ++q)
      if (!(v[q] >= 0.f))
        fail("ERR_RANGE", std::string(kMomentNames[p][1]) + "[" + std::to_string(q) + "] = " + std::to_string(v[q]) +
                              " is negative: a second moment is a running mean of squares (corrupt training state?)");
  }
  for (size_t j = 0; j < M; ++j) require_count(in.fires[j], "fires[" + std::to_string(j) + "]");
  for (size_t j = 0; j < M; ++j) require_count(in.since[j], "since[" + std::to_string(j) + "]");
  for (const auto& [v, key] : {std::pair<double, const char*>{sc.step, "step"}, {sc.samples_seen, "samplesSeen"}})
    if (!(v >= 0 && v <= kMaxCount && v == std::floor(v)))
      fail("ERR_RANGE", std::string(key) + " must be a whole number in [0, 2^53], got " + std::to_string(v));
  if (!std::isfinite(sc.threshold)) fail("ERR_RANGE", "threshold must be finite");
  for (int p = 0; p < 4; ++p)
    for (int q = 0; q < 2; ++q) {
      std::vector<float>& s = m.adam_state(p, q);
      if (p == 0) transpose(in.moments[p][q], d, M, s.data());
      else std::memcpy(s.data(), in.moments[p][q], sizeof(float) * s.size());
    }
  std::vector<double>& fires = m.fire_counts();
  std::vector<long long>& since = m.since_fired();
  for (size_t j = 0; j < M; ++j) {
    fires[j] = in.fires[j];
    since[j] = static_cast<long long>(in.since[j]);
  }
  m.set_step_count(static_cast<long long>(sc.step));
  m.set_samples_seen(static_cast<long long>(sc.samples_seen));
  m.set_threshold(sc.threshold, sc.threshold_ready);
  m.set_b_dec_mean_init_pending(sc.b_dec_mean_pending);
}

}  // namespace cmsae
