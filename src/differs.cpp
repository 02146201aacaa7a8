// differs.cpp — zdd.differs(a, b): SQL access to zdd's equality, so the
// backfill's "rows that need writing" filter agrees with the sync trigger
// and works for types without an equality operator.
#include "compare.hpp"
#include "error.hpp"

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

}  // namespace
}  // namespace zdd

extern "C" {
PG_FUNCTION_INFO_V1(zdd_differs);
PGDLLEXPORT Datum zdd_differs(PG_FUNCTION_ARGS) {
  return zdd::boundary([&] { return zdd::differs(fcinfo); });
}
}
