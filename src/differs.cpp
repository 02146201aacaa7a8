// differs.cpp — SQL access to the sync trigger's notion of "in step", so
// the backfill's and the verify pass's "rows that need writing" filter
// agrees with the trigger: zdd.in_step(old, new, ...) and zdd.up(old, new,
// ...) through the conversion core, and zdd.differs(a, b) (the equality of a rename, kept
// for the SQL objects of 0.1.0).
#include "compare.hpp"
#include "conversion.hpp"

extern "C" {
#include "nodes/nodeFuncs.h"
}

namespace zdd {
namespace {

// Type info of the first argument, cached in fn_extra for the query.
struct TypeInfo {
  Oid type;
  int16 typlen;
  bool typbyval;
};

// zdd.differs(a, b): not same_value(a, b).
Datum differs(FunctionCallInfo fcinfo) {
  auto *ti = static_cast<TypeInfo *>(fcinfo->flinfo->fn_extra);
  if (ti == nullptr) {
    ti = static_cast<TypeInfo *>(MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(TypeInfo)));
    ti->type = get_fn_expr_argtype(fcinfo->flinfo, 0);
    get_typlenbyval(ti->type, &ti->typlen, &ti->typbyval);
    fcinfo->flinfo->fn_extra = ti;
  }
  const bool eq = same_value(ti->typlen, ti->typbyval, PG_GETARG_DATUM(0), PG_ARGISNULL(0),
                             PG_GETARG_DATUM(1), PG_ARGISNULL(1));
  PG_RETURN_BOOL(!eq);
}

// Text of argument n, or "" when NULL.
std::string text_arg(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return {};
  return pg_call([&] { return std::string(TextDatumGetCString(PG_GETARG_DATUM(n))); });
}

// The conversion of this call site, compiled on first use from the
// arguments' types and typmods (the column references of the call) and
// its constant arguments 3-6, kept in fn_extra for the query.
conversion::Compiled *compiled_for(FunctionCallInfo fcinfo) {
  auto *c = static_cast<conversion::Compiled *>(fcinfo->flinfo->fn_extra);
  if (c != nullptr) return c;
  conversion::Spec s;
  if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
    throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "zdd.in_step needs the names of both columns");
  s.old_name = text_arg(fcinfo, 2);
  s.new_name = text_arg(fcinfo, 3);
  s.up = text_arg(fcinfo, 4);
  s.down = text_arg(fcinfo, 5);
  pg_call([&] {
    Node *call = fcinfo->flinfo->fn_expr;
    List *args = call != nullptr && IsA(call, FuncExpr) ? castNode(FuncExpr, call)->args : NIL;
    if (list_length(args) != 6)
      ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                      errmsg("zdd.in_step must be called with its six arguments in a query")));
    Node *o = static_cast<Node *>(linitial(args)), *n = static_cast<Node *>(lsecond(args));
    s.old_type = exprType(o);
    s.old_typmod = exprTypmod(o);
    s.old_collation = exprCollation(o);
    s.new_type = exprType(n);
    s.new_typmod = exprTypmod(n);
    s.new_collation = exprCollation(n);
  });
  c = conversion::compile(s, fcinfo->flinfo->fn_mcxt);
  fcinfo->flinfo->fn_extra = c;
  return c;
}

// zdd.in_step(old, new, old_name, new_name, up, down): new = up(old) or
// old = down(new), as the sync trigger decides it.
Datum in_step(FunctionCallInfo fcinfo) {
  conversion::Compiled *c = compiled_for(fcinfo);
  conversion::begin_row(c);
  return BoolGetDatum(conversion::in_step(c, PG_GETARG_DATUM(0), PG_ARGISNULL(0),
                                          PG_GETARG_DATUM(1), PG_ARGISNULL(1)));
}

// zdd.up(old, new, old_name, new_name, up, down): up(old), of the new
// column's type (the value the backfill writes).
Datum up(FunctionCallInfo fcinfo) {
  conversion::Compiled *c = compiled_for(fcinfo);
  conversion::begin_row(c);
  bool isnull;
  Datum v = conversion::up(c, PG_GETARG_DATUM(0), PG_ARGISNULL(0), &isnull);
  if (isnull) PG_RETURN_NULL();
  return v;
}

// The transition function of zdd.last(anyelement): the later input. With
// a strict function and no initial state, the aggregate yields the last
// non-null value in the order the rows come (the walk's batch feeds it its
// keys in key order).
Datum later(FunctionCallInfo fcinfo) { return PG_GETARG_DATUM(1); }

}  // namespace
}  // namespace zdd

extern "C" {
PG_FUNCTION_INFO_V1(zdd_differs);
PG_FUNCTION_INFO_V1(zdd_in_step);
PG_FUNCTION_INFO_V1(zdd_up);
PG_FUNCTION_INFO_V1(zdd_later);
PGDLLEXPORT Datum zdd_differs(PG_FUNCTION_ARGS) {
  return zdd::boundary([&] { return zdd::differs(fcinfo); });
}
PGDLLEXPORT Datum zdd_in_step(PG_FUNCTION_ARGS) {
  return zdd::boundary([&] { return zdd::in_step(fcinfo); });
}
PGDLLEXPORT Datum zdd_up(PG_FUNCTION_ARGS) {
  return zdd::boundary([&] { return zdd::up(fcinfo); });
}
PGDLLEXPORT Datum zdd_later(PG_FUNCTION_ARGS) {
  return zdd::boundary([&] { return zdd::later(fcinfo); });
}
}
