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
  // Optional pre-packed copy of W_rows/b_enc (pack_encoder_panels over all panels with packed_nr == the
  // active kernels' nr); when absent the encoder packs each block on the fly.
  const float* packed_W = nullptr;
  const float* packed_bias = nullptr;
  int packed_nr = 0;
};

// Bp[q][k][nr] = W_rows[(p0+q)*nr + c][k] and bias_p[q][c] = b_enc[...] (-inf past m) for latent panels
// [p0, p1) of nr latents: the layout encode_tile reads.
void pack_encoder_panels(const EncoderView& enc, long p0, long p1, int nr, float* Bp, float* bias_p);

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
