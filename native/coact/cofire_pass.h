// The co-firing rows of the correlation, re-formed from the codes: for an A latent i, S_ij = sum over the rows r
// where i fires of a_ri * b_rj (float64 products added in global row order) for the B latents j that co-fire
// with it. A pass over all A latents costs N*K^2 updates however it is cut, and holds one mB-long row per thread.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "../common/aligned.h"
#include "code_store.h"

namespace cmsae::coact {

// One A nonzero: its value and its row's B nonzeros (records [b_off, b_off + b_len) of CofireLayout::brec).
struct AEntry {
  int64_t b_off;
  int32_t b_len;
  float a;
};
struct BRec {
  int32_t idx;
  float val;
};

// The codes arranged for the pass: A nonzeros grouped by latent (row order within a latent), B rows in order.
struct CofireLayout {
  int mA = 0, mB = 0;
  int64_t rows = 0;
  std::vector<int64_t> start;  // [mA + 1]: latent i's entries are ent[start[i], start[i + 1])
  RawVector<AEntry> ent;  // not zeroed: every entry is written
  RawVector<BRec> brec;
  std::vector<double> work;  // [mA]: B nonzeros latent i's pass reads (its updates)
};
CofireLayout build_cofire_layout(const CodeStore& store);
// Bytes build_cofire_layout allocates for these counts.
double cofire_layout_bytes(long long mA, long long rows, long long nnz_a, long long nnz_b);
// Bytes the pass holds per thread for mB B latents.
inline double cofire_scratch_bytes(long long mB) { return 13.0 * static_cast<double>(mB); }

// One re-formed row. s is a dense [mB] view: S_ij where j co-fires with i, 0 elsewhere. A sparse row lists its
// co-firing B latents in `cols` (unordered); a dense row (one whose pass reads more than mB/4 records) has
// cols == nullptr and every j must be looked at.
struct CofireRow {
  int32_t latent;
  const double* s;
  const int32_t* cols;
  int n_cols;
  bool dense() const { return cols == nullptr; }
};

// Calls visit(worker, row) once for every A latent in `latents`, in parallel and in no fixed order; the row is
// valid until visit returns. worker is in [0, num_threads()).
void for_each_cofire_row(const CofireLayout& L, const std::vector<int32_t>& latents,
                         const std::function<void(int worker, const CofireRow& row)>& visit);

}  // namespace cmsae::coact
