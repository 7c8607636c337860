// The CPU engine's training forward and backward (cpu_backend.h): fused encode (TopK or BatchTopK, + AuxK) ->
// sparse decode -> FVU/MSE (+ AuxK) with dL/dx_hat and dL/dval -> latent counts; code-level pair loss; sparse
// backward -> decoder-gradient projection.
#include <algorithm>
#include <cstring>

#include "auxk.h"
#include "batch_stats.h"
#include "batch_topk.h"
#include "cpu_backend.h"
#include "decode.h"
#include "loss_scale.h"

namespace cmsae {

const float* CpuBackend::gather(const SaeBatch& b) {
  if (!b.resident() && !b.y) return b.x;
  Xbuf_.resize(static_cast<size_t>(b.total_rows()) * d_);
  stage(b, Xbuf_.data());
  return Xbuf_.data();
}

bool CpuBackend::aux_setup(const ForwardArgs& a, long R) {
  k_aux_ = 0;
  aux_scale_ = 0;
  if (!(a.aux_coef > 0.f)) return false;
  dead_.assign(m_, 0);
  long long n_dead = 0;
  for (int j = 0; j < m_; ++j) {
    dead_[j] = a_->since[j] >= a.dead_window;
    n_dead += dead_[j];
  }
  const int k_aux_cfg = a.k_aux > 0 ? a.k_aux : std::max(1, d_ / 2);
  if (n_dead == 0) return false;
  k_aux_ = static_cast<int>(std::min<long long>(k_aux_cfg, n_dead));
  aux_scale_ = std::min(1.0, static_cast<double>(n_dead) / k_aux_cfg);
  aux_codes_.rows = R;
  aux_codes_.k = k_aux_;
  aux_codes_.idx.resize(static_cast<size_t>(R) * k_aux_);
  aux_codes_.val.resize(static_cast<size_t>(R) * k_aux_);
  return true;
}

void CpuBackend::encode_batch(const ForwardArgs& a, const float* X, long R, ForwardResult& f) {
  const EncoderView enc = encoder_view();
  AuxSelect aux_sel{};
  if (aux_setup(a, R)) aux_sel = AuxSelect{dead_.data(), k_aux_, aux_codes_.idx.data(), aux_codes_.val.data()};
  if (a.activation == Activation::TopK) {
    codes_.rows = R;
    codes_.k = a.k;
    codes_.idx.resize(static_cast<size_t>(R) * a.k);
    codes_.val.resize(static_cast<size_t>(R) * a.k);
    topk_encode(enc, X, R, a.k, 0.f, codes_.idx.data(), codes_.val.data(), k_aux_ > 0 ? &aux_sel : nullptr);
    return;
  }
  if (k_aux_ > 0) {  // aux candidates come from a separate pass
    std::vector<int32_t> tmp_i(static_cast<size_t>(R));
    std::vector<float> tmp_v(static_cast<size_t>(R));
    topk_encode(enc, X, R, 1, 0.f, tmp_i.data(), tmp_v.data(), &aux_sel);
  }
  const BatchTopKKept kept = batch_topk_select(enc, X, R, a.k, a.capacity, codes_);
  f.kept_any = kept.any;
  f.min_kept = kept.min_kept;
}

void CpuBackend::decode_and_loss(const ForwardArgs& a, const float* X, long rows, int n_seg, const double tv[2], ForwardResult& f) {
  const int d = d_;
  const long R = rows * n_seg;
  const int kc = codes_.k;
  xhat_.resize(static_cast<size_t>(R) * d);
  G_.resize(static_cast<size_t>(R) * d);
  dval_.resize(static_cast<size_t>(R) * kc);
  if (k_aux_ > 0) {
    aux_hat_.resize(static_cast<size_t>(R) * d);
    sparse_decode(a_->W_dec.data(), nullptr, d, aux_codes_.idx.data(), aux_codes_.val.data(), R, k_aux_, aux_hat_.data());
    G_aux_.assign(static_cast<size_t>(R) * d, 0.f);
  }
  for (int s = 0; s < n_seg; ++s) {
    const long r0 = s * rows;
    const double denom = a.fvu ? tv[s] : static_cast<double>(rows) * d;
    f.sse[s] = decode_with_gradient(a_->W_dec.data(), a_->b_dec.data(), d, codes_.idx.data(), codes_.val.data(), kc, X, r0,
                                    rows, loss_gradient_scale(a.w, denom), xhat_.data(), G_.data(), dval_.data());
    if (k_aux_ > 0)
      f.aux_loss += auxk_segment_loss(X, xhat_.data(), aux_hat_.data(), r0, rows, d, a.w, a.aux_coef * aux_scale_, G_aux_.data());
  }
}

void CpuBackend::count_batch(const ForwardArgs& a, long R, ForwardResult& f) {
  count_.assign(m_, 0);
  for (size_t p = 0; p < codes_.val.size(); ++p)
    if (codes_.val[p] > 0.f) {
      ++f.active;
      ++count_[codes_.idx[p]];
    }
  if (a.stats_window > 0)
    for (int j = 0; j < m_; ++j) f.dead += (count_[j] ? 0 : a_->since[j] + R) >= a.stats_window;
}

ForwardResult CpuBackend::forward(const SaeBatch& b, const ForwardArgs& a) {
  phases_.start();
  ForwardResult f;
  const int n_seg = b.paired() ? 2 : 1;
  const long R = b.total_rows();
  const float* X = gather(b);
  for (int s = 0; s < n_seg; ++s) {
    f.total_variance[s] = column_stats(X + s * b.rows * d_, b.rows, d_).total_variance;
    if (a.fvu && fvu_degenerate(f.total_variance[s], a.w)) {
      f.degenerate_segment = s;
      return f;
    }
  }
  X_ = X;
  R_ = R;
  rows_ = b.rows;
  phases_.mark(StepPhases::kStats);
  encode_batch(a, X, R, f);
  phases_.mark(StepPhases::kEncode);
  decode_and_loss(a, X, b.rows, n_seg, f.total_variance, f);
  phases_.mark(StepPhases::kDecodeLoss);
  count_batch(a, R, f);
  phases_.mark(StepPhases::kCounts);
  return f;
}

double CpuBackend::pair_loss(PairLoss kind, double weight, int m) {
  return pair_code_loss(kind, codes_.idx.data(), codes_.val.data(), codes_.k, rows_, m, weight, dval_.data());
}

double CpuBackend::backward(bool project, const float* extra_dval) {
  BackwardInput bin{a_->W_enc.data(), a_->W_dec.data(), a_->b_dec.data(), d_, m_, X_, R_,
                    codes_.idx.data(), codes_.val.data(), codes_.k, G_.data(), dval_.data(), extra_dval};
  if (k_aux_ > 0) {
    bin.aux_idx = aux_codes_.idx.data();
    bin.aux_val = aux_codes_.val.data();
    bin.k_aux = k_aux_;
    bin.G_aux = G_aux_.data();
  }
  sparse_backward(bin, grads_);
  if (project) project_decoder_grads(a_->W_dec.data(), grads_);
  return grads_.sum_squares();
}

}  // namespace cmsae
