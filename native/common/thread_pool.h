// A small fork-join thread pool: run(n_tasks, fn) calls fn(task) for every task in [0, n_tasks) on the
// pool's threads plus the caller, and returns when all are done. One parallel region at a time; a
// region started from inside a task runs inline on the calling thread.
#pragma once
#include <functional>

namespace cmsae {

// Number of threads parallel regions use (>= 1). Default: CMSAE_THREADS, else hardware concurrency. Safe to call
// from inside a task.
int num_threads();
// Change the thread count (n >= 1). Waits for a running region to finish first.
void set_num_threads(int n);
// Run fn(task) for task in [0, n_tasks). Exceptions thrown by tasks are rethrown here (the first one).
// Tasks are handed out dynamically (in increasing order) to whichever thread is free.
void parallel_for(int n_tasks, const std::function<void(int)>& fn);
// Same, with the index in [0, num_threads()) of the thread running each task (the caller is 0), so
// tasks can accumulate into per-thread state. A nested region runs inline with the caller's index.
void parallel_for_workers(int n_tasks, const std::function<void(int task, int worker)>& fn);

// Split [0, n) into `parts` contiguous ranges of near-equal size; returns the begin of range i.
inline long long split_begin(long long n, int parts, int i) { return n * i / parts; }

}  // namespace cmsae
