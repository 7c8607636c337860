// The SAE's state in the external (SAELens) layout that the API and the checkpoints use: W_enc [d, m] (the
// transpose of the engine's latent-major encoder rows), b_enc [m], W_dec [m, d], b_dec [d]; the W_enc moments in
// [d, m] like W_enc; gradients dense; counts as float64. Writers check everything before they change anything.
#pragma once
#include <cstdint>

#include "model.h"

namespace cmsae {

struct ExternalParams {  // W_enc [d, m], b_enc [m], W_dec [m, d], b_dec [d]
  float* W_enc;
  float* b_enc;
  float* W_dec;
  float* b_dec;
};

// Moments [param][moment] in the layout of their parameter; fires and since as [m] float64 counts.
struct ExternalState {
  float* moments[4][2];
  double* fires;
  double* since;
};

struct StateScalars {
  double step = 0, samples_seen = 0, threshold = 0;
  bool threshold_ready = false, b_dec_mean_pending = false;
};

// "W_enc.exp_avg", ... as the checkpoints name them.
extern const char* const kMomentNames[4][2];

void read_params(const SaeModel& m, const ExternalParams& out);
// ERR_NONFINITE (and nothing written) when a value is NaN/Inf.
void write_params(SaeModel& m, const ExternalParams& in);
// The last gradients, dense (zero rows for latents without a gradient). ERR_STATE before any.
void read_dense_grads(const SaeModel& m, const ExternalParams& out);
StateScalars read_state(const SaeModel& m, const ExternalState& out);
// ERR_NONFINITE / ERR_RANGE (and nothing written) for non-finite moments, negative second moments, counts that are
// not whole numbers in [0, 2^53], or a non-finite threshold.
void write_state(SaeModel& m, const ExternalState& in, const StateScalars& scalars);

}  // namespace cmsae
