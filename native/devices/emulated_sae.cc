// The CPU emulation of DeviceSae and DeviceRows (CMSAE_EMULATE_CUDA=1; see emulated_devices.h).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../common/errors.h"
#include "../sae/backward.h"
#include "../sae/decode.h"
#include "../sae/device_sae.h"
#include "../sae/kernels.h"
#include "../sae/loss_scale.h"
#include "../sae/topk_encode.h"
#include "emulated_devices.h"

namespace cmsae {
namespace {

class EmulatedRows final : public DeviceRows {
 public:
  EmulatedRows(long rows, int d) : rows_(rows), d_(d), data_(static_cast<size_t>(rows) * d) {}
  long rows() const override { return rows_; }
  int dim() const override { return d_; }
  void upload(long r0, const float* x, long n) override {
    if (r0 < 0 || n < 0 || r0 + n > rows_) fail("ERR_RANGE", "rows outside the resident rows");
    std::memcpy(data_.data() + static_cast<size_t>(r0) * d_, x, sizeof(float) * n * d_);
  }
  const float* device_data() const override { return data_.data(); }

 private:
  long rows_;
  int d_;
  std::vector<float> data_;
};

class EmulatedSae final : public DeviceSae {
 public:
  EmulatedSae(int d, int m, int k) : d_(d), m_(m), k_(k) {
    const size_t md = static_cast<size_t>(m) * d;
    W_enc_.assign(md, 0.f);
    W_dec_.assign(md, 0.f);
    b_enc_.assign(m, 0.f);
    b_dec_.assign(d, 0.f);
    const size_t sizes[4] = {md, static_cast<size_t>(m), md, static_cast<size_t>(d)};
    for (int q = 0; q < 4; ++q)
      for (int r = 0; r < 2; ++r) mom_[q][r].assign(sizes[q], 0.f);
    fires_.assign(m, 0.0);
    since_.assign(m, 0);
  }
  void upload_params(const float* We, const float* be, const float* Wd, const float* bd) override {
    std::copy(We, We + W_enc_.size(), W_enc_.begin());
    std::copy(be, be + m_, b_enc_.begin());
    std::copy(Wd, Wd + W_dec_.size(), W_dec_.begin());
    std::copy(bd, bd + d_, b_dec_.begin());
  }
  void download_params(float* We, float* be, float* Wd, float* bd) override {
    std::copy(W_enc_.begin(), W_enc_.end(), We);
    std::copy(b_enc_.begin(), b_enc_.end(), be);
    std::copy(W_dec_.begin(), W_dec_.end(), Wd);
    std::copy(b_dec_.begin(), b_dec_.end(), bd);
  }
  void upload_moments(const float* const mo[4][2]) override {
    for (int q = 0; q < 4; ++q)
      for (int r = 0; r < 2; ++r) std::copy(mo[q][r], mo[q][r] + mom_[q][r].size(), mom_[q][r].begin());
  }
  void download_moments(float* const mo[4][2]) override {
    for (int q = 0; q < 4; ++q)
      for (int r = 0; r < 2; ++r) std::copy(mom_[q][r].begin(), mom_[q][r].end(), mo[q][r]);
  }
  void upload_latent_stats(const double* fires, const long long* since) override {
    std::copy(fires, fires + m_, fires_.begin());
    std::copy(since, since + m_, since_.begin());
  }
  void download_latent_stats(double* fires, long long* since) override {
    std::copy(fires_.begin(), fires_.end(), fires);
    std::copy(since_.begin(), since_.end(), since);
  }
  void encode(const float* x, long rows, int k, int32_t* idx, float* val) override {
    topk_encode(EncoderView{W_enc_.data(), b_enc_.data(), b_dec_.data(), d_, m_}, x, rows, k, 0.f, idx, val);
  }
  void decode(const int32_t* idx, const float* val, long rows, int k, float* out) override {
    sparse_decode(W_dec_.data(), b_dec_.data(), d_, idx, val, rows, k, out);
  }
  DeviceForward forward(const float* x, const float* y, long rows, double w, bool fvu, long long window) override {
    const int nseg = y ? 2 : 1;
    staged_.resize(static_cast<size_t>(rows) * nseg * d_);
    std::memcpy(staged_.data(), x, sizeof(float) * rows * d_);
    if (y) std::memcpy(staged_.data() + static_cast<size_t>(rows) * d_, y, sizeof(float) * rows * d_);
    return forward_staged(rows, nseg, w, fvu, window);
  }
  DeviceForward forward_rows(const DeviceRows& x, const DeviceRows* y, const int32_t* idx, long rows, double w, bool fvu,
                             long long window) override {
    stage_rows(x, y, idx, rows);
    return forward_staged(rows, y ? 2 : 1, w, fvu, window);
  }
  void stage_rows(const DeviceRows& x, const DeviceRows* y, const int32_t* idx, long rows) override {
    const int nseg = y ? 2 : 1;
    staged_.resize(static_cast<size_t>(rows) * nseg * d_);
    for (long r = 0; r < rows; ++r) {
      std::memcpy(staged_.data() + r * d_, x.device_data() + static_cast<long>(idx[r]) * d_, sizeof(float) * d_);
      if (y) std::memcpy(staged_.data() + (rows + r) * d_, y->device_data() + static_cast<long>(idx[r]) * d_, sizeof(float) * d_);
    }
  }
  void download_staged(float* host, long values) override { std::memcpy(host, staged_.data(), sizeof(float) * values); }
  void download_codes(int32_t* idx, float* val) override {
    std::copy(idx_.begin(), idx_.end(), idx);
    std::copy(val_.begin(), val_.end(), val);
  }
  void add_dval(const float* delta) override {
    for (size_t p = 0; p < dval_.size(); ++p) dval_[p] += delta[p];
  }
  void commit_latent_stats() override {
    for (int j = 0; j < m_; ++j) {
      fires_[j] += count_[j];
      since_[j] = count_[j] ? 0 : since_[j] + R_;
    }
  }
  double backward(bool project) override {
    BackwardInput bin{W_enc_.data(), W_dec_.data(), b_dec_.data(), d_, m_, X_.data(), R_, idx_.data(), val_.data(), k_, G_.data(),
                      dval_.data(), nullptr};
    sparse_backward(bin, grads_);
    if (project) project_decoder_grads(W_dec_.data(), grads_);
    return grads_.sum_squares();
  }
  void download_grads(float* ge, float* gbe, float* gd, float* gbd) override {
    const size_t md = static_cast<size_t>(m_) * d_;
    std::fill(ge, ge + md, 0.f);
    std::fill(gd, gd + md, 0.f);
    for (size_t i = 0; i < grads_.touched.size(); ++i) {
      const size_t j = grads_.touched[i];
      std::memcpy(ge + j * d_, grads_.g_enc.data() + i * d_, sizeof(float) * d_);
      std::memcpy(gd + j * d_, grads_.g_dec.data() + i * d_, sizeof(float) * d_);
    }
    std::copy(grads_.g_benc.begin(), grads_.g_benc.end(), gbe);
    std::copy(grads_.g_bdec.begin(), grads_.g_bdec.end(), gbd);
  }
  void apply_update(const DeviceAdamArgs args[4], bool normalize, float eps) override {
    const SaeKernels& K = kernels();
    auto a = [&](int q) {
      return AdamWArgs{args[q].beta1, args[q].beta2, args[q].eps, args[q].decay_factor, args[q].step_size, args[q].inv_sqrt_bc2, args[q].grad_scale};
    };
    K.adamw(b_enc_.data(), mom_[1][0].data(), mom_[1][1].data(), grads_.g_benc.data(), m_, a(1));
    K.adamw(b_dec_.data(), mom_[3][0].data(), mom_[3][1].data(), grads_.g_bdec.data(), d_, a(3));
    for (int j = 0; j < m_; ++j) {
      const int32_t slot = grads_.slot[j];
      const float* ge = slot >= 0 ? grads_.g_enc.data() + static_cast<long>(slot) * d_ : nullptr;
      const float* gd = slot >= 0 ? grads_.g_dec.data() + static_cast<long>(slot) * d_ : nullptr;
      K.adamw(W_enc_.data() + static_cast<long>(j) * d_, mom_[0][0].data() + static_cast<long>(j) * d_, mom_[0][1].data() + static_cast<long>(j) * d_, ge, d_, a(0));
      K.adamw(W_dec_.data() + static_cast<long>(j) * d_, mom_[2][0].data() + static_cast<long>(j) * d_, mom_[2][1].data() + static_cast<long>(j) * d_, gd, d_, a(2));
    }
    if (normalize) renormalize_decoder(eps);
  }
  void renormalize_decoder(float eps) override {
    const SaeKernels& K = kernels();
    for (int j = 0; j < m_; ++j) {
      float* w = W_dec_.data() + static_cast<long>(j) * d_;
      const float inv = 1.0f / (static_cast<float>(std::sqrt(K.sumsq(w, d_))) + eps);
      for (int c = 0; c < d_; ++c) w[c] *= inv;
    }
  }
  void set_precision(DevicePrecision) override {}

 private:
  DeviceForward forward_staged(long rows, int nseg, double w, bool fvu, long long window) {
    DeviceForward f;
    const long R = rows * nseg;
    for (int s = 0; s < nseg; ++s) {
      for (int c = 0; c < d_; ++c) {
        double mu = 0;
        for (long r = s * rows; r < (s + 1) * rows; ++r) mu += staged_[r * d_ + c];
        mu /= rows;
        for (long r = s * rows; r < (s + 1) * rows; ++r) f.total_variance[s] += (staged_[r * d_ + c] - mu) * (staged_[r * d_ + c] - mu);
      }
      if (fvu && fvu_degenerate(f.total_variance[s], w)) {
        f.degenerate = true;
        return f;
      }
    }
    R_ = R;
    X_ = staged_;
    idx_.resize(static_cast<size_t>(R) * k_);
    val_.resize(static_cast<size_t>(R) * k_);
    encode(X_.data(), R, k_, idx_.data(), val_.data());
    G_.resize(static_cast<size_t>(R) * d_);
    dval_.resize(static_cast<size_t>(R) * k_);
    std::vector<float> xhat(static_cast<size_t>(R) * d_);
    for (int s = 0; s < nseg; ++s) {
      const double denom = fvu ? f.total_variance[s] : static_cast<double>(rows) * d_;
      f.sse[s] = decode_with_gradient(W_dec_.data(), b_dec_.data(), d_, idx_.data(), val_.data(), k_, X_.data(), s * rows, rows,
                                      loss_gradient_scale(w, denom), xhat.data(), G_.data(), dval_.data());
    }
    count_.assign(m_, 0);
    for (size_t p = 0; p < val_.size(); ++p)
      if (val_[p] > 0.f) {
        ++f.active;
        ++count_[idx_[p]];
      }
    for (int j = 0; j < m_; ++j)
      if (window > 0 && (count_[j] ? 0 : since_[j] + R) >= window) ++f.dead;
    return f;
  }

  int d_, m_, k_;
  std::vector<float> W_enc_, W_dec_, b_enc_, b_dec_, mom_[4][2];
  std::vector<double> fires_;
  std::vector<long long> since_;
  std::vector<float> staged_, X_, G_, dval_, val_;
  std::vector<int32_t> idx_, count_;
  long R_ = 0;
  SparseGrads grads_;
};

}  // namespace

std::unique_ptr<DeviceSae> make_emulated_sae(int d, int m, int k, DevicePrecision) { return std::make_unique<EmulatedSae>(d, m, k); }
std::unique_ptr<DeviceRows> make_emulated_rows(long rows, int d) { return std::make_unique<EmulatedRows>(rows, d); }

}  // namespace cmsae
