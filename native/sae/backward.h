// Sparse backward of the Top-K SAE: only the selected latents' encoder/decoder rows get gradients.
#pragma once
#include <cstdint>
#include <vector>

#include "../common/aligned.h"

namespace cmsae {

// Gradients with the encoder and decoder rows stored compactly for the touched latents only.
struct SparseGrads {
  int d = 0, m = 0;
  std::vector<int32_t> touched;  // latents with a gradient row, ascending
  std::vector<int32_t> slot;     // [m]: row of latent j in g_enc/g_dec, or -1
  AlignedBuffer<float> g_enc;    // [touched, d] dL/dW_enc rows
  AlignedBuffer<float> g_dec;    // [touched, d] dL/dW_dec rows
  std::vector<float> g_benc;     // [m]
  std::vector<float> g_bdec;     // [d]
  void resize(int d_, int m_);
  double sum_squares() const;    // ||all gradients||^2 in float64
};

struct BackwardInput {
  const float* W_enc_rows;  // [m, d]
  const float* W_dec;       // [m, d]
  const float* b_dec;       // [d]
  int d, m;
  const float* X;  // [R, d] the encoded inputs (before b_dec subtraction)
  long R;
  const int32_t* idx;  // [R, k] selected latents
  const float* val;    // [R, k] their activations (0 = not active: no gradient)
  int k;
  const float* G;           // [R, d] dL/dx_hat
  const float* dval;        // [R, k] dL/dval = G . W_dec[idx] (from decode_with_gradient)
  const float* extra_dval;  // [R, k] extra dL/dval from code-level losses, or nullptr
  // AuxK: x_hat_aux = sum val_aux W_dec[idx_aux] (no b_dec), with dL/dx_hat_aux = G_aux.
  const int32_t* aux_idx = nullptr;
  const float* aux_val = nullptr;
  int k_aux = 0;
  const float* G_aux = nullptr;
};

// pre = W_enc (x - b_dec) + b_enc; x_hat = W_dec^T z + b_dec with z the selected ReLU(pre).
// dL/dW_dec[j] = sum val*G;  dL/dpre = G.W_dec[j] (+extra);  dL/dW_enc[j] = sum dpre (x - b_dec);
// dL/db_enc[j] = sum dpre;  dL/db_dec = sum_rows G - sum_j dL/db_enc[j] W_enc[j].
void sparse_backward(const BackwardInput& in, SparseGrads& out);

// g_dec[j] -= (g_dec[j] . W_dec[j]) W_dec[j] for every touched latent (removes the radial component).
void project_decoder_grads(const float* W_dec, SparseGrads& g);

}  // namespace cmsae
