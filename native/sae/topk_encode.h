// Fused Top-K encode: z = TopK_k(ReLU(W_enc (x - b_dec) + b_enc)) in one pass over latent tiles.
#pragma once
#include <cstdint>

namespace cmsae {

struct EncoderView {
  const float* W_rows;  // [m, d] encoder rows (latent-major)
  const float* b_enc;   // [m]
  const float* b_dec;   // [d], subtracted from x before encoding (nullptr: nothing subtracted)
  int d;
  int m;
};

// Optional second selection among "dead" latents (AuxK): the k best pre-activations > 0 per row.
struct AuxSelect {
  const uint8_t* dead;  // [m], 1 = latent is dead
  int k;
  int32_t* idx;  // [rows, k]
  float* val;    // [rows, k]
};

// For each row of x ([rows, d]) selects the k latents with the largest pre-activations that are
// > floor (floor >= 0 makes this ReLU then Top-K), ties to the smaller index. Rows are written to
// idx/val ([rows, k]) best first; slots left over (fewer than k pass) get value 0 and the smallest
// unused latent indices. The rows x m pre-activations are never materialized.
void topk_encode(const EncoderView& enc, const float* x, long rows, int k, float floor, int32_t* idx,
                 float* val, const AuxSelect* aux = nullptr);

}  // namespace cmsae
