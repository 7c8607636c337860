// BatchTopK selection: keep the R*k largest positive pre-activations of the whole batch (ties: row, then latent
// order), at most m per row. Per-row candidate lists of `capacity` are exact unless a row fills its list above the
// cut; such rows are recomputed with capacity m.
#pragma once
#include "backend.h"
#include "topk_encode.h"

namespace cmsae {

struct BatchTopKKept {
  bool any = false;    // some activation was kept
  float min_kept = 0;  // the smallest kept activation (the running threshold's sample)
};

// X: [R, d]; writes codes (k = the widest kept row, padded as topk_encode pads).
BatchTopKKept batch_topk_select(const EncoderView& enc, const float* X, long R, int k, int capacity, CodesBuffer& codes);

}  // namespace cmsae
