// A small fork-join thread pool: run(n_tasks, fn) calls fn(task) for every task in [0, n_tasks) on the
// pool's threads plus the caller, and returns when all are done. One parallel region at a time; a
// region started from inside a task runs inline on the calling thread.
#pragma once
#include <functional>

namespace cmsae {

// Number of threads parallel regions use (>= 1). Default: CMSAE_THREADS, else hardware concurrency.
int num_threads();
// Change the thread count (n >= 1). Waits for a running region to finish first.
void set_num_threads(int n);
// Run fn(task) for task in [0, n_tasks). Exceptions thrown by tasks are rethrown here (the first one).
void parallel_for(int n_tasks, const std::function<void(int)>& fn);

// Split [0, n) into `parts` contiguous ranges of near-equal size; returns the begin of range i.
inline long long split_begin(long long n, int parts, int i) { return n * i / parts; }

}  // namespace cmsae
