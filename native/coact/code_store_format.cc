// The code store's binary form (a shard): magic "CMSAECS1", header {version, mA, mB, segments, tag bytes}, the
// tag, then per segment {row_start, rows, nnzA, nnzB} (int64) and its A offsets/indices/values and B offsets/
// indices/values, then checksum64 of every byte before it. Reading checks the checksum first, then every range.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "../common/byte_io.h"
#include "../common/checksum.h"
#include "../common/errors.h"
#include "code_store.h"

namespace cmsae {
namespace {

constexpr char kMagic[8] = {'C', 'M', 'S', 'A', 'E', 'C', 'S', '1'};
constexpr uint32_t kFormatVersion = 1;

// One side of a segment read back: offsets from 0 to nnz, indices in [0, m), finite nonzero values, no latent
// twice in a row.
void check_side(const std::vector<int64_t>& off, const std::vector<int32_t>& idx, const std::vector<float>& val, int m,
                const char* side) {
  const std::string what = std::string("code store shard: side ") + side + " ";
  if (off.front() != 0 || off.back() != static_cast<int64_t>(idx.size())) fail("ERR_FORMAT", what + "offsets do not span its nonzeros");
  std::vector<int64_t> stamp(m, -1);
  for (size_t r = 0; r + 1 < off.size(); ++r) {
    if (off[r + 1] < off[r]) fail("ERR_FORMAT", what + "offsets decrease at row " + std::to_string(r));
    for (int64_t q = off[r]; q < off[r + 1]; ++q) {
      const int32_t j = idx[q];
      if (j < 0 || j >= m) fail("ERR_FORMAT", what + "index " + std::to_string(j) + " is outside [0, " + std::to_string(m) + ")");
      if (stamp[j] == static_cast<int64_t>(r)) fail("ERR_FORMAT", what + "names latent " + std::to_string(j) + " twice in row " + std::to_string(r));
      stamp[j] = static_cast<int64_t>(r);
      if (!std::isfinite(val[q]) || val[q] == 0.f) fail("ERR_FORMAT", what + "holds a zero or non-finite value");
    }
  }
}

}  // namespace

std::vector<uint8_t> CodeStore::serialize() const {
  std::vector<uint8_t> out;
  out.reserve(64 + tag_.size() + bytes() + segs_.size() * 32);
  append_bytes(out, kMagic, 8);
  // Empty segments are left out (an empty store keeps its own, so that its rowStart survives).
  std::vector<const CodeSegment*> keep;
  for (const CodeSegment& s : segs_)
    if (s.rows > 0) keep.push_back(&s);
  if (keep.empty()) keep.push_back(&segs_[own_]);
  const uint32_t header[5] = {kFormatVersion, static_cast<uint32_t>(mA_), static_cast<uint32_t>(mB_),
                              static_cast<uint32_t>(keep.size()), static_cast<uint32_t>(tag_.size())};
  append_bytes(out, header, 5);
  append_bytes(out, tag_.data(), tag_.size());
  for (const CodeSegment* sp : keep) {
    const CodeSegment& s = *sp;
    const int64_t h[4] = {s.row_start, s.rows, static_cast<int64_t>(s.a_idx.size()), static_cast<int64_t>(s.b_idx.size())};
    append_bytes(out, h, 4);
    append_bytes(out, s.a_off.data(), s.a_off.size());
    append_bytes(out, s.a_idx.data(), s.a_idx.size());
    append_bytes(out, s.a_val.data(), s.a_val.size());
    append_bytes(out, s.b_off.data(), s.b_off.size());
    append_bytes(out, s.b_idx.data(), s.b_idx.size());
    append_bytes(out, s.b_val.data(), s.b_val.size());
  }
  const uint64_t sum = checksum64(out.data(), out.size());
  append_bytes(out, &sum, 1);
  return out;
}

CodeStore CodeStore::deserialize(const uint8_t* data, size_t size) {
  if (size < 8 || std::memcmp(data, kMagic, 8) != 0)
    fail("ERR_FORMAT", "not a crossmodal-sae code store shard (bad magic): write shards with CoactivationCodes.writeShard or `cmsae correlate`");
  if (size < 8 + 20 + 8) fail("ERR_FORMAT", "code store shard is truncated");
  uint64_t stored;
  std::memcpy(&stored, data + size - 8, 8);
  ByteReader rd{data + 8, data + size - 8, "code store shard"};
  const uint32_t version = rd.one<uint32_t>();
  if (version != kFormatVersion)
    fail("ERR_FORMAT", "code store shard format version " + std::to_string(version) + " is not supported (this build reads version " +
                           std::to_string(kFormatVersion) + "): rewrite the shard with this version");
  if (checksum64(data, size - 8) != stored) fail("ERR_FORMAT", "code store shard checksum mismatch: the file is corrupt or truncated; rewrite it");
  CodeStore st;
  const uint32_t mA = rd.one<uint32_t>(), mB = rd.one<uint32_t>(), nseg = rd.one<uint32_t>(), tag_len = rd.one<uint32_t>();
  if (mA < 1 || mB < 1 || mA > (1u << 28) || mB > (1u << 28) || nseg < 1) fail("ERR_FORMAT", "code store shard header is out of range");
  st.mA_ = static_cast<int>(mA);
  st.mB_ = static_cast<int>(mB);
  st.tag_.resize(tag_len);
  rd.get(st.tag_.data(), tag_len);
  for (uint32_t q = 0; q < nseg; ++q) {
    CodeSegment s;
    const int64_t row_start = rd.one<int64_t>(), rows = rd.one<int64_t>(), nza = rd.one<int64_t>(), nzb = rd.one<int64_t>();
    const int64_t left = static_cast<int64_t>(rd.end - rd.p);
    if (row_start < 0 || rows < 0 || rows >= (int64_t(1) << 31) || nza < 0 || nzb < 0 || nza > left / 8 || nzb > left / 8 || rows > left / 16)
      fail("ERR_FORMAT", "code store shard segment header is out of range");
    s.row_start = row_start;
    s.rows = rows;
    s.a_off.resize(rows + 1);
    s.b_off.resize(rows + 1);
    s.a_idx.resize(nza);
    s.a_val.resize(nza);
    s.b_idx.resize(nzb);
    s.b_val.resize(nzb);
    rd.get(s.a_off.data(), s.a_off.size());
    rd.get(s.a_idx.data(), s.a_idx.size());
    rd.get(s.a_val.data(), s.a_val.size());
    rd.get(s.b_off.data(), s.b_off.size());
    rd.get(s.b_idx.data(), s.b_idx.size());
    rd.get(s.b_val.data(), s.b_val.size());
    check_side(s.a_off, s.a_idx, s.a_val, st.mA_, "A");
    check_side(s.b_off, s.b_idx, s.b_val, st.mB_, "B");
    st.segs_.push_back(std::move(s));
  }
  if (rd.p != rd.end) fail("ERR_FORMAT", "code store shard has trailing bytes");
  std::vector<const CodeSegment*> all;
  int64_t end_row = 0;
  for (const CodeSegment& s : st.segs_) {
    all.push_back(&s);
    end_row = std::max(end_row, s.row_start + s.rows);
  }
  st.check_disjoint(all);
  // Rows added after reading continue after the last row read.
  if (st.segs_.size() == 1 && st.segs_[0].rows == 0) {
    st.own_ = 0;
  } else {
    st.segs_.emplace_back();
    st.segs_.back().row_start = end_row;
    st.own_ = st.segs_.size() - 1;
  }
  return st;
}

}  // namespace cmsae
