// N-API glue for the evaluation kernels (native/eval/): argument checks on the JS thread, the kernels (which
// validate values) under guarded() or on a PromiseWorker.
#include "eval_wrap.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../eval/histogram.h"
#include "../eval/monosemanticity.h"
#include "../eval/ranking.h"
#include "../eval/retrieval.h"
#include "args.h"
#include "async.h"

namespace cmsae::binding {
namespace {

// Integer argument in [lo, hi] (count_arg checks the type, integrality and the lower bound).
long long int_arg(const Napi::CallbackInfo& info, int i, const char* name, long long lo, long long hi) {
  const long long v = count_arg(info.Env(), info[i], name, lo);
  if (v > hi) throw_js(info.Env(), "ERR_ARG", std::string(name) + " must be <= " + std::to_string(hi));
  return v;
}

constexpr long long kMaxRows = 0x7fffffffLL;

// A kernel's two entry points from its three parts (Parse: JS values to a plan on the JS thread, pinning the
// arrays it views; Run: the kernel; Convert: the result to JS values): Sync runs it under guarded(), Async on a
// PromiseWorker.
template <class Plan, class Result, Plan (*Parse)(const Napi::CallbackInfo&, std::vector<Napi::Value>&),
          void (*Run)(const Plan&, Result&), Napi::Value (*Convert)(Napi::Env, const Result&)>
struct Entry {
  static Napi::Value Sync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<Napi::Value> pins;
    const Plan p = Parse(info, pins);
    Result r;
    guarded(env, [&] { Run(p, r); });
    return Convert(env, r);
  }
  static Napi::Value Async(const Napi::CallbackInfo& info) {
    std::vector<Napi::Value> pins;
    auto plan = std::make_shared<Plan>(Parse(info, pins));
    auto result = std::make_shared<Result>();
    auto* w = new PromiseWorker(
        info.Env(), [plan, result] { Run(*plan, *result); }, [result](Napi::Env e) -> Napi::Value { return Convert(e, *result); },
        nullptr, pins);
    w->Queue();
    return w->promise();
  }
};

// ---- retrieval ------------------------------------------------------------------------------------

struct RetrievalPlan {
  CodeRows queries{}, items{};
  GroundTruthRows gt{};
  long m = 0;
};
struct RetrievalResult {
  std::vector<int32_t> ranks, ties;
  long m = 0;
};

// retrievalRanks(qIdx, qVal, qRows, qK, iIdx, iVal, iRows, iK, gtOffsets, gtItems, m)
RetrievalPlan parse_retrieval(const Napi::CallbackInfo& info, std::vector<Napi::Value>& pins) {
  Napi::Env env = info.Env();
  RetrievalPlan p;
  const long long qr = int_arg(info, 2, "queries.rows", 1, kMaxRows), qk = int_arg(info, 3, "queries.k", 1, 1 << 20);
  const long long ir = int_arg(info, 6, "items.rows", 1, kMaxRows), ik = int_arg(info, 7, "items.k", 1, 1 << 20);
  Napi::Int32Array qi = int32_arg(env, info[0], "queries.indices", static_cast<size_t>(qr * qk));
  Napi::Float32Array qv = float32_arg(env, info[1], "queries.values", static_cast<size_t>(qr * qk));
  Napi::Int32Array ii = int32_arg(env, info[4], "items.indices", static_cast<size_t>(ir * ik));
  Napi::Float32Array iv = float32_arg(env, info[5], "items.values", static_cast<size_t>(ir * ik));
  Napi::Int32Array go = int32_arg(env, info[8], "gt.offsets", static_cast<size_t>(qr + 1));
  Napi::Int32Array gi = int32_arg(env, info[9], "gt.items", 0);
  p.m = static_cast<long>(int_arg(info, 10, "m", 0, 1LL << 30));
  p.queries = {qi.Data(), qv.Data(), static_cast<long>(qr), static_cast<int>(qk)};
  p.items = {ii.Data(), iv.Data(), static_cast<long>(ir), static_cast<int>(ik)};
  p.gt = {go.Data(), gi.Data(), static_cast<long>(gi.ElementLength())};
  pins = {qi, qv, ii, iv, go, gi};
  return p;
}

void run_retrieval(const RetrievalPlan& p, RetrievalResult& r) {
  r.ranks.resize(p.queries.rows);
  r.ties.resize(p.queries.rows);
  r.m = retrieval_ranks(p.queries, p.items, p.gt, p.m, r.ranks.data(), r.ties.data());
}

Napi::Value retrieval_object(Napi::Env env, const RetrievalResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("ranks", copy_out<int32_t, Napi::Int32Array>(env, r.ranks));
  o.Set("ties", copy_out<int32_t, Napi::Int32Array>(env, r.ties));
  o.Set("m", static_cast<double>(r.m));
  return o;
}

// ---- ranking --------------------------------------------------------------------------------------

struct RankingPlan {
  const float* queries = nullptr;
  const float* items = nullptr;
  long n_queries = 0, n_items = 0;
  int d = 0;
  const uint8_t* relevant = nullptr;
  std::vector<int32_t> ks;
};
struct RankingResult {
  std::vector<double> ap, rr, ndcg10, median, precision, recall;
};

// rankingMetrics(queries, qRows, items, iRows, d, relevant, ks)
RankingPlan parse_ranking(const Napi::CallbackInfo& info, std::vector<Napi::Value>& pins) {
  Napi::Env env = info.Env();
  RankingPlan p;
  p.n_queries = static_cast<long>(int_arg(info, 1, "queries.rows", 1, kMaxRows));
  p.n_items = static_cast<long>(int_arg(info, 3, "items.rows", 1, kMaxRows));
  p.d = static_cast<int>(int_arg(info, 4, "d", 1, 1 << 20));
  Napi::Float32Array q = float32_arg(env, info[0], "queries.data", static_cast<size_t>(p.n_queries) * p.d);
  Napi::Float32Array x = float32_arg(env, info[2], "items.data", static_cast<size_t>(p.n_items) * p.d);
  Napi::Uint8Array rel = typed_arg<Napi::Uint8Array>(env, info[5], "relevant", static_cast<size_t>(p.n_items));
  Napi::Int32Array ks = int32_arg(env, info[6], "ks", 0);
  if (ks.ElementLength() > 4096) throw_js(env, "ERR_ARG", "at most 4096 values of K");
  p.ks.assign(ks.Data(), ks.Data() + ks.ElementLength());
  for (const int32_t k : p.ks)
    if (k < 1) throw_js(env, "ERR_ARG", "ks must be integers >= 1, got " + std::to_string(k));
  p.queries = q.Data();
  p.items = x.Data();
  p.relevant = rel.Data();
  pins = {q, x, rel};
  return p;
}

void run_ranking(const RankingPlan& p, RankingResult& r) {
  const size_t Q = static_cast<size_t>(p.n_queries), nk = p.ks.size();
  r.ap.resize(Q);
  r.rr.resize(Q);
  r.ndcg10.resize(Q);
  r.median.resize(Q);
  r.precision.resize(nk * Q);
  r.recall.resize(nk * Q);
  const RankingOutput out{r.ap.data(), r.rr.data(), r.ndcg10.data(), r.median.data(), r.precision.data(), r.recall.data()};
  ranking_metrics(p.queries, p.n_queries, p.items, p.n_items, p.d, p.relevant, p.ks.data(), static_cast<int>(nk), out);
}

Napi::Value ranking_object(Napi::Env env, const RankingResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("ap", copy_out<double, Napi::Float64Array>(env, r.ap));
  o.Set("rr", copy_out<double, Napi::Float64Array>(env, r.rr));
  o.Set("ndcg10", copy_out<double, Napi::Float64Array>(env, r.ndcg10));
  o.Set("medianRank", copy_out<double, Napi::Float64Array>(env, r.median));
  o.Set("precisionAt", copy_out<double, Napi::Float64Array>(env, r.precision));
  o.Set("recallAt", copy_out<double, Napi::Float64Array>(env, r.recall));
  return o;
}

// ---- decoder-distance histogram -------------------------------------------------------------------

// decoderDistanceHistogram(imageDec, mImage, textDec, mText, d, corr, aliveImage, aliveText, corrEdges, distBins)
//   -> { counts: Float64Array [(edges-1) * distBins], pairs, sum: Float64Array [edges-1] }
Napi::Value distance_histogram_js(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const long long mi = int_arg(info, 1, "imageDec.rows", 1, kMaxRows), mt = int_arg(info, 3, "textDec.rows", 1, kMaxRows);
  const int d = static_cast<int>(int_arg(info, 4, "d", 1, 1 << 20));
  const int bins = static_cast<int>(int_arg(info, 9, "distBins", 1, 1 << 24));
  Napi::Float32Array a = float32_arg(env, info[0], "imageDec.data", static_cast<size_t>(mi) * d);
  Napi::Float32Array t = float32_arg(env, info[2], "textDec.data", static_cast<size_t>(mt) * d);
  Napi::Float32Array corr = float32_arg(env, info[5], "corr.data", static_cast<size_t>(mi) * static_cast<size_t>(mt));
  Napi::Uint8Array aa = typed_arg<Napi::Uint8Array>(env, info[6], "aliveImage", static_cast<size_t>(mi));
  Napi::Uint8Array at = typed_arg<Napi::Uint8Array>(env, info[7], "aliveText", static_cast<size_t>(mt));
  Napi::Float64Array edges = float64_arg(env, info[8], "corrEdges", 0);
  if (edges.ElementLength() < 2 || edges.ElementLength() > (1 << 16))
    throw_js(env, "ERR_ARG", "corrEdges needs between 2 and 65536 entries");
  const int n_edges = static_cast<int>(edges.ElementLength());
  if (static_cast<double>(n_edges - 1) * bins > 1e8) throw_js(env, "ERR_ARG", "(corrEdges - 1) x distBins must be <= 1e8 bins");
  Napi::Float64Array counts = Napi::Float64Array::New(env, static_cast<size_t>(n_edges - 1) * bins);
  Napi::Float64Array pairs = Napi::Float64Array::New(env, n_edges - 1);
  Napi::Float64Array sum = Napi::Float64Array::New(env, n_edges - 1);
  guarded(env, [&] {
    decoder_distance_histogram(a.Data(), static_cast<long>(mi), t.Data(), static_cast<long>(mt), d, corr.Data(), aa.Data(),
                               at.Data(), edges.Data(), n_edges, bins, counts.Data(), pairs.Data(), sum.Data());
  });
  Napi::Object o = Napi::Object::New(env);
  o.Set("counts", counts);
  o.Set("pairs", pairs);
  o.Set("sum", sum);
  return o;
}

// ---- monosemanticity -------------------------------------------------------------------------------

struct MonosemanticityPlan {
  CodeRows codes{};
  const float* external = nullptr;
  int d = 0;
  long m = 0, min_fires = 0;
};
struct MonosemanticityResult {
  std::vector<double> scores, fires;
};

// monosemanticityScores(idx, val, rows, k, external, d, m, minFires)
MonosemanticityPlan parse_monosemanticity(const Napi::CallbackInfo& info, std::vector<Napi::Value>& pins) {
  Napi::Env env = info.Env();
  MonosemanticityPlan p;
  const long long rows = int_arg(info, 2, "codes.rows", 0, kMaxRows), k = int_arg(info, 3, "codes.k", 1, 1 << 20);
  p.d = static_cast<int>(int_arg(info, 5, "external.cols", 0, 1 << 20));
  p.m = static_cast<long>(int_arg(info, 6, "m", 1, 1LL << 30));
  p.min_fires = static_cast<long>(int_arg(info, 7, "minFires", 1, kMaxRows));
  Napi::Int32Array idx = int32_arg(env, info[0], "codes.indices", static_cast<size_t>(rows * k));
  Napi::Float32Array val = float32_arg(env, info[1], "codes.values", static_cast<size_t>(rows * k));
  Napi::Float32Array ext = float32_arg(env, info[4], "external.data", static_cast<size_t>(rows) * p.d);
  p.codes = {idx.Data(), val.Data(), static_cast<long>(rows), static_cast<int>(k)};
  p.external = ext.Data();
  pins = {idx, val, ext};
  return p;
}

void run_monosemanticity(const MonosemanticityPlan& p, MonosemanticityResult& r) {
  r.scores.resize(static_cast<size_t>(p.m));
  r.fires.resize(static_cast<size_t>(p.m));
  monosemanticity_scores(p.codes, p.external, p.d, p.m, p.min_fires, r.scores.data(), r.fires.data());
}

Napi::Value monosemanticity_object(Napi::Env env, const MonosemanticityResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("scores", copy_out<double, Napi::Float64Array>(env, r.scores));
  o.Set("fires", copy_out<double, Napi::Float64Array>(env, r.fires));
  return o;
}

}  // namespace

void register_eval_functions(Napi::Env env, Napi::Object exports) {
  using Retrieval = Entry<RetrievalPlan, RetrievalResult, parse_retrieval, run_retrieval, retrieval_object>;
  using Ranking = Entry<RankingPlan, RankingResult, parse_ranking, run_ranking, ranking_object>;
  using Monosemanticity = Entry<MonosemanticityPlan, MonosemanticityResult, parse_monosemanticity, run_monosemanticity, monosemanticity_object>;
  exports.Set("retrievalRanks", Napi::Function::New(env, Retrieval::Sync));
  exports.Set("retrievalRanksAsync", Napi::Function::New(env, Retrieval::Async));
  exports.Set("rankingMetrics", Napi::Function::New(env, Ranking::Sync));
  exports.Set("rankingMetricsAsync", Napi::Function::New(env, Ranking::Async));
  exports.Set("decoderDistanceHistogram", Napi::Function::New(env, distance_histogram_js));
  exports.Set("monosemanticityScores", Napi::Function::New(env, Monosemanticity::Sync));
  exports.Set("monosemanticityScoresAsync", Napi::Function::New(env, Monosemanticity::Async));
}

}  // namespace cmsae::binding
