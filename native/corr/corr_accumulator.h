// Streaming, exact co-activation statistics of two paired sparse code sets, for Pearson correlation:
// per latent n, sum a, sum a^2, fire count, min/max of nonzero values; per pair S_ij = sum_n a_i b_j (float64).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../common/aligned.h"
#include "device_corr.h"

namespace cmsae {

struct CorrSide {
  std::vector<double> sum, sumsq, fires;
  std::vector<float> min_nz, max_nz;  // extremes of the nonzero values (constancy test)
  void resize(int m);
};

struct CorrResult {
  std::vector<double> mean, std;     // per side (population std)
  std::vector<uint8_t> alive;        // fires >= min_fires and not constant
};

// Mean, population std and alive mask (fires >= min_fires and not constant) of one side's moments over `rows` rows.
void latent_stats(const CorrSide& s, long long rows, double min_fires, CorrResult& out);

// Both sides' statistics for one min_fires.
struct CorrStats {
  CorrResult a, b;
};

class CorrAccumulator {
 public:
  CorrAccumulator(int mA, int mB);
  // A new accumulator of mA x mB co-moments (ERR_ARG beyond 2^28 latents a side or 2^32 pairs), accumulating on
  // the CUDA device when `cuda` (ERR_CUDA_UNAVAILABLE without one).
  static std::unique_ptr<CorrAccumulator> create(long long mA, long long mB, bool cuda);

  int mA() const { return mA_; }
  int mB() const { return mB_; }
  long long n() const { return n_; }

  // Adds `rows` paired rows of codes (A: [rows, kA], B: [rows, kB]); a value of 0 means "not active".
  // Validates everything (indices in range, no duplicate active index in a row, finite values) first.
  void add(const int32_t* ai, const float* av, int kA, const int32_t* bi, const float* bv, int kB, long rows);
  // Accumulates the pair products on the CUDA device (ERR_CUDA_UNAVAILABLE without one) or back on the CPU.
  void use_device(bool cuda);
  bool on_device() const { return dev_ != nullptr; }
  // this += other (same mA, mB); equal to one pass over both streams up to float64 rounding.
  void merge(CorrAccumulator& other);

  // Per-side statistics; alive = fires >= min_fires and the latent is not constant.
  void side_stats(bool side_b, double min_fires, CorrResult& out);
  CorrStats stats(double min_fires);
  // Pearson correlation [mA, mB] in float32 or float64; 0 wherever either latent is not alive.
  void correlation(const CorrResult& a, const CorrResult& b, float* out);
  void correlation(const CorrResult& a, const CorrResult& b, double* out);
  // The same with the statistics of min_fires.
  void correlation(double min_fires, float* out);
  void correlation(double min_fires, double* out);
  // The k largest correlations of each row (over alive columns) and of each column (over alive rows),
  // best first, without materializing the dense matrix. Missing entries have index -1.
  void top_correlations(const CorrResult& a, const CorrResult& b, int k, int32_t* row_idx, float* row_val,
                        int32_t* col_idx, float* col_val);
  void top_correlations(double min_fires, int k, int32_t* row_idx, float* row_val, int32_t* col_idx, float* col_val);

  const CorrSide& side(bool b) const { return b ? B_ : A_; }
  // Versioned binary state with a trailing checksum64 (format 2); deserialize also reads format 1 and refuses
  // (ERR_FORMAT) blobs that are truncated, corrupt or whose statistics no codes could produce.
  std::vector<uint8_t> serialize();
  static CorrAccumulator deserialize(const uint8_t* data, size_t size);

 private:
  // Applies the buffered rows to S_ (corr_flush.cc): A nonzeros grouped by latent (group_by_latent), then each
  // thread updates its band of S's rows (apply_grouped).
  void flush();
  struct LatentGroups {
    std::vector<int64_t> start;  // [mA + 1]: latent i's entries are ent_[start[i], start[i+1])
    std::vector<double> work;    // [mA + 1]: prefix sums of the B nonzeros each latent's entries update
  };
  LatentGroups group_by_latent(long rows);
  void apply_grouped(const LatentGroups& groups);
  void check_state() const;  // the range checks of deserialize
  void clear_buffers();  // drops the rows buffered for flush()
  template <class T>
  void correlation_into(const CorrResult& a, const CorrResult& b, T* out);
  double pair_moment(int i, int j) const { return S_[static_cast<size_t>(i) * mB_ + j]; }
  int mA_, mB_;
  long long n_ = 0;
  CorrSide A_, B_;
  AlignedBuffer<double> S_;  // [mA, mB] co-moments (dense float64)
  // Rows buffered until a chunk is large enough to apply efficiently (compacted nonzeros).
  RawVector<int64_t> bufA_off_, bufB_off_;
  RawVector<int32_t> bufA_idx_;
  RawVector<float> bufA_val_;
  // B nonzeros as (index, value) records: the update reads a whole B row per A nonzero from scattered
  // places, so fewer bytes per row is fewer cache lines (6-byte records while mB <= 65536).
#pragma pack(push, 1)
  struct BRec16 {
    uint16_t idx;
    float val;
  };
#pragma pack(pop)
  struct BRec32 {
    int32_t idx;
    float val;
  };
  RawVector<BRec16> bufB16_;
  RawVector<BRec32> bufB32_;
  // A nonzeros grouped by latent (flush scratch): the value and its row's B nonzeros.
  struct BEntry {
    int64_t b_off;
    int32_t b_len;
    float a;
  };
  RawVector<BEntry> ent_;
  std::unique_ptr<DeviceCorr> dev_;  // CUDA co-moments (drained into S_ by flush())
};

}  // namespace cmsae
