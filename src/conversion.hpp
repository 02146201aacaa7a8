// conversion.hpp — the one conversion core of a transition: up (old → new)
// and down (new → old), and what "in step" means. The sync trigger, the
// backfill's filter and the verify pass all use it; a rename is the
// identity conversion through the same code.
//
// A conversion is compiled once (per trigger and backend, or per query for
// the SQL function) from the columns' types and the transition's up/down
// SQL expressions (empty: the assignment cast, or nothing between equal
// types) into executor expression states; per row it runs those states in
// a per-row memory context, with no SPI and no catalog lookup.
#pragma once

#include "error.hpp"

extern "C" {
#include "nodes/execnodes.h"
#include "nodes/params.h"
}

namespace zdd::conversion {

// What a conversion converts between.
struct Spec {
  std::string old_name, new_name;
  Oid old_type = InvalidOid, new_type = InvalidOid;
  int32 old_typmod = -1, new_typmod = -1;
  Oid old_collation = InvalidOid, new_collation = InvalidOid;
  std::string up, down;  // SQL over the source column's name; empty: cast
};

// One direction, compiled: a plain C struct in the conversion's memory
// context (no destructors: it is freed with the context).
struct Direction {
  ExprState *expr;        // nullptr: the identity
  ExprContext *econtext;  // per-row memory; its param list holds the input
  ParamListInfo params;
  const char *from_name, *to_name;  // for the error context
  // Set when the conversion is one function over the source value and
  // constants (a cast such as int4 → int8, a length coercion): called
  // directly, argument 0 the source value, without the expression
  // interpreter's steps. expr is still compiled (and unused).
  FunctionCallInfo direct;
};

// A compiled conversion (see the file comment).
struct Compiled {
  MemoryContext cxt;
  bool identity;  // same type and typmod, no expressions: a rename
  int16 old_len, new_len;
  bool old_byval, new_byval;
  Direction up, down;
};

// Compiles spec in a new memory context under parent. Throws (22023,
// 42846, 42P17, the parser's own codes) when an expression does not parse,
// uses anything but its source column, is not immutable, or has no
// assignment cast to the target type; the context is then gone.
Compiled *compile(const Spec &spec, MemoryContext parent);

// Frees c (its context); c may be nullptr.
void release(Compiled *c);

// Starts a new row: frees what the previous row's conversions allocated.
void begin_row(Compiled *c);

// up(old) and down(new), valid until the next begin_row. A conversion
// error is raised with its own SQLSTATE and a context naming the columns.
Datum up(Compiled *c, Datum v, bool isnull, bool *rnull);
Datum down(Compiled *c, Datum v, bool isnull, bool *rnull);

// Equality of two values of the old (or new) column's type (compare.hpp).
bool same_old(const Compiled *c, Datum a, bool anull, Datum b, bool bnull);
bool same_new(const Compiled *c, Datum a, bool anull, Datum b, bool bnull);

// In step: new = up(old), or old = down(new) (a value the new side wrote
// that the old side cannot hold exactly is still in step).
bool in_step(Compiled *c, Datum ov, bool onull, Datum nv, bool nnull);

// The raw parse tree of one SQL expression, refusing anything else
// (22023). Call inside pg_call.
Node *parse_expression(const char *text);

// The spec of transition-to-be (relid, old → new) from the columns as the
// table has them, with the given conversions (nullopt: the cast).
Spec spec_for(Oid relid, const std::string &old_name, const std::string &new_name,
              const std::optional<std::string> &up, const std::optional<std::string> &down);

// The old column's default carried to the new column: up applied to the
// default expression, as SQL text; nullopt when the old column has none.
std::optional<std::string> converted_default(const Spec &spec, Oid relid);

// True when PostgreSQL changes the column's type from (old type, typmod)
// to (new type, typmod) without rewriting or scanning the table (binary
// coercible, or a length coercion its support function removes).
bool needs_no_rewrite(Oid old_type, int32 old_typmod, Oid new_type, int32 new_typmod);

}  // namespace zdd::conversion
