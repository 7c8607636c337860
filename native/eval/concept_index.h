// Concept-index statistics from sparse codes in the aligned index space: fire counts, top-N rows per latent, and
// each latent's top-P partners on the other side by Pearson correlation over the corpus pairs.
#pragma once
#include <cstdint>

#include "retrieval.h"

namespace cmsae {

// Outputs (caller-allocated): fire_* [m]; top_*_rows/values [m, top_n] (row -1, value 0 past a latent's last
// active row); matched [m]; *_partners / *_partner_corr [m, partners] (index -1, corr NaN past the last).
struct ConceptIndexOutput {
  int32_t* fire_image;
  int32_t* fire_text;
  int32_t* top_image_rows;
  float* top_image_values;
  int32_t* top_text_rows;
  float* top_text_values;
  double* matched;
  int32_t* image_partners;
  double* image_partner_corr;
  int32_t* text_partners;
  double* text_partner_corr;
};

// Over the n = text.rows pairs (text row t, image row r(t) = image_of_text ? image_of_text[t] : t):
//   corr_ij = (n Sxy_ij - Sx_i Sy_j) / sqrt((n Sxx_i - Sx_i^2)(n Syy_j - Sy_j^2)), clamped to [-1, 1],
// defined only where both variances are > 0 (a latent that never fires has none). Sx, Sxx, Sy, Syy are summed over t
// ascending; Sxy_ij over the image rows r where latent i is active (ascending), then the texts of r (ascending): the
// order of the TypeScript reference, so the results agree bit for bit. The co-moments are held one image latent
// (a band of one row of m sums per thread) at a time, never as an m x m matrix. Top rows: by value descending, ties
// by ascending row; partners: by correlation descending, ties by ascending index. A slot is active when its value is
// nonzero; a row naming a latent twice is ERR_ARG, an index outside [0, m) ERR_RANGE, NaN/Inf ERR_NONFINITE.
void concept_index(const CodeRows& image, const CodeRows& text, const int32_t* image_of_text, long m, int top_n, int partners,
                   const ConceptIndexOutput& out);

}  // namespace cmsae
