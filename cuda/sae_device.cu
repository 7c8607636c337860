// The CUDA Top-K SAE (a SaeBackend of native/sae/backend.h): device buffers, the order of
// the training step's ops and the host round trips. Every kernel lives in an op file named after its CPU
// counterpart in native/sae/ (sae_ops.cuh lists them); this class only calls their launchers.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "../native/common/errors.h"
#include "../native/sae/backend.h"
#include "../native/sae/loss_scale.h"
#include "../native/sae/pair_loss.h"
#include "cuda_check.h"
#include "device_info.h"
#include "sae_device.h"
#include "sae_ops.cuh"

namespace cmsae::cuda {
namespace {

// What the device's forward reads back: the segments' SSE and total variance, active entries, dead latents.
struct DeviceForward {
  bool degenerate = false;  // an FVU segment with too little variance (loss_scale.h; nothing was changed)
  double sse[2] = {0, 0};
  double total_variance[2] = {0, 0};
  long long active = 0;
  long long dead = 0;
};

class CudaSae final : public SaeBackend {
 public:
  CudaSae(int d, int m, int k, DevicePrecision p) : d_(d), m_(m), k_(k), precision_(p) {
    CMSAE_CUDA(cudaStreamCreate(&stream_));
    const size_t md = static_cast<size_t>(m) * d;
    W_enc_.alloc(md);
    W_dec_.alloc(md);
    b_enc_.alloc(m);
    b_dec_.alloc(d);
    const size_t sizes[4] = {md, static_cast<size_t>(m), md, static_cast<size_t>(d)};
    for (int q = 0; q < 4; ++q)
      for (int r = 0; r < 2; ++r) {
        mom_[q][r].alloc(sizes[q]);
        mom_[q][r].zero(stream_);
      }
    g_enc_.alloc(md);
    g_dec_.alloc(md);
    g_benc_.alloc(m);
    g_bdec_.alloc(d);
    fires_.alloc(m);
    since_.alloc(m);
    count_.alloc(static_cast<size_t>(m) + 1);
    off_.alloc(static_cast<size_t>(m) + 1);
    fires_.zero(stream_);
    since_.zero(stream_);
    col_tv_.alloc(2 * static_cast<size_t>(d));
    col_mean_.alloc(d);
    scalars_.alloc(4);
    part_.alloc(4 * kSumBlocks);
    sync();
  }
  ~CudaSae() override {
    if (stream_) cudaStreamDestroy(stream_);
  }


  // ---- SaeBackend ----
  bool on_host_arrays() const override { return false; }
  void upload(const SaeArrays& h, unsigned parts) override {
    if (parts & kParams) upload_params(h.W_enc.data(), h.b_enc.data(), h.W_dec.data(), h.b_dec.data());
    if (parts & kMoments) {
      const float* const mo[4][2] = {{h.moments[0][0].data(), h.moments[0][1].data()}, {h.moments[1][0].data(), h.moments[1][1].data()},
                                     {h.moments[2][0].data(), h.moments[2][1].data()}, {h.moments[3][0].data(), h.moments[3][1].data()}};
      upload_moments(mo);
    }
    if (parts & kStats) upload_latent_stats(h.fires.data(), h.since.data());
  }
  void download(SaeArrays& h, unsigned parts) override {
    if (parts & kParams) download_params(h.W_enc.data(), h.b_enc.data(), h.W_dec.data(), h.b_dec.data());
    if (parts & kMoments) {
      float* const mo[4][2] = {{h.moments[0][0].data(), h.moments[0][1].data()}, {h.moments[1][0].data(), h.moments[1][1].data()},
                               {h.moments[2][0].data(), h.moments[2][1].data()}, {h.moments[3][0].data(), h.moments[3][1].data()}};
      download_moments(mo);
    }
    if (parts & kStats) download_latent_stats(h.fires.data(), h.since.data());
  }
  void encode(const float* x, long rows, int k, float floor, int32_t* idx, float* val) override {
    if (floor != 0.f) fail("ERR_ARG", "the CUDA backend encodes with activation 'topk' only (no BatchTopK threshold): use device 'cpu'");
    encode_rows(x, rows, k, idx, val);
  }
  void stage(const SaeBatch& b, float* host) override {
    const size_t half = static_cast<size_t>(b.rows) * d_;
    if (b.resident()) {
      stage_rows(*b.rx, b.ry, b.idx, b.rows);
      download_staged(host, static_cast<long>(b.paired() ? 2 * half : half));
      return;
    }
    std::copy(b.x, b.x + half, host);
    if (b.y) std::copy(b.y, b.y + half, host + half);
  }
  ForwardResult forward(const SaeBatch& b, const ForwardArgs& a) override {
    if (a.activation != Activation::TopK || a.aux_coef > 0.f || a.k != k_)
      fail("ERR_ARG", "the CUDA backend runs activation 'topk' without AuxK: use device 'cpu' for these options");
    const DeviceForward f = b.resident() ? forward_rows(*b.rx, b.ry, b.idx, b.rows, a.w, a.fvu, a.stats_window)
                                         : forward_host(b.x, b.y, b.rows, a.w, a.fvu, a.stats_window);
    codes_fresh_ = grads_fresh_ = false;
    ForwardResult r;
    for (int s = 0; s < 2; ++s) {
      r.sse[s] = f.sse[s];
      r.total_variance[s] = f.total_variance[s];
    }
    if (f.degenerate) r.degenerate_segment = a.fvu && fvu_degenerate(f.total_variance[0], a.w) ? 0 : 1;
    r.active = f.active;
    r.dead = f.dead;
    return r;
  }
  const CodesBuffer& codes() override {
    if (!codes_fresh_ && have_forward_) {
      codes_.rows = R_;
      codes_.k = k_;
      codes_.idx.resize(static_cast<size_t>(R_) * k_);
      codes_.val.resize(static_cast<size_t>(R_) * k_);
      download_codes(codes_.idx.data(), codes_.val.data());
      codes_fresh_ = true;
    }
    return codes_;
  }
  // The code-level losses run on the host over the [R, k] codes; their gradient is added on the device.
  double pair_loss(PairLoss kind, double weight, int m) override {
    const CodesBuffer& c = codes();
    std::vector<float> delta(c.idx.size(), 0.f);
    const double loss = pair_code_loss(kind, c.idx.data(), c.val.data(), c.k, c.rows / 2, m, weight, delta.data());
    add_dval(delta.data());
    return loss;
  }
  double backward(bool project, const float* extra_dval) override {
    if (extra_dval) add_dval(extra_dval);
    grads_fresh_ = false;
    return backward_device(project);
  }
  // The device's gradients are dense: every latent has a row (touched = all, slot = identity).
  const SparseGrads& grads() override {
    if (!grads_fresh_ && have_grads_) {
      grads_.resize(d_, m_);
      grads_.touched.resize(m_);
      for (int j = 0; j < m_; ++j) {
        grads_.touched[j] = j;
        grads_.slot[j] = j;
      }
      download_grads(grads_.g_enc.data(), grads_.g_benc.data(), grads_.g_dec.data(), grads_.g_bdec.data());
      grads_fresh_ = true;
    }
    return grads_;
  }

  // ---- device transfers and the step's op sequence ----
  void upload_params(const float* We, const float* be, const float* Wd, const float* bd) {
    W_enc_.upload(We, stream_);
    b_enc_.upload(be, stream_);
    W_dec_.upload(Wd, stream_);
    b_dec_.upload(bd, stream_);
    sync();
  }
  void download_params(float* We, float* be, float* Wd, float* bd) {
    W_enc_.download(We, stream_);
    b_enc_.download(be, stream_);
    W_dec_.download(Wd, stream_);
    b_dec_.download(bd, stream_);
    sync();
  }
  void upload_moments(const float* const mo[4][2]) {
    for (int q = 0; q < 4; ++q)
      for (int r = 0; r < 2; ++r) mom_[q][r].upload(mo[q][r], stream_);
    sync();
  }
  void download_moments(float* const mo[4][2]) {
    for (int q = 0; q < 4; ++q)
      for (int r = 0; r < 2; ++r) mom_[q][r].download(mo[q][r], stream_);
    sync();
  }
  void upload_latent_stats(const double* fires, const long long* since) {
    fires_.upload(fires, stream_);
    since_.upload(since, stream_);
    sync();
  }
  void download_latent_stats(double* fires, long long* since) {
    fires_.download(fires, stream_);
    since_.download(since, stream_);
    sync();
  }

  void encode_rows(const float* x, long rows, int k, int32_t* idx, float* val) {
    const long chunk = std::max<long>(kEncodeTileRows, std::min<long>(rows, 8192));
    for (long r0 = 0; r0 < rows; r0 += chunk) {
      const long n = std::min(chunk, rows - r0);
      // Own buffers: the training forward's X, codes and dL/dval stay intact between forward and backward.
      inf_X_.ensure(static_cast<size_t>(n) * d_);
      inf_X_.upload(x + r0 * d_, stream_, static_cast<size_t>(n) * d_);
      inf_idx_.ensure(static_cast<size_t>(n) * k);
      inf_val_.ensure(static_cast<size_t>(n) * k);
      run_encode(inf_X_.p, n, k, inf_idx_.p, inf_val_.p);
      inf_idx_.download(idx + r0 * k, stream_, static_cast<size_t>(n) * k);
      inf_val_.download(val + r0 * k, stream_, static_cast<size_t>(n) * k);
      sync();
    }
  }

  void decode(const int32_t* idx, const float* val, long rows, int k, float* out) override {
    const long chunk = std::max<long>(1, std::min<long>(rows, 16384));
    for (long r0 = 0; r0 < rows; r0 += chunk) {
      const long n = std::min(chunk, rows - r0);
      dec_idx_.ensure(static_cast<size_t>(n) * k);
      dec_val_.ensure(static_cast<size_t>(n) * k);
      dec_out_.ensure(static_cast<size_t>(n) * d_);
      dec_idx_.upload(idx + r0 * k, stream_, static_cast<size_t>(n) * k);
      dec_val_.upload(val + r0 * k, stream_, static_cast<size_t>(n) * k);
      launch_decode_rows(W_dec_.p, b_dec_.p, d_, dec_idx_.p, dec_val_.p, n, k, dec_out_.p, stream_);
      CMSAE_CUDA(cudaGetLastError());
      dec_out_.download(out + r0 * d_, stream_, static_cast<size_t>(n) * d_);
      sync();
    }
  }

  DeviceForward forward_host(const float* x, const float* y, long rows, double w, bool fvu, long long dead_window) {
    const int nseg = y ? 2 : 1;
    const long R = rows * nseg;
    X_.ensure(static_cast<size_t>(R) * d_);
    X_.upload(x, stream_, static_cast<size_t>(rows) * d_);
    if (y) CMSAE_CUDA(cudaMemcpyAsync(X_.p + static_cast<size_t>(rows) * d_, y, sizeof(float) * rows * d_, cudaMemcpyHostToDevice, stream_));
    return forward_staged(rows, nseg, w, fvu, dead_window);
  }

  DeviceForward forward_rows(const DeviceRows& x, const DeviceRows* y, const int32_t* idx, long rows, double w, bool fvu,
                             long long dead_window) {
    stage_rows(x, y, idx, rows);
    return forward_staged(rows, y ? 2 : 1, w, fvu, dead_window);
  }

  void download_staged(float* host, long values) {
    X_.download(host, stream_, static_cast<size_t>(values));
    sync();
  }

  void stage_rows(const DeviceRows& x, const DeviceRows* y, const int32_t* idx, long rows) {
    const int nseg = y ? 2 : 1;
    idx_dev_.ensure(rows);
    idx_dev_.upload(idx, stream_, rows);
    X_.ensure(static_cast<size_t>(rows) * nseg * d_);
    launch_gather_rows(x.device_data(), idx_dev_.p, rows, d_, X_.p, stream_);
    if (y) launch_gather_rows(y->device_data(), idx_dev_.p, rows, d_, X_.p + static_cast<size_t>(rows) * d_, stream_);
    CMSAE_CUDA(cudaGetLastError());
  }

  // Statistics, encode, loss and latent statistics over the staged X_ = [x; y].
  DeviceForward forward_staged(long rows, int nseg, double w, bool fvu, long long dead_window) {
    const long R = rows * nseg;
    if (R * static_cast<long>(k_) >= (1L << 31) - 1) fail("ERR_SHAPE", "a CUDA training batch needs rows x k < 2^31: use smaller batches");
    DeviceForward f;
    std::vector<double> tv(static_cast<size_t>(nseg) * d_);
    launch_segment_variance(X_.p, rows, nseg, d_, col_part_, col_mean_.p, col_tv_.p, stream_);
    CMSAE_CUDA(cudaGetLastError());
    col_tv_.download(tv.data(), stream_, tv.size());  // one round trip for both segments
    sync();
    for (int s = 0; s < nseg; ++s) {
      for (int c = 0; c < d_; ++c) f.total_variance[s] += tv[static_cast<size_t>(s) * d_ + c];
      if (fvu && fvu_degenerate(f.total_variance[s], w)) {
        f.degenerate = true;
        return f;
      }
    }
    R_ = R;
    codes_idx_.ensure(static_cast<size_t>(R) * k_);
    codes_val_.ensure(static_cast<size_t>(R) * k_);
    run_encode(X_.p, R, k_, codes_idx_.p, codes_val_.p);
    G_.ensure(static_cast<size_t>(R) * d_);
    dval_.ensure(static_cast<size_t>(R) * k_);
    sse_row_.ensure(R);
    double gs[2] = {0, 0};
    for (int s = 0; s < nseg; ++s) gs[s] = w * 2.0 / (fvu ? f.total_variance[s] : static_cast<double>(rows) * d_);
    launch_forward_loss(W_dec_.p, b_dec_.p, X_.p, d_, codes_idx_.p, codes_val_.p, k_, R, rows, gs[0], gs[1], G_.p, sse_row_.p,
                        dval_.p, stream_);
    CMSAE_CUDA(cudaGetLastError());
    // Latent statistics and the sort keys of the backward.
    const long n = R * k_;
    keys_.ensure(n);
    pos_.ensure(n);
    keys_sorted_.ensure(n);
    pos_sorted_.ensure(n);
    count_.zero(stream_);
    launch_entry_keys(codes_idx_.p, codes_val_.p, n, m_, count_.p, keys_.p, pos_.p, stream_);
    CMSAE_CUDA(cudaGetLastError());
    // Per-segment SSE, active entries and dead latents in one small read-back (the statistics wait for
    // commit_latent_stats: a step that fails leaves them unchanged).
    launch_forward_scalars(sse_row_.p, rows, nseg, count_.p, m_, since_.p, R, dead_window, scalars_.p, stream_);
    CMSAE_CUDA(cudaGetLastError());
    double sc[4];
    scalars_.download(sc, stream_, 4);
    sync();
    f.sse[0] = sc[0];
    f.sse[1] = sc[1];
    f.active = static_cast<long long>(sc[2]);
    f.dead = static_cast<long long>(sc[3]);
    have_forward_ = true;
    return f;
  }

  void download_codes(int32_t* idx, float* val) {
    require_forward();
    codes_idx_.download(idx, stream_, static_cast<size_t>(R_) * k_);
    codes_val_.download(val, stream_, static_cast<size_t>(R_) * k_);
    sync();
  }

  void add_dval(const float* delta) {
    require_forward();
    const long n = R_ * k_;
    tmp_.ensure(n);
    tmp_.upload(delta, stream_, n);
    launch_add_into(dval_.p, tmp_.p, n, stream_);
    CMSAE_CUDA(cudaGetLastError());
    sync();
  }

  void commit_latent_stats() override {
    require_forward();
    launch_latent_stats(count_.p, m_, R_, fires_.p, since_.p, stream_);
    CMSAE_CUDA(cudaGetLastError());  // ordered before every later read of the statistics on the stream
  }

  double backward_device(bool project) {
    require_forward();
    const long n = R_ * k_;
    launch_sort_by_latent(keys_.p, pos_.p, n, m_, count_.p, keys_sorted_.p, pos_sorted_.p, off_.p, sort_temp_, scan_temp_, stream_);
    launch_latent_grads(off_.p, pos_sorted_.p, codes_val_.p, dval_.p, G_.p, X_.p, b_dec_.p, m_, d_, k_, g_dec_.p, g_enc_.p,
                        g_benc_.p, stream_);
    launch_decoder_bias_grad(G_.p, R_, g_benc_.p, W_enc_.p, m_, d_, col_part_, col_mean_.p, g_bdec_.p, stream_);
    if (project) launch_project_rows(W_dec_.p, g_dec_.p, m_, d_, stream_);
    CMSAE_CUDA(cudaGetLastError());
    have_grads_ = true;
    const long md = static_cast<long>(m_) * d_;
    const float* arrays[4] = {g_enc_.p, g_dec_.p, g_benc_.p, g_bdec_.p};
    const long sizes[4] = {md, md, m_, d_};
    for (int q = 0; q < 4; ++q) launch_sum_squares(arrays[q], sizes[q], part_.p + q * kSumBlocks, stream_);
    CMSAE_CUDA(cudaGetLastError());
    std::vector<double> part(4 * kSumBlocks);
    part_.download(part.data(), stream_, part.size());
    sync();
    double total = 0;
    for (double v : part) total += v;
    return total;
  }

  void download_grads(float* ge, float* gbe, float* gd, float* gbd) {
    if (!have_grads_) fail("ERR_STATE", "no gradients on the device yet: run a training step first");
    g_enc_.download(ge, stream_);
    g_benc_.download(gbe, stream_);
    g_dec_.download(gd, stream_);
    g_bdec_.download(gbd, stream_);
    sync();
  }

  void apply_update(const AdamWArgs args[4], bool normalize, float eps) override {
    if (!have_grads_) fail("ERR_STATE", "applyUpdate needs gradients: call forwardBackward first");
    float* params[4] = {W_enc_.p, b_enc_.p, W_dec_.p, b_dec_.p};
    const float* grads[4] = {g_enc_.p, g_benc_.p, g_dec_.p, g_bdec_.p};
    const long sizes[4] = {static_cast<long>(m_) * d_, m_, static_cast<long>(m_) * d_, d_};
    for (int q = 0; q < 4; ++q) launch_adamw(params[q], mom_[q][0].p, mom_[q][1].p, grads[q], sizes[q], args[q], stream_);
    if (normalize) launch_renorm_rows(W_dec_.p, m_, d_, eps, stream_);
    CMSAE_CUDA(cudaGetLastError());  // no host sync: every later read-back orders after it on the stream
  }

  void renormalize_decoder(float eps) override {
    launch_renorm_rows(W_dec_.p, m_, d_, eps, stream_);
    CMSAE_CUDA(cudaGetLastError());
    sync();
  }

  void set_precision(DevicePrecision p) override { precision_ = p; }

 private:
  void sync() { CMSAE_CUDA(cudaStreamSynchronize(stream_)); }
  void require_forward() const {
    if (!have_forward_) fail("ERR_STATE", "no training forward pass on the device yet");
  }

  // Codes of `rows` device rows X (b_dec subtracted on the fly) into device idx/val [rows, k].
  void run_encode(const float* X, long rows, int k, int32_t* idx, float* val) {
    launch_topk_encode(X, rows, k, W_enc_.p, b_enc_.p, b_dec_.p, d_, m_, precision_, cand_, idx, val, stream_);
  }

  int d_, m_, k_;
  DevicePrecision precision_;
  cudaStream_t stream_ = nullptr;
  long R_ = 0;
  bool have_forward_ = false, have_grads_ = false;
  bool codes_fresh_ = false, grads_fresh_ = false;  // host copies of the last forward's codes / gradients
  CodesBuffer codes_;
  SparseGrads grads_;
  DeviceBuffer<float> W_enc_, W_dec_, b_enc_, b_dec_, mom_[4][2], g_enc_, g_dec_, g_benc_, g_bdec_;
  DeviceBuffer<double> fires_, col_tv_, col_mean_, col_part_, part_, sse_row_, scalars_;
  DeviceBuffer<long long> since_;
  DeviceBuffer<int> count_, off_, keys_, pos_, keys_sorted_, pos_sorted_;
  DeviceBuffer<float> X_, G_, dval_, codes_val_, tmp_, dec_val_, dec_out_, inf_X_, inf_val_;
  DeviceBuffer<int32_t> codes_idx_, dec_idx_, inf_idx_;
  DeviceBuffer<unsigned long long> cand_;
  DeviceBuffer<int32_t> idx_dev_;
  DeviceBuffer<unsigned char> sort_temp_, scan_temp_;
};

}  // namespace

std::unique_ptr<SaeBackend> create_device_sae(int d, int m, int k, DevicePrecision precision) {
  const DeviceInfo info = query_devices();
  if (!info.available)
    fail("ERR_CUDA_UNAVAILABLE", "device 'cuda' was requested but no CUDA device can be used (" + info.message +
                                     "): use device 'cpu' or 'auto'");
  if (static_cast<long long>(m) * d > (1LL << 31) - 1)
    fail("ERR_ARG", "the CUDA backend needs m * d < 2^31; use device 'cpu'");
  return std::make_unique<CudaSae>(d, m, k, precision);
}

}  // namespace cmsae::cuda
