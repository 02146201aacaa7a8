// conversion.cpp — see conversion.hpp. Compilation builds PostgreSQL
// expression trees the way ALTER COLUMN ... TYPE ... USING does (parse,
// transform with the source column read as parameter $1, assignment
// coercion to the target type, planning) and initializes them for the
// executor once; evaluation only sets the parameter and runs the state.
// The per-row functions own no C++ objects, so PostgreSQL errors raised in
// them propagate directly (with an error context naming the columns).
#include "conversion.hpp"

#include "compare.hpp"
#include "spi.hpp"

extern "C" {
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_node.h"
#include "parser/parser.h"
#include "access/relation.h"
#include "rewrite/rewriteHandler.h"
#include "utils/ruleutils.h"
#include "utils/typcache.h"
}

namespace zdd::conversion {

namespace {

// The column reference hook's state: the source column's name, and what
// stands for it (parameter $1, or the old column's default expression).
struct HookState {
  const char *name;
  Node *source;
  bool used;
};

// Reads the source column's name as the source node; anything else is
// left to the parser (which reports an unknown column).
Node *source_column(ParseState *pstate, ColumnRef *cref) {
  auto *st = static_cast<HookState *>(pstate->p_ref_hook_state);
  if (list_length(cref->fields) != 1 || !IsA(linitial(cref->fields), String)) return nullptr;
  if (strcmp(strVal(linitial(cref->fields)), st->name) != 0) return nullptr;
  st->used = true;
  Node *n = static_cast<Node *>(copyObjectImpl(st->source));
  if (IsA(n, Param)) reinterpret_cast<Param *>(n)->location = cref->location;
  return n;
}

// What the error context callbacks print.
struct CompileContext {
  const char *label, *text;
};

void compile_context(void *arg) {
  auto *c = static_cast<CompileContext *>(arg);
  if (c->text == nullptr)
    errcontext("zdd: %s conversion (the assignment cast)", c->label);
  else
    errcontext("zdd: %s conversion \"%s\"", c->label, c->text);
}

void eval_context(void *arg) {
  auto *d = static_cast<Direction *>(arg);
  errcontext("zdd: converting a value of column \"%s\" for column \"%s\"", d->from_name, d->to_name);
}

// The conversion expression text (empty: the cast) over source (a
// parameter, or another expression standing for the source column),
// transformed and coerced by assignment to the target type; not planned.
Node *transform(const char *label, const char *text, const char *from_name, Node *source,
                Oid to_type, int32 to_typmod) {
  ParseState *ps = make_parsestate(nullptr);
  Node *expr = source;
  if (text[0]) {
    ps->p_sourcetext = psprintf("SELECT %s", text);
    HookState st{from_name, source, false};
    ps->p_pre_columnref_hook = source_column;
    ps->p_ref_hook_state = &st;
    expr = transformExpr(ps, parse_expression(text), EXPR_KIND_GENERATED_COLUMN);
    if (!st.used)
      ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                      errmsg("zdd: the %s conversion does not use column \"%s\"", label, from_name)));
  }
  Node *coerced = coerce_to_target_type(ps, expr, exprType(expr), to_type, to_typmod,
                                        COERCION_ASSIGNMENT, COERCE_IMPLICIT_CAST, -1);
  if (coerced == nullptr)
    ereport(ERROR,
            (errcode(ERRCODE_CANNOT_COERCE),
             errmsg("zdd: no %s conversion from %s to %s", label,
                    format_type_with_typemod(exprType(expr), exprTypmod(expr)),
                    format_type_with_typemod(to_type, to_typmod)),
             errhint("Give the conversion as an SQL expression over column \"%s\" (%s => '...').",
                     from_name, label)));
  assign_expr_collations(ps, coerced);
  return coerced;
}

// The call of a conversion that is one function over the source value
// (argument 0, under relabelings) and constants, set up once: nullptr for
// anything else (the expression interpreter runs it).
FunctionCallInfo direct_call(Node *core) {
  if (!IsA(core, FuncExpr)) return nullptr;
  FuncExpr *fe = castNode(FuncExpr, core);
  const int nargs = list_length(fe->args);
  if (fe->funcretset || nargs < 1 || nargs > FUNC_MAX_ARGS) return nullptr;
  Node *first = static_cast<Node *>(linitial(fe->args));
  while (IsA(first, RelabelType)) first = reinterpret_cast<Node *>(castNode(RelabelType, first)->arg);
  if (!IsA(first, Param)) return nullptr;
  for (int i = 1; i < nargs; ++i)
    if (!IsA(list_nth(fe->args, i), Const) || castNode(Const, list_nth(fe->args, i))->constisnull)
      return nullptr;
  auto *flinfo = static_cast<FmgrInfo *>(palloc0(sizeof(FmgrInfo)));
  fmgr_info(fe->funcid, flinfo);
  auto fcinfo = static_cast<FunctionCallInfo>(palloc0(SizeForFunctionCallInfo(nargs)));
  InitFunctionCallInfoData(*fcinfo, flinfo, nargs, fe->inputcollid, nullptr, nullptr);
  for (int i = 1; i < nargs; ++i) {
    Const *c = castNode(Const, list_nth(fe->args, i));
    fcinfo->args[i].value = c->constvalue;
    fcinfo->args[i].isnull = c->constisnull;
  }
  return fcinfo;
}

// Compiles one direction into d (in the current memory context). text
// empty: the assignment cast (or nothing between equal types).
void compile_direction(Direction *d, const char *label, const char *text, const char *from_name,
                       Oid from_type, int32 from_typmod, Oid from_coll, const char *to_name,
                       Oid to_type, int32 to_typmod) {
  CompileContext cc{label, text[0] ? text : nullptr};
  ErrorContextCallback cb{error_context_stack, compile_context, &cc};
  error_context_stack = &cb;

  Param *param = makeNode(Param);
  param->paramkind = PARAM_EXTERN;
  param->paramid = 1;
  param->paramtype = from_type;
  param->paramtypmod = from_typmod;
  param->paramcollid = from_coll;
  param->location = -1;
  Node *coerced = transform(label, text, from_name, reinterpret_cast<Node *>(param), to_type, to_typmod);
  Expr *planned = expression_planner(reinterpret_cast<Expr *>(coerced));
  if (contain_mutable_functions(reinterpret_cast<Node *>(planned)))
    ereport(ERROR,
            (errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
             errmsg("zdd: the %s conversion from %s to %s is not immutable", label,
                    format_type_with_typemod(from_type, from_typmod),
                    format_type_with_typemod(to_type, to_typmod)),
             errdetail("Old and new column must agree whichever session writes; a conversion "
                       "that depends on settings (TimeZone, DateStyle) or on the time does not."),
             errhint("Give an immutable expression, e.g. up => 'col AT TIME ZONE ''UTC''' for "
                     "timestamp to timestamptz.")));
  // A binary-compatible relabeling converts nothing.
  Node *core = reinterpret_cast<Node *>(planned);
  while (IsA(core, RelabelType)) core = reinterpret_cast<Node *>(castNode(RelabelType, core)->arg);
  const bool identity = IsA(core, Param) && get_typlen(from_type) == get_typlen(to_type) &&
                        get_typbyval(from_type) == get_typbyval(to_type);
  d->expr = identity ? nullptr : ExecInitExpr(planned, nullptr);
  d->direct = identity ? nullptr : direct_call(core);
  d->params = makeParamList(1);
  d->params->numParams = 1;
  d->params->params[0].ptype = from_type;
  d->params->params[0].pflags = PARAM_FLAG_CONST;
  d->econtext = CreateStandaloneExprContext();
  d->econtext->ecxt_param_list_info = d->params;
  d->from_name = pstrdup(from_name);
  d->to_name = pstrdup(to_name);
  error_context_stack = cb.previous;
}

// Runs direction d on (v, isnull).
Datum run(Direction *d, Datum v, bool isnull, bool *rnull) {
  if (d->expr == nullptr) {
    *rnull = isnull;
    return v;
  }
  ErrorContextCallback cb{error_context_stack, eval_context, d};
  error_context_stack = &cb;
  Datum r;
  if (FunctionCallInfo f = d->direct) {
    if (isnull && f->flinfo->fn_strict) {
      error_context_stack = cb.previous;
      *rnull = true;
      return 0;
    }
    f->args[0].value = v;
    f->args[0].isnull = isnull;
    f->isnull = false;
    MemoryContext old = MemoryContextSwitchTo(d->econtext->ecxt_per_tuple_memory);
    r = FunctionCallInvoke(f);
    MemoryContextSwitchTo(old);
    *rnull = f->isnull;
  } else {
    d->params->params[0].value = v;
    d->params->params[0].isnull = isnull;
    r = ExecEvalExprSwitchContext(d->expr, d->econtext, rnull);
  }
  error_context_stack = cb.previous;
  return r;
}

}  // namespace

// See conversion.hpp: parses "SELECT <text>" and refuses anything but a
// single plain expression (no FROM, WHERE, set operation, second statement).
Node *parse_expression(const char *text) {
  List *raw = raw_parser(psprintf("SELECT %s", text), RAW_PARSE_DEFAULT);
  bool ok = list_length(raw) == 1;
  SelectStmt *s = nullptr;
  if (ok) {
    Node *stmt = linitial_node(RawStmt, raw)->stmt;
    ok = IsA(stmt, SelectStmt);
    if (ok) s = reinterpret_cast<SelectStmt *>(stmt);
  }
  ok = ok && s->op == SETOP_NONE && list_length(s->targetList) == 1 && s->fromClause == NIL &&
       s->whereClause == nullptr && s->groupClause == NIL && s->havingClause == nullptr &&
       s->windowClause == NIL && s->distinctClause == NIL && s->sortClause == NIL &&
       s->limitCount == nullptr && s->limitOffset == nullptr && s->withClause == nullptr &&
       s->intoClause == nullptr && s->lockingClause == NIL && s->valuesLists == NIL;
  if (ok) ok = linitial_node(ResTarget, s->targetList)->val != nullptr;
  if (!ok)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("zdd: \"%s\" is not a single SQL expression", text)));
  return linitial_node(ResTarget, s->targetList)->val;
}

// See conversion.hpp.
Compiled *compile(const Spec &s, MemoryContext parent) {
  MemoryContext cxt = pg_call([&] {
    return AllocSetContextCreate(parent, "zdd conversion", ALLOCSET_SMALL_SIZES);
  });
  try {
    return pg_call([&] {
      MemoryContext old = MemoryContextSwitchTo(cxt);
      auto *c = static_cast<Compiled *>(palloc0(sizeof(Compiled)));
      c->cxt = cxt;
      get_typlenbyval(s.old_type, &c->old_len, &c->old_byval);
      get_typlenbyval(s.new_type, &c->new_len, &c->new_byval);
      compile_direction(&c->up, "up", s.up.c_str(), s.old_name.c_str(), s.old_type, s.old_typmod,
                        s.old_collation, s.new_name.c_str(), s.new_type, s.new_typmod);
      compile_direction(&c->down, "down", s.down.c_str(), s.new_name.c_str(), s.new_type,
                        s.new_typmod, s.new_collation, s.old_name.c_str(), s.old_type, s.old_typmod);
      c->identity = c->up.expr == nullptr && c->down.expr == nullptr && s.old_type == s.new_type &&
                    s.old_typmod == s.new_typmod;
      MemoryContextSwitchTo(old);
      return c;
    });
  } catch (...) {
    pg_call([&] { MemoryContextDelete(cxt); });
    throw;
  }
}

void release(Compiled *c) {
  if (c != nullptr) MemoryContextDelete(c->cxt);
}

void begin_row(Compiled *c) {
  if (c->identity) return;
  ResetExprContext(c->up.econtext);
  ResetExprContext(c->down.econtext);
}

Datum up(Compiled *c, Datum v, bool isnull, bool *rnull) { return run(&c->up, v, isnull, rnull); }

Datum down(Compiled *c, Datum v, bool isnull, bool *rnull) {
  return run(&c->down, v, isnull, rnull);
}

bool same_old(const Compiled *c, Datum a, bool anull, Datum b, bool bnull) {
  return same_value(c->old_len, c->old_byval, a, anull, b, bnull);
}

bool same_new(const Compiled *c, Datum a, bool anull, Datum b, bool bnull) {
  return same_value(c->new_len, c->new_byval, a, anull, b, bnull);
}

bool in_step(Compiled *c, Datum ov, bool onull, Datum nv, bool nnull) {
  if (c->identity) return same_old(c, ov, onull, nv, nnull);
  bool rnull;
  Datum u = up(c, ov, onull, &rnull);
  if (same_new(c, u, rnull, nv, nnull)) return true;
  Datum d = down(c, nv, nnull, &rnull);
  return same_old(c, ov, onull, d, rnull);
}

std::optional<std::string> converted_default_text(const Spec &s, Oid relid);

Spec spec_for(Oid relid, const std::string &old_name, const std::string &new_name,
              const std::optional<std::string> &up, const std::optional<std::string> &down) {
  Spec s;
  s.old_name = old_name;
  s.new_name = new_name;
  s.up = up.value_or("");
  s.down = down.value_or("");
  pg_call([&] {
    const AttrNumber o = get_attnum(relid, old_name.c_str()), n = get_attnum(relid, new_name.c_str());
    if (o == InvalidAttrNumber || n == InvalidAttrNumber)
      ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                      errmsg("zdd: column \"%s\" or \"%s\" of \"%s\" does not exist", old_name.c_str(),
                             new_name.c_str(), get_rel_name(relid))));
    get_atttypetypmodcoll(relid, o, &s.old_type, &s.old_typmod, &s.old_collation);
    get_atttypetypmodcoll(relid, n, &s.new_type, &s.new_typmod, &s.new_collation);
  });
  return s;
}

std::optional<std::string> converted_default(const Spec &s, Oid relid) {
  std::optional<std::string> out;
  spi::pinned([&] { out = converted_default_text(s, relid); });
  return out;
}

// converted_default's work, under the pinned search_path.
std::optional<std::string> converted_default_text(const Spec &s, Oid relid) {
  return pg_call([&]() -> std::optional<std::string> {
    Relation rel = relation_open(relid, AccessShareLock);
    const AttrNumber att = get_attnum(relid, s.old_name.c_str());
    // An identity's "default" is its sequence: it moves with the identity.
    const bool identity = TupleDescAttr(RelationGetDescr(rel), att - 1)->attidentity != '\0';
    Node *def = identity ? nullptr : build_column_default(rel, att);
    relation_close(rel, AccessShareLock);
    if (def == nullptr) return std::nullopt;
    CompileContext cc{"up", s.up.empty() ? nullptr : s.up.c_str()};
    ErrorContextCallback cb{error_context_stack, compile_context, &cc};
    error_context_stack = &cb;
    Node *expr = transform("up", s.up.c_str(), s.old_name.c_str(), def, s.new_type, s.new_typmod);
    expr = eval_const_expressions(nullptr, expr);  // a constant default stays a constant
    error_context_stack = cb.previous;
    return std::string(deparse_expression(expr, NIL, false, false));
  });
}

// As PostgreSQL's ATColumnChangeRequiresRewrite, on the expression ALTER
// COLUMN ... TYPE would build (assignment coercion, then planning, which
// lets length-coercion support functions drop a widening).
bool needs_no_rewrite(Oid old_type, int32 old_typmod, Oid new_type, int32 new_typmod) {
  return pg_call([&] {
    Node *var = reinterpret_cast<Node *>(
        makeVar(1, 1, old_type, old_typmod, get_typcollation(old_type), 0));
    Node *expr = coerce_to_target_type(nullptr, var, old_type, new_type, new_typmod,
                                       COERCION_ASSIGNMENT, COERCE_IMPLICIT_CAST, -1);
    if (expr == nullptr) return false;
    expr = reinterpret_cast<Node *>(expression_planner(reinterpret_cast<Expr *>(expr)));
    for (;;) {
      if (IsA(expr, Var)) return true;
      if (IsA(expr, RelabelType)) {
        expr = reinterpret_cast<Node *>(castNode(RelabelType, expr)->arg);
      } else if (IsA(expr, CoerceToDomain)) {
        CoerceToDomain *d = castNode(CoerceToDomain, expr);
        if (DomainHasConstraints(d->resulttype)) return false;
        expr = reinterpret_cast<Node *>(d->arg);
      } else {
        return false;
      }
    }
  });
}

}  // namespace zdd::conversion
