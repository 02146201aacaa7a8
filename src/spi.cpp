// spi.cpp — SPI with a pinned search_path and text results.
#include "spi.hpp"

#include <unordered_map>

extern "C" {
#include "mb/pg_wchar.h"
}

namespace zdd::spi {

Param p_text(std::optional<std::string> v) { return {TEXTOID, std::move(v)}; }
Param p_int8(int64_t v) { return {INT8OID, std::to_string(v)}; }
Param p_int4(int32_t v) { return {INT4OID, std::to_string(v)}; }
Param p_oid(Oid v) { return {OIDOID, std::to_string(v)}; }
Param p_bool(bool v) { return {BOOLOID, v ? "t" : "f"}; }

namespace {

// Builds the Datum array for params in the current memory context, using
// each type's input function (the values are small, once per statement).
void build_args(const std::vector<Param> &params, Oid *types, Datum *values, char *nulls) {
  for (size_t i = 0; i < params.size(); ++i) {
    const Param &p = params[i];
    types[i] = p.type;
    if (!p.text) {
      values[i] = (Datum)0;
      nulls[i] = 'n';
      continue;
    }
    const char *txt = p.text->c_str();
    values[i] = pg_call([&] {
      Oid infunc, ioparam;
      getTypeInputInfo(p.type, &infunc, &ioparam);
      return OidInputFunctionCall(infunc, const_cast<char *>(txt), ioparam, -1);
    });
    nulls[i] = ' ';
  }
}

// Plans kept for query_cached, by statement text and parameter types. The
// plan cache revalidates them after DDL on what they read; the map is
// emptied when it grows past a few dozen (a worker serving many tables).
std::unordered_map<std::string, SPIPlanPtr> *kept_plans = nullptr;
constexpr size_t kMaxKeptPlans = 64;

// The kept generic plan of sql with these parameter types, prepared on
// first use (under the caller's pinned search_path).
SPIPlanPtr kept_plan(const std::string &sql, int n, Oid *types) {
  std::string key = sql;
  for (int i = 0; i < n; ++i) key += "\x01" + std::to_string(types[i]);
  if (kept_plans == nullptr) kept_plans = new std::unordered_map<std::string, SPIPlanPtr>();
  auto it = kept_plans->find(key);
  if (it != kept_plans->end()) return it->second;
  if (kept_plans->size() >= kMaxKeptPlans) {
    for (auto &kv : *kept_plans) pg_call([&] { (void)SPI_freeplan(kv.second); });
    kept_plans->clear();
  }
  SPIPlanPtr plan = pg_call([&] {
    SPIPlanPtr p = SPI_prepare_cursor(sql.c_str(), n, types, CURSOR_OPT_GENERIC_PLAN);
    if (p == nullptr)
      elog(ERROR, "zdd: SPI_prepare failed (%s)", SPI_result_code_string(SPI_result));
    if (SPI_keepplan(p) != 0) elog(ERROR, "zdd: SPI_keepplan failed");
    return p;
  });
  kept_plans->emplace(std::move(key), plan);
  return plan;
}

// Runs one statement under search_path = pg_catalog, pg_temp (cached: from
// its kept generic plan). The parameter arrays and values live in a
// context of their own, deleted once the statement ran (callers may loop
// for a long time).
int run(const std::string &sql, const std::vector<Param> &params, long limit, bool cached = false) {
  const size_t n = params.size();
  Oid *types = nullptr;
  Datum *values = nullptr;
  char *nulls = nullptr;
  MemoryContext caller = CurrentMemoryContext;
  MemoryContext args = nullptr;
  if (n > 0) {
    args = pg_call([&] {
      MemoryContext c = AllocSetContextCreate(caller, "zdd spi args", ALLOCSET_SMALL_SIZES);
      MemoryContextSwitchTo(c);
      types = static_cast<Oid *>(palloc(n * sizeof(Oid)));
      values = static_cast<Datum *>(palloc(n * sizeof(Datum)));
      nulls = static_cast<char *>(palloc(n * sizeof(char)));
      return c;
    });
    try {
      build_args(params, types, values, nulls);
    } catch (...) {
      MemoryContextSwitchTo(caller);
      throw;
    }
    MemoryContextSwitchTo(caller);
  }
  const char *text = sql.c_str();
  int nestlevel = pg_call([] {
    int level = NewGUCNestLevel();
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);
    return level;
  });
  SPIPlanPtr plan = cached ? kept_plan(sql, int(n), types) : nullptr;
  int rc = pg_call([&] {
    return plan != nullptr ? SPI_execute_plan(plan, values, nulls, false, limit)
                           : SPI_execute_with_args(text, (int)n, types, values, nulls, false, limit);
  });
  pg_call([&] {
    AtEOXact_GUC(true, nestlevel);
    if (args != nullptr) MemoryContextDelete(args);
  });
  if (rc < 0)
    throw Error(ERRCODE_INTERNAL_ERROR, fmt::format("zdd: SPI failed ({}) running: {}",
                                                    SPI_result_code_string(rc), sql));
  return rc;
}

}  // namespace

void pinned(const std::function<void()> &f) {
  const int level = pg_call([] {
    int l = NewGUCNestLevel();
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);
    return l;
  });
  try {
    f();
  } catch (...) {
    AtEOXact_GUC(false, level);
    throw;
  }
  pg_call([&] { AtEOXact_GUC(true, level); });
}

namespace {

// The rows of the statement just run, as text; frees SPI's copy.
std::vector<Row> copy_rows() {
  std::vector<Row> rows;
  if (SPI_tuptable == nullptr) return rows;
  SPITupleTable *tt = SPI_tuptable;
  const int ncols = tt->tupdesc->natts;
  rows.reserve(SPI_processed);
  for (uint64_t r = 0; r < SPI_processed; ++r) {
    Row row;
    row.reserve(ncols);
    for (int c = 1; c <= ncols; ++c) {
      char *v = pg_call([&] { return SPI_getvalue(tt->vals[r], tt->tupdesc, c); });
      if (v == nullptr)
        row.emplace_back(std::nullopt);
      else
        row.emplace_back(std::string(v));
    }
    rows.push_back(std::move(row));
  }
  // Copied out: free SPI's copy now, not at SPI_finish (a long-running
  // caller such as CALL zdd.wait would grow by every poll's rows).
  pg_call([&] { SPI_freetuptable(tt); });
  return rows;
}

}  // namespace

std::vector<Row> query(const std::string &sql, const std::vector<Param> &params) {
  run(sql, params, 0);
  return copy_rows();
}

std::vector<Row> query_cached(const std::string &sql, const std::vector<Param> &params) {
  run(sql, params, 0, true);
  return copy_rows();
}

uint64_t execute(const std::string &sql, const std::vector<Param> &params) {
  run(sql, params, 0);
  const uint64_t n = SPI_processed;
  if (SPI_tuptable != nullptr) pg_call([] { SPI_freetuptable(SPI_tuptable); });
  return n;
}

Connection::Connection(bool nonatomic) {
  pg_call([&] {
    if (SPI_connect_ext(nonatomic ? SPI_OPT_NONATOMIC : 0) != SPI_OK_CONNECT)
      elog(ERROR, "zdd: SPI_connect failed");
  });
  connected_ = true;
}

// Only the normal path disconnects: after an error the (sub)transaction
// abort does it, and SPI calls in a failed state would be unsafe.
Connection::~Connection() {
  if (connected_ && std::uncaught_exceptions() == 0) SPI_finish();
}

std::string ident(std::string_view name) {
  std::string s(name);
  return pg_call([&] { return std::string(quote_identifier(s.c_str())); });
}

std::string literal(std::string_view value) {
  std::string s(value);
  return pg_call([&] { return std::string(quote_literal_cstr(s.c_str())); });
}

std::string qualified_relation(Oid relid) {
  return pg_call([&] {
    char *rel = get_rel_name(relid);
    char *nsp = get_namespace_name(get_rel_namespace(relid));
    if (rel == nullptr || nsp == nullptr)
      ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                      errmsg("relation with OID %u does not exist", relid)));
    return std::string(quote_qualified_identifier(nsp, rel));
  });
}

std::vector<std::string> split_list(const std::string &list) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : list) {
    if (ch == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::string free_name(const std::string &base, const std::function<bool(const std::string &)> &taken) {
  for (int n = 0;; ++n) {
    const std::string suffix = n == 0 ? "" : std::to_string(n);
    const int room = NAMEDATALEN - 1 - int(suffix.size());
    const int len = pg_call([&] { return pg_mbcliplen(base.c_str(), int(base.size()), room); });
    const std::string name = base.substr(0, size_t(len)) + suffix;
    if (!taken(name)) return name;
  }
}

}  // namespace zdd::spi
