// Indexed 4-ary min-heap of columns keyed by (distance, matched?, column): the Dijkstra queue of the sparse
// augmenting-path search (decrease-key; ties prefer a free column, then the smaller index).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace cmsae::lap {

// Indexed 4-ary min-heap of columns keyed by (distance, matched?, column) with decrease-key: ties prefer a
// free column, then the smaller index (deterministic). Keys live in the heap slots (no indirection).
class ColumnHeap {
 public:
  explicit ColumnHeap(long nc) : pos_(nc, -1) {}
  bool empty() const { return heap_.empty(); }
  void clear() {
    for (const Slot& s : heap_) pos_[s.col] = -1;
    heap_.clear();
  }
  // Inserts column c with distance d or lowers its key to d.
  void push_or_decrease(int32_t c, double d, bool matched) {
    long i = pos_[c];
    if (i < 0) {
      i = static_cast<long>(heap_.size());
      heap_.push_back({});
    }
    sift_up(i, Slot{d, (static_cast<int64_t>(matched) << 32) | static_cast<uint32_t>(c), c});
  }
  int32_t pop() {
    const int32_t top = heap_[0].col;
    pos_[top] = -1;
    const Slot last = heap_.back();
    heap_.pop_back();
    if (!heap_.empty()) sift_down(0, last);
    return top;
  }

 private:
  struct Slot {
    double dist;
    int64_t tie;  // matched << 32 | column
    int32_t col;
  };
  static bool less(const Slot& a, const Slot& b) { return a.dist < b.dist || (a.dist == b.dist && a.tie < b.tie); }
  void place(long i, const Slot& s) {
    heap_[i] = s;
    pos_[s.col] = static_cast<int32_t>(i);
  }
  void sift_up(long i, const Slot& s) {
    while (i > 0) {
      const long parent = (i - 1) / 4;
      if (!less(s, heap_[parent])) break;
      place(i, heap_[parent]);
      i = parent;
    }
    place(i, s);
  }
  void sift_down(long i, const Slot& s) {
    const long n = static_cast<long>(heap_.size());
    for (;;) {
      const long first = 4 * i + 1;
      if (first >= n) break;
      long best = first;
      const long last = std::min(n, first + 4);
      for (long c = first + 1; c < last; ++c)
        if (less(heap_[c], heap_[best])) best = c;
      if (!less(heap_[best], s)) break;
      place(i, heap_[best]);
      i = best;
    }
    place(i, s);
  }
  std::vector<Slot> heap_;
  std::vector<int32_t> pos_;
};

}  // namespace cmsae::lap
