#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace cmsae {
namespace {

constexpr int kMaxThreads = 1024;

thread_local bool tls_in_region = false;
thread_local int tls_worker = 0;

class Pool {
 public:
  Pool() { resize(initial_threads()); }
  ~Pool() { stop_workers(); }

  int size() {
    // Inside a region (its caller holds region_mutex_, so threads_ cannot change): no lock, which would deadlock.
    if (tls_in_region) return threads_;
    std::lock_guard<std::mutex> region(region_mutex_);
    return threads_;
  }

  void resize(int n) {
    n = std::max(1, std::min(n, kMaxThreads));
    std::lock_guard<std::mutex> region(region_mutex_);
    if (n == threads_) return;
    stop_workers();
    threads_ = n;
    stopping_ = false;
    const unsigned long long start_generation = generation_;
    // The system may refuse threads (limits): run with the ones it gave rather than abort the process.
    for (int i = 1; i < n; ++i) {
      try {
        workers_.emplace_back([this, start_generation, i] { worker_loop(start_generation, i); });
      } catch (const std::system_error&) {
        threads_ = i;
        break;
      }
    }
  }

  void run(int n_tasks, const std::function<void(int, int)>& fn) {
    if (n_tasks <= 0) return;
    if (tls_in_region || n_tasks == 1) {
      const int w = tls_in_region ? tls_worker : 0;
      for (int t = 0; t < n_tasks; ++t) fn(t, w);
      return;
    }
    std::lock_guard<std::mutex> region(region_mutex_);
    if (threads_ == 1) {
      tls_in_region = true;
      tls_worker = 0;
      try {
        for (int t = 0; t < n_tasks; ++t) fn(t, 0);
      } catch (...) {
        tls_in_region = false;
        throw;
      }
      tls_in_region = false;
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &fn;
      n_tasks_ = n_tasks;
      next_task_.store(0);
      active_workers_ = static_cast<int>(workers_.size());
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    work(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return active_workers_ == 0; });
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  // CMSAE_THREADS when it is a whole number in [1, kMaxThreads] (the TypeScript loader refuses anything else
  // with ERR_ARG before the pool starts), else one thread per core.
  static int initial_threads() {
    if (const char* env = std::getenv("CMSAE_THREADS")) {
      char* end = nullptr;
      errno = 0;
      const long n = std::strtol(env, &end, 10);
      while (end && std::isspace(static_cast<unsigned char>(*end))) ++end;
      if (errno == 0 && end != env && end && *end == '\0' && n >= 1 && n <= kMaxThreads) return static_cast<int>(n);
    }
    unsigned hc = std::thread::hardware_concurrency();
    return hc == 0 ? 1 : static_cast<int>(std::min<unsigned>(hc, kMaxThreads));
  }

  void work(int worker) {
    tls_in_region = true;
    tls_worker = worker;
    for (;;) {
      int t = next_task_.fetch_add(1);
      if (t >= n_tasks_) break;
      try {
        (*job_)(t, worker);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
    tls_in_region = false;
  }

  void worker_loop(unsigned long long seen, int worker) {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
      }
      work(worker);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (--active_workers_ == 0) done_.notify_all();
      }
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::mutex region_mutex_;  // one parallel region at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  int threads_ = 0;
  bool stopping_ = false;
  unsigned long long generation_ = 0;
  const std::function<void(int, int)>* job_ = nullptr;
  int n_tasks_ = 0;
  std::atomic<int> next_task_{0};
  int active_workers_ = 0;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: worker threads may outlive static destruction order
  return *p;
}

}  // namespace

int num_threads() { return pool().size(); }
void set_num_threads(int n) { pool().resize(n); }
void parallel_for(int n_tasks, const std::function<void(int)>& fn) {
  pool().run(n_tasks, [&fn](int task, int) { fn(task); });
}
void parallel_for_workers(int n_tasks, const std::function<void(int, int)>& fn) { pool().run(n_tasks, fn); }

}  // namespace cmsae
