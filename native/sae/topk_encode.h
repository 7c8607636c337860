// Fused Top-K encode: z = TopK_k(ReLU(W_enc (x - b_dec) + b_enc)) in one pass over latent tiles.
#pragma once
#include <cstdint>

namespace cmsae {

struct Bf16Encoder;

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
  // Optional BF16 copy of W_rows/b_enc (bf16_encoder.h): with it, topk_encode may take a certified path
  // (certified_encode.h), whose result is identical.
  const Bf16Encoder* bf16 = nullptr;
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
// Takes the certified BF16 path when enc.bf16 is set and encode_path_for(k, m) names one, else the float32 path.
// With x_nonfinite (not null) the encode checks x as well: *x_nonfinite = true when x holds a NaN or +-Inf (the codes
// are then not all written; the caller locates and reports it, check_finite), false when x is finite. The certified
// path checks while it prepares the rows, with no separate pass over x; the float32 path checks first.
void topk_encode(const EncoderView& enc, const float* x, long rows, int k, float floor, int32_t* idx,
                 float* val, const AuxSelect* aux = nullptr, bool* x_nonfinite = nullptr);
// The float32 path alone (register-tiled GEMM with the selection in its epilogue).
void topk_encode_fp32(const EncoderView& enc, const float* x, long rows, int k, float floor, int32_t* idx,
                      float* val, const AuxSelect* aux = nullptr);

}  // namespace cmsae
