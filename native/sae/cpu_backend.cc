// The CPU engine's state handling, inference and optimizer half (cpu_backend.h); the forward and backward are in
// cpu_forward.cc.
#include "cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "../common/errors.h"
#include "../common/thread_pool.h"
#include "certified_encode.h"
#include "decode.h"
#include "kernels.h"

namespace cmsae {

void StepPhases::start() {
  static const bool profile = std::getenv("CMSAE_PROFILE") != nullptr;
  on = profile;
  if (on) {
    for (double& v : ms) v = 0;
    last = std::chrono::steady_clock::now();
  }
}

void StepPhases::mark(int phase) {
  if (!on) return;
  const auto now = std::chrono::steady_clock::now();
  ms[phase] += std::chrono::duration<double, std::milli>(now - last).count();
  last = now;
}

void StepPhases::report() {
  if (!on) return;
  std::fprintf(stderr, "[step] stats %.2f encode %.2f decode+loss %.2f counts %.2f backward %.2f update %.2f ms\n",
               ms[kStats], ms[kEncode], ms[kDecodeLoss], ms[kCounts], ms[kBackward], ms[kUpdate]);
  on = false;
}

void SaeArrays::allocate(int d, int m) {
  const size_t md = static_cast<size_t>(m) * d;
  W_enc.assign(md, 0.f);
  W_dec.assign(md, 0.f);
  b_enc.assign(m, 0.f);
  b_dec.assign(d, 0.f);
  const size_t sizes[4] = {md, static_cast<size_t>(m), md, static_cast<size_t>(d)};
  for (int q = 0; q < 4; ++q)
    for (int r = 0; r < 2; ++r) moments[q][r].assign(sizes[q], 0.f);
  fires.assign(m, 0.0);
  since.assign(m, 0);
}

namespace {

// w /= ||w|| + eps (the norm in float64 by the active kernels).
inline void unit_row(const SaeKernels& K, float* w, int d, float eps) {
  const float inv = 1.0f / (static_cast<float>(std::sqrt(K.sumsq(w, d))) + eps);
  for (int c = 0; c < d; ++c) w[c] *= inv;
}

// Copies the parts of `from` named by `parts` into `to` (same shapes).
void copy_parts(const SaeArrays& from, SaeArrays& to, unsigned parts) {
  if (parts & kEncoder) {
    to.W_enc = from.W_enc;
    to.b_enc = from.b_enc;
  }
  if (parts & kDecoder) {
    to.W_dec = from.W_dec;
    to.b_dec = from.b_dec;
  }
  if (parts & kMoments)
    for (int q = 0; q < 4; ++q)
      for (int r = 0; r < 2; ++r) to.moments[q][r] = from.moments[q][r];
  if (parts & kStats) {
    to.fires = from.fires;
    to.since = from.since;
  }
}

}  // namespace

CpuBackend::CpuBackend(SaeArrays* host, int d, int m, int k) : d_(d), m_(m), k_(k), shared_(host != nullptr) {
  if (!shared_) own_.allocate(d, m);
  a_ = shared_ ? host : &own_;
}

void CpuBackend::upload(const SaeArrays& host, unsigned parts) {
  if (shared_) return;
  copy_parts(host, own_, parts);
  host_arrays_changed(parts);
}

void CpuBackend::download(SaeArrays& host, unsigned parts) {
  if (!shared_) copy_parts(own_, host, parts);
}

void CpuBackend::host_arrays_changed(unsigned parts) {
  if (parts & kEncoder) {
    std::lock_guard<std::mutex> lock(pack_mutex_);
    packed_valid_ = false;
    bf16_valid_ = false;
  }
}

bool CpuBackend::certified_in_use() const { return encode_path_for(k_, m_) != EncodePath::Fp32; }

EncoderView CpuBackend::encoder_view() {
  EncoderView enc{a_->W_enc.data(), a_->b_enc.data(), a_->b_dec.data(), d_, m_};
  const int nr = kernels().nr;
  const long panels = (m_ + nr - 1) / nr;
  std::lock_guard<std::mutex> lock(pack_mutex_);
  if (certified_in_use()) {
    if (!bf16_valid_) {
      bf16_.resize(d_, m_);
      const long bp = bf16_.panels;
      const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), bp / 8 + 1)));
      parallel_for(T, [&](int t) {
        pack_bf16_panels(enc.W_rows, enc.b_enc, split_begin(bp, T, t), split_begin(bp, T, t + 1), bf16_);
      });
      finish_bf16_encoder(bf16_);
      bf16_valid_ = true;
    }
    enc.bf16 = &bf16_;
    if (packed_valid_ && packed_nr_ == nr) {  // the float32 fallback may use them when they are current
      enc.packed_W = packed_W_.data();
      enc.packed_bias = packed_bias_.data();
      enc.packed_nr = packed_nr_;
    }
    return enc;
  }
  if (!packed_valid_ || packed_nr_ != nr) {
    packed_W_.reset(static_cast<size_t>(panels) * nr * d_);
    packed_bias_.reset(static_cast<size_t>(panels) * nr);
    const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), panels)));
    parallel_for(T, [&](int t) {
      const long p0 = split_begin(panels, T, t), p1 = split_begin(panels, T, t + 1);
      pack_encoder_panels(enc, p0, p1, nr, packed_W_.data() + p0 * nr * d_, packed_bias_.data() + p0 * nr);
    });
    packed_nr_ = nr;
    packed_valid_ = true;
  }
  enc.packed_W = packed_W_.data();
  enc.packed_bias = packed_bias_.data();
  enc.packed_nr = packed_nr_;
  return enc;
}

void CpuBackend::encode(const float* x, long rows, int k, float floor, int32_t* idx, float* val) {
  topk_encode(encoder_view(), x, rows, k, floor, idx, val);
}

bool CpuBackend::encode_checking_input(const float* x, long rows, int, int k, float floor, int32_t* idx, float* val) {
  bool nonfinite = false;
  topk_encode(encoder_view(), x, rows, k, floor, idx, val, nullptr, &nonfinite);
  return !nonfinite;
}

void CpuBackend::decode(const int32_t* idx, const float* val, long rows, int k, float* out) {
  sparse_decode(a_->W_dec.data(), a_->b_dec.data(), d_, idx, val, rows, k, out);
}

void CpuBackend::stage(const SaeBatch& b, float* host) {
  const size_t half = static_cast<size_t>(b.rows) * d_;
  if (!b.resident()) {
    std::memcpy(host, b.x, sizeof(float) * half);
    if (b.y) std::memcpy(host + half, b.y, sizeof(float) * half);
    return;
  }
  for (long r = 0; r < b.rows; ++r) {
    std::memcpy(host + r * d_, b.rx->device_data() + static_cast<long>(b.idx[r]) * d_, sizeof(float) * d_);
    if (b.ry) std::memcpy(host + half + r * d_, b.ry->device_data() + static_cast<long>(b.idx[r]) * d_, sizeof(float) * d_);
  }
}

void CpuBackend::commit_latent_stats() {
  const int32_t* count = count_.data();
  for (int j = 0; j < m_; ++j) {
    a_->fires[j] += count[j];
    a_->since[j] = count[j] ? 0 : a_->since[j] + R_;
  }
}

void CpuBackend::adopt_step(const SparseGrads& grads, const CodesBuffer& codes) {
  grads_.resize(grads.d, grads.m);  // [m, d] gradient rows, as the backward leaves them
  grads_.touched = grads.touched;
  grads_.slot = grads.slot;
  const size_t rows = grads.touched.size() * static_cast<size_t>(grads.d);
  std::memcpy(grads_.g_enc.data(), grads.g_enc.data(), sizeof(float) * rows);
  std::memcpy(grads_.g_dec.data(), grads.g_dec.data(), sizeof(float) * rows);
  grads_.g_benc = grads.g_benc;
  grads_.g_bdec = grads.g_bdec;
  codes_ = codes;
}

// AdamW on every parameter (b_enc first: the W_enc pass repacks each encoder panel, weights and bias, right after
// updating it), each decoder row renormalized right after its update.
void CpuBackend::apply_update(const AdamWArgs args[4], bool normalize, float decoder_eps) {
  phases_.mark(StepPhases::kBackward);  // everything since the forward: backward, projection, clipping
  const SaeKernels& K = kernels();
  const int d = d_, m = m_;
  SaeArrays& a = *a_;
  K.adamw(a.b_enc.data(), a.moments[1][0].data(), a.moments[1][1].data(), grads_.g_benc.data(), m, args[1]);
  K.adamw(a.b_dec.data(), a.moments[3][0].data(), a.moments[3][1].data(), grads_.g_bdec.data(), d, args[3]);
  std::lock_guard<std::mutex> lock(pack_mutex_);
  // Repack what the encode uses next: the BF16 copy (in groups of two of its panels) or the float32 panels.
  const bool bf16 = certified_in_use();
  const int nr = bf16 ? 2 * kBf16PanelLatents : K.nr;
  const long panels = (m + nr - 1) / nr;
  if (bf16) {
    if (bf16_.d != d || bf16_.m != m || bf16_.Wp.size() == 0) bf16_.resize(d, m);
    packed_valid_ = false;
  } else if (packed_nr_ != nr || packed_W_.size() != static_cast<size_t>(panels) * nr * d) {
    packed_W_.reset(static_cast<size_t>(panels) * nr * d);
    packed_bias_.reset(static_cast<size_t>(panels) * nr);
    packed_nr_ = nr;
  }
  const EncoderView raw{a.W_enc.data(), a.b_enc.data(), a.b_dec.data(), d, m};
  const int T = static_cast<int>(std::max<long>(1, std::min<long>(num_threads(), panels / 4 + 1)));
  parallel_for(T, [&](int t) {
    for (long p = split_begin(panels, T, t); p < split_begin(panels, T, t + 1); ++p) {
      for (long j = p * nr; j < std::min<long>(m, (p + 1) * nr); ++j) {
        const int32_t slot = grads_.slot[j];
        const float* ge = slot >= 0 ? grads_.g_enc.data() + static_cast<long>(slot) * d : nullptr;
        const float* gd = slot >= 0 ? grads_.g_dec.data() + static_cast<long>(slot) * d : nullptr;
        K.adamw(a.W_enc.data() + j * d, a.moments[0][0].data() + j * d, a.moments[0][1].data() + j * d, ge, d, args[0]);
        float* wd = a.W_dec.data() + j * d;
        K.adamw(wd, a.moments[2][0].data() + j * d, a.moments[2][1].data() + j * d, gd, d, args[2]);
        if (normalize) unit_row(K, wd, d, decoder_eps);
      }
      if (bf16)
        pack_bf16_panels(raw.W_rows, raw.b_enc, 2 * p, 2 * p + 2, bf16_);
      else
        pack_encoder_panels(raw, p, p + 1, nr, packed_W_.data() + p * nr * d, packed_bias_.data() + p * nr);
    }
  });
  if (bf16) {
    finish_bf16_encoder(bf16_);
    bf16_valid_ = true;
  } else {
    packed_valid_ = true;
    bf16_valid_ = false;
  }
  phases_.mark(StepPhases::kUpdate);
  phases_.report();
}

void renormalize_rows(float* W_dec, int d, int m, float eps) {
  const SaeKernels& K = kernels();
  const int T = std::max(1, std::min(num_threads(), m / 256 + 1));
  parallel_for(T, [&](int t) {
    for (long j = split_begin(m, T, t); j < split_begin(m, T, t + 1); ++j) unit_row(K, W_dec + j * d, d, eps);
  });
}

void CpuBackend::renormalize_decoder(float decoder_eps) { renormalize_rows(a_->W_dec.data(), d_, m_, decoder_eps); }

}  // namespace cmsae
