// Bounded "keep the best c" candidate lists, one per row, ordered by (value desc, index asc).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace cmsae {

struct Candidate {
  float value;
  int32_t index;
};

// a ranks before b: larger value first, then smaller index (the deterministic tie rule).
inline bool ranks_before(const Candidate& a, const Candidate& b) {
  return a.value > b.value || (a.value == b.value && a.index < b.index);
}

// Min-heap of at most `cap` candidates whose root is the worst kept one.
class CandidateHeap {
 public:
  CandidateHeap(Candidate* storage, int cap) : h_(storage), cap_(cap) {}
  int size() const { return n_; }
  bool full() const { return n_ == cap_; }
  const Candidate& worst() const { return h_[0]; }
  const Candidate* data() const { return h_; }
  // Offers c; keeps it if the heap has room or c ranks before the current worst.
  void offer(Candidate c) {
    if (n_ < cap_) {
      int i = n_++;
      while (i > 0) {
        int parent = (i - 1) / 2;
        if (!ranks_before(h_[parent], c)) break;
        h_[i] = h_[parent];
        i = parent;
      }
      h_[i] = c;
      return;
    }
    if (!ranks_before(c, h_[0])) return;
    int i = 0;
    for (;;) {
      int l = 2 * i + 1;
      if (l >= n_) break;
      int worst_child = l;
      if (l + 1 < n_ && ranks_before(h_[l], h_[l + 1])) worst_child = l + 1;
      if (!ranks_before(c, h_[worst_child])) break;
      h_[i] = h_[worst_child];
      i = worst_child;
    }
    h_[i] = c;
  }

 private:
  Candidate* h_;
  int cap_;
  int n_ = 0;
};

// Sorts candidates best-first, keeps the first `k`, and writes them to idx/val. Missing slots (fewer
// than k candidates) get value 0 and the smallest latent indices not already used, in ascending order.
void finalize_row(std::vector<Candidate>& cands, int k, int m, int32_t* idx, float* val);

}  // namespace cmsae
