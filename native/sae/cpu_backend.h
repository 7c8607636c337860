// The CPU engine of the SAE training step (SIMD kernels + the thread pool), behind the backend interface. It runs
// on the model's own host arrays (SaeModel's engine for device 'cpu'), or on arrays of its own behind the
// device-shaped upload/download contract: the CPU emulation of the CUDA backend (CMSAE_EMULATE_CUDA=1) is exactly
// this engine, so the emulation holds no second copy of any formula.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "backend.h"
#include "bf16_encoder.h"
#include "topk_encode.h"

namespace cmsae {

// Wall time of a training step's phases, printed per step to stderr when CMSAE_PROFILE is set.
struct StepPhases {
  enum { kStats, kEncode, kDecodeLoss, kCounts, kBackward, kUpdate, kCount };
  bool on = false;
  std::chrono::steady_clock::time_point last;
  double ms[kCount] = {};
  void start();
  void mark(int phase);
  void report();  // after the update: one line, then reset
};

class CpuBackend final : public SaeBackend {
 public:
  // host: the model's arrays (shared, on_host_arrays() true), or null for arrays of its own (device-shaped).
  CpuBackend(SaeArrays* host, int d, int m, int k);

  bool on_host_arrays() const override { return shared_; }
  void upload(const SaeArrays& host, unsigned parts) override;
  void download(SaeArrays& host, unsigned parts) override;
  void host_arrays_changed(unsigned parts) override;
  void encode(const float* x, long rows, int k, float floor, int32_t* idx, float* val) override;
  bool encode_checking_input(const float* x, long rows, int d, int k, float floor, int32_t* idx, float* val) override;
  void decode(const int32_t* idx, const float* val, long rows, int k, float* out) override;
  void stage(const SaeBatch& batch, float* host) override;
  ForwardResult forward(const SaeBatch& batch, const ForwardArgs& args) override;
  const CodesBuffer& codes() override { return codes_; }
  double pair_loss(PairLoss kind, double weight, int m) override;
  double backward(bool project, const float* extra_dval) override;
  const SparseGrads& grads() override { return grads_; }
  void commit_latent_stats() override;
  void apply_update(const AdamWArgs args[4], bool normalize, float decoder_eps) override;
  void renormalize_decoder(float decoder_eps) override;
  void set_precision(DevicePrecision) override {}  // the CPU engine computes in FP32
  // Takes over the last gradients and codes of another backend (a model moving to the CPU keeps them).
  void adopt_step(const SparseGrads& grads, const CodesBuffer& codes);

 private:
  // The encoder with an up-to-date packed copy of W_enc/b_enc: the BF16 copy when the certified encode is in use for
  // this SAE's k (certified_encode.h), else the active kernels' float32 panels.
  EncoderView encoder_view();
  bool certified_in_use() const;
  // The batch as one host block X = [x; y] (a pointer into x when it is unpaired and on the host).
  const float* gather(const SaeBatch& batch);
  // The AuxK selection of the forward: dead latents, k_aux, scale; false when AuxK is off or nothing is dead.
  bool aux_setup(const ForwardArgs& a, long R);
  void encode_batch(const ForwardArgs& a, const float* X, long R, ForwardResult& f);
  void decode_and_loss(const ForwardArgs& a, const float* X, long rows, int n_seg, const double tv[2], ForwardResult& f);
  void count_batch(const ForwardArgs& a, long R, ForwardResult& f);

  int d_, m_, k_;
  bool shared_;
  SaeArrays own_;
  SaeArrays* a_;
  // Packed encoder (kept in sync by apply_update; rebuilt lazily after other weight changes).
  AlignedBuffer<float> packed_W_, packed_bias_;
  int packed_nr_ = 0;
  bool packed_valid_ = false;
  Bf16Encoder bf16_;
  bool bf16_valid_ = false;
  std::mutex pack_mutex_;
  // The last forward pass (what backward and commit_latent_stats use).
  const float* X_ = nullptr;  // [R, d], valid until the step's backward
  long R_ = 0, rows_ = 0;
  CodesBuffer codes_, aux_codes_;
  std::vector<uint8_t> dead_;
  int k_aux_ = 0;
  double aux_scale_ = 0;
  std::vector<float> Xbuf_, G_, G_aux_, xhat_, aux_hat_, dval_;
  std::vector<int32_t> count_;  // active entries per latent in the batch
  SparseGrads grads_;
  StepPhases phases_;
};

// W_dec[j] /= ||W_dec[j]|| + eps for every row (threads over rows; the active kernels' float64 norm).
void renormalize_rows(float* W_dec, int d, int m, float eps);

}  // namespace cmsae
