// Synthetic paired embeddings with ground-truth concepts (paper App. D.2; reference-implementation §6).
// Dictionaries are row-major [n, d] with unit rows (one atom per row).
#pragma once
#include <cstdint>
#include <vector>

namespace cmsae {

// Unit atoms with bounded positive interference (the reference's "gradient" strategy): Gaussian init, then
// projected gradient steps on sum_{i!=j} (G_ij - t)_+^2 + lneg (G_ij)_+^2 (t = delta - 1e-3, lneg = 1e-3,
// lr 0.05) until max_{i!=j} G_ij <= delta + 1e-4 (at least one step, at most max_iters). Returns the number
// of steps taken; `max_dot` gets the final largest off-diagonal dot.
int bounded_dictionary(int d, int n, double delta, uint64_t seed, int max_iters, float* out, double* max_dot);

// The paper's interference bound across blocks too: every pair of atoms of distinct concepts (image x image,
// text x text, image x text) gets |cos| <= delta + 1e-4, while every shared pair keeps cos(phi_i, psi_i) = alpha
// exactly (psi_i = alpha phi_i + sqrt(1 - alpha^2) u_i, u_i a unit vector orthogonal to phi_i). Projected gradient
// on sum (|G_ij| - t)_+^2 over the excluded-free pairs. Outputs [nI, d], [nS, d], [nS, d], [nT, d]; returns the
// steps taken; `max_abs` gets the final largest |cos| between atoms of distinct concepts.
int bounded_paired_dictionary(int d, int nI, int nS, int nT, double alpha, double delta, uint64_t seed, int max_iters,
                              float* phi_image, float* phi_shared, float* psi_shared, float* psi_text, double* max_abs);

// psi_i = alpha phi_i + sqrt(1 - alpha^2) u_i with u_i a random unit vector orthogonal to phi_i: cos = alpha exactly.
void aligned_partner(const float* phi, int n, int d, double alpha, uint64_t seed, float* psi);

struct SynthSampleSpec {
  const float* phi_image;  // [nI, d] image-only atoms
  const float* phi_shared; // [nS, d]
  const float* psi_shared; // [nS, d]
  const float* psi_text;   // [nT, d] text-only atoms
  int nI = 0, nS = 0, nT = 0, d = 0;
  double p_active = 0.01;  // 1 - sparsity
  double noise = 0.05;     // observation noise std
  bool identical_shared = false;  // shared concepts: one magnitude for both modalities (paper) or two (code)
  bool l2_normalize = true;       // rows / (||row|| + 1e-12)
};

// N paired rows (x: image [N, d], y: text [N, d]); row r uses its own generator stream (seed, r), so the result
// does not depend on the thread count. Each block (image-only, text-only, shared) activates every concept with
// probability p_active and at least one; magnitudes Exp(1).
void sample_pairs(const SynthSampleSpec& s, long N, uint64_t seed, float* x, float* y);

// For every row g_i of G ([n, d]): the row j of W ([m, d]) with the largest cosine cos(w_j, g_i) (signed; ties
// to the smaller j) and that cosine. Zero rows of W have cosine 0.
void argmax_cosine(const float* W, int m, const float* G, int n, int d, int32_t* idx, float* cos);

}  // namespace cmsae
