// sync_trigger.cpp — the BEFORE INSERT OR UPDATE row trigger that keeps the
// old and new column of a transition in step (SPEC section 4): new =
// up(old) or old = down(new), through the conversion core (a rename is
// the identity conversion).
//
// The trigger edits the row and returns it: no second write, no
// recursion. A fixed-length value (int, bigint, uuid…) is written over the
// row's own bytes when the row stores one; otherwise the row is formed
// again from the slot's deformed values. Per row it reads a few
// attributes from the trigger's slots and compares them; everything that
// needs a lookup (attribute numbers, the compiled conversion, the columns'
// constant defaults) is resolved once per trigger and backend, kept in a
// hash keyed by trigger OID, and invalidated by relcache callbacks.
//
// The per-row functions own no C++ objects with destructors, so the
// PostgreSQL calls in them may raise errors directly; only the conflict
// error path builds strings, and it goes through pg_call / zdd::Error.
#include "conversion.hpp"
#include "error.hpp"
#include "settings.hpp"
#include "statement_columns.hpp"
#include "write_log.hpp"

extern "C" {
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
}

namespace zdd::sync {

namespace {

// A column's default when it is a constant (copied into CacheMemoryContext).
struct ConstDefault {
  bool has;
  bool isnull;
  bool byval;  // how value was copied (the column's type may change later)
  Datum value;
};

// What the trigger needs about its transition; lives in CacheMemoryContext.
struct Entry {
  Oid tgoid;  // hash key
  bool valid;
  Oid relid;
  int64 transition_id;
  AttrNumber old_att, new_att;
  conversion::Compiled *conv;  // in its own context under CacheMemoryContext
  write_log::Slot *slot;       // the transition's counters in shared memory
  int natts;                   // the row's width, and buffers of that width
  Datum *values;               // for forming a changed row (CacheMemoryContext)
  bool *nulls;
  ConstDefault old_default, new_default;
};

HTAB *cache = nullptr;

// Relcache callback: forget what we know about relid (or everything).
void invalidate(Datum, Oid relid) {
  if (cache == nullptr) return;
  HASH_SEQ_STATUS it;
  hash_seq_init(&it, cache);
  while (Entry *e = static_cast<Entry *>(hash_seq_search(&it)))
    if (relid == InvalidOid || e->relid == relid) e->valid = false;
}

// Attribute number of column name in desc, or InvalidAttrNumber.
AttrNumber find_column(TupleDesc desc, const char *name) {
  for (int i = 0; i < desc->natts; ++i) {
    Form_pg_attribute a = TupleDescAttr(desc, i);
    if (!a->attisdropped && strcmp(NameStr(a->attname), name) == 0) return a->attnum;
  }
  return InvalidAttrNumber;
}

// Caches column att's default in d when it is a constant, freeing what d
// held before.
void cache_default(ConstDefault *d, Relation rel, AttrNumber att, bool byval, int16 len) {
  if (d->has && !d->byval && !d->isnull) pfree(DatumGetPointer(d->value));
  d->has = false;
  Node *def = build_column_default(rel, att);
  if (def == nullptr) return;
  def = eval_const_expressions(nullptr, def);
  if (!IsA(def, Const)) return;
  Const *c = castNode(Const, def);
  MemoryContext old = MemoryContextSwitchTo(CacheMemoryContext);
  d->has = true;
  d->isnull = c->constisnull;
  d->byval = byval;
  d->value = c->constisnull ? (Datum)0 : datumCopy(c->constvalue, byval, len);
  MemoryContextSwitchTo(old);
}

// Fills e from the trigger's arguments (transition id, old column, new
// column; for a retype also the up and down expressions, '' for the cast)
// and the relation's descriptor.
void build(Entry *e, TriggerData *td) {
  Trigger *tg = td->tg_trigger;
  Relation rel = td->tg_relation;
  TupleDesc desc = RelationGetDescr(rel);
  if (tg->tgnargs != 3 && tg->tgnargs != 5)
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                    errmsg("zdd.sync_trigger needs 3 or 5 arguments: transition id, old column, "
                           "new column[, up, down]")));
  e->relid = RelationGetRelid(rel);
  e->transition_id = pg_strtoint64(tg->tgargs[0]);
  e->old_att = find_column(desc, tg->tgargs[1]);
  e->new_att = find_column(desc, tg->tgargs[2]);
  if (e->old_att == InvalidAttrNumber || e->new_att == InvalidAttrNumber)
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                    errmsg("zdd: transition " INT64_FORMAT " lost column \"%s\" or \"%s\" of \"%s\"",
                           e->transition_id, tg->tgargs[1], tg->tgargs[2],
                           RelationGetRelationName(rel)),
                    errhint("Abort the transition with zdd.abort(" INT64_FORMAT ").",
                            e->transition_id)));
  Form_pg_attribute oa = TupleDescAttr(desc, e->old_att - 1);
  Form_pg_attribute na = TupleDescAttr(desc, e->new_att - 1);
  if (tg->tgnargs == 3 && (oa->atttypid != na->atttypid || oa->atttypmod != na->atttypmod))
    ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                    errmsg("zdd: columns \"%s\" and \"%s\" of \"%s\" no longer have the same type",
                           tg->tgargs[1], tg->tgargs[2], RelationGetRelationName(rel))));
  conversion::release(e->conv);
  e->conv = nullptr;
  conversion::Spec spec;
  spec.old_name = tg->tgargs[1];
  spec.new_name = tg->tgargs[2];
  spec.old_type = oa->atttypid;
  spec.old_typmod = oa->atttypmod;
  spec.old_collation = oa->attcollation;
  spec.new_type = na->atttypid;
  spec.new_typmod = na->atttypmod;
  spec.new_collation = na->attcollation;
  if (tg->tgnargs == 5) {
    spec.up = tg->tgargs[3];
    spec.down = tg->tgargs[4];
  }
  e->conv = conversion::compile(spec, CacheMemoryContext);
  e->slot = write_log::slot_for(e->transition_id);
  if (e->natts != desc->natts) {
    if (e->values) pfree(e->values);
    if (e->nulls) pfree(e->nulls);
    e->values = static_cast<Datum *>(MemoryContextAlloc(CacheMemoryContext, desc->natts * sizeof(Datum)));
    e->nulls = static_cast<bool *>(MemoryContextAlloc(CacheMemoryContext, desc->natts * sizeof(bool)));
    e->natts = desc->natts;
  }

  // The columns' defaults, if constants: where the executor does not say
  // which columns an INSERT named (COPY), a column left at its default
  // counts as "not given" (SPEC 4).
  cache_default(&e->old_default, rel, e->old_att, oa->attbyval, oa->attlen);
  cache_default(&e->new_default, rel, e->new_att, na->attbyval, na->attlen);
  e->valid = true;
}

// The cache entry of the firing trigger, built on first use. fn_extra
// keeps the entry's address for the statement (dynahash never moves
// entries), so most rows skip even the hash lookup.
Entry *entry_for(FunctionCallInfo fcinfo, TriggerData *td) {
  Entry *e = static_cast<Entry *>(fcinfo->flinfo->fn_extra);
  if (e == nullptr || e->tgoid != td->tg_trigger->tgoid) {
    if (cache == nullptr) {
      HASHCTL ctl;
      ctl.keysize = sizeof(Oid);
      ctl.entrysize = sizeof(Entry);
      ctl.hcxt = CacheMemoryContext;
      cache = hash_create("zdd sync trigger cache", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
      CacheRegisterRelcacheCallback(invalidate, (Datum)0);
    }
    bool found;
    e = static_cast<Entry *>(hash_search(cache, &td->tg_trigger->tgoid, HASH_ENTER, &found));
    if (!found) {
      e->valid = false;
      e->conv = nullptr;
      e->slot = nullptr;
      e->natts = 0;
      e->values = nullptr;
      e->nulls = nullptr;
      e->old_default.has = false;
      e->new_default.has = false;
    }
    fcinfo->flinfo->fn_extra = e;
  }
  if (!e->valid) build(e, td);
  return e;
}

// In step, and equality within one column's type (conversion.hpp).
bool in_step(const Entry *e, Datum ov, bool onull, Datum nv, bool nnull) {
  return conversion::in_step(e->conv, ov, onull, nv, nnull);
}
bool same_old(const Entry *e, Datum a, bool anull, Datum b, bool bnull) {
  return conversion::same_old(e->conv, a, anull, b, bnull);
}
bool same_new(const Entry *e, Datum a, bool anull, Datum b, bool bnull) {
  return conversion::same_new(e->conv, a, anull, b, bnull);
}

// Returns tuple with the new column set to up(old value).
HeapTuple set_new_from(const Entry *e, TriggerData *td, HeapTuple tuple, Datum ov, bool onull);
// Returns tuple with the old column set to down(new value).
HeapTuple set_old_from(const Entry *e, TriggerData *td, HeapTuple tuple, Datum nv, bool nnull);

// Text of a value for an error message, cut to a readable length.
std::string show(Oid type, Datum v, bool isnull) {
  if (isnull) return "NULL";
  std::string s = pg_call([&] {
    Oid out;
    bool varlena;
    getTypeOutputInfo(type, &out, &varlena);
    return std::string(OidOutputFunctionCall(out, v));
  });
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// Raises the class-23 conflict error: both columns written, values differ.
[[noreturn]] void conflict(const Entry *e, TriggerData *td, const char *source, Datum ov,
                           bool onull, Datum nv, bool nnull) {
  Relation rel = td->tg_relation;
  Form_pg_attribute oa = TupleDescAttr(RelationGetDescr(rel), e->old_att - 1);
  Form_pg_attribute na = TupleDescAttr(RelationGetDescr(rel), e->new_att - 1);
  throw Error(
      ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION,
      fmt::format("zdd: conflicting values for \"{}\" and \"{}\" of \"{}\" (transition {})",
                  NameStr(oa->attname), NameStr(na->attname), RelationGetRelationName(rel),
                  e->transition_id),
      fmt::format("{}: \"{}\" = {}, \"{}\" = {}.", source, NameStr(oa->attname),
                  show(oa->atttypid, ov, onull), NameStr(na->attname),
                  show(na->atttypid, nv, nnull)),
      "Write one of the two columns, or both with the same value; or declare the session's "
      "app version with SET zdd.side = 'old' or 'new'.");
}

// The address of column att's value inside tuple when it is stored there
// with a fixed length (not NULL, not a column added after the row was
// written): the bytes a value of the same type can be written over.
// nullptr otherwise. The walk is heap_deform_tuple's, up to att.
char *fixed_value_address(HeapTuple tuple, TupleDesc desc, AttrNumber att) {
  HeapTupleHeader th = tuple->t_data;
  if (att > HeapTupleHeaderGetNatts(th)) return nullptr;
  const bool hasnulls = HeapTupleHasNulls(tuple);
  bits8 *bp = th->t_bits;
  char *tp = reinterpret_cast<char *>(th) + th->t_hoff;
  uint32 off = 0;
  for (int i = 0; i < att; ++i) {
    Form_pg_attribute a = TupleDescAttr(desc, i);
    if (hasnulls && att_isnull(i, bp)) {
      if (i == att - 1) return nullptr;
      continue;
    }
    if (a->attlen == -1)
      off = att_align_pointer(off, a->attalign, -1, tp + off);
    else
      off = att_align_nominal(off, a->attalign);
    if (i == att - 1) return a->attlen > 0 ? tp + off : nullptr;
    off = att_addlength_pointer(off, a->attlen, tp + off);
  }
  return nullptr;
}

// Writes (v, not NULL) over column att's stored value in place when the
// column has a fixed length, the row stores a value for it, and tuple is
// the slot's own materialized row (what the executor writes, so nothing
// is copied: the trigger returns the row it was given). Keeps the slot's
// deformed value in step. False when it cannot: the row must be formed.
bool overwrite_in_place(TupleTableSlot *slot, TupleDesc desc, HeapTuple tuple, AttrNumber att, Datum v) {
  Form_pg_attribute a = TupleDescAttr(desc, att - 1);
  if (a->attlen <= 0 || !(TTS_IS_HEAPTUPLE(slot) || TTS_IS_BUFFERTUPLE(slot)) || !TTS_SHOULDFREE(slot) ||
      reinterpret_cast<HeapTupleTableSlot *>(slot)->tuple != tuple)
    return false;
  char *p = fixed_value_address(tuple, desc, att);
  if (p == nullptr) return false;
  if (a->attbyval)
    store_att_byval(p, v, a->attlen);
  else
    memmove(p, DatumGetPointer(v), a->attlen);
  if (att <= slot->tts_nvalid) {
    slot->tts_values[att - 1] = a->attbyval ? v : PointerGetDatum(p);
    slot->tts_isnull[att - 1] = false;
  }
  return true;
}

// Returns tuple with column att set to (v, isnull): in place when it can
// (overwrite_in_place), else formed from the values the trigger's slot
// already holds deformed (heap_modify_tuple would deform the whole tuple
// once more), in the entry's buffers.
HeapTuple set_column(const Entry *e, TriggerData *td, HeapTuple tuple, AttrNumber att, Datum v,
                     bool isnull) {
  TupleTableSlot *slot = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newslot : td->tg_trigslot;
  TupleDesc desc = RelationGetDescr(td->tg_relation);
  if (!isnull && overwrite_in_place(slot, desc, tuple, att, v)) return tuple;
  slot_getallattrs(slot);
  const int n = desc->natts;
  memcpy(e->values, slot->tts_values, n * sizeof(Datum));
  memcpy(e->nulls, slot->tts_isnull, n * sizeof(bool));
  e->values[att - 1] = v;
  e->nulls[att - 1] = isnull;
  HeapTuple out = heap_form_tuple(desc, e->values, e->nulls);
  out->t_data->t_ctid = tuple->t_data->t_ctid;
  out->t_self = tuple->t_self;
  out->t_tableOid = tuple->t_tableOid;
  return out;
}

HeapTuple set_new_from(const Entry *e, TriggerData *td, HeapTuple tuple, Datum ov, bool onull) {
  bool rnull;
  Datum v = conversion::up(e->conv, ov, onull, &rnull);
  return set_column(e, td, tuple, e->new_att, v, rnull);
}

HeapTuple set_old_from(const Entry *e, TriggerData *td, HeapTuple tuple, Datum nv, bool nnull) {
  bool rnull;
  Datum v = conversion::down(e->conv, nv, nnull, &rnull);
  return set_column(e, td, tuple, e->old_att, v, rnull);
}

// Counts the row in the transition's write log (write_log.hpp): which
// columns the statement wrote, for complete's interlock.
void log_write(const Entry *e, bool old_side, bool new_side) {
  if (old_side) write_log::note(e->slot, true, GetCurrentStatementStartTimestamp());
  if (new_side) write_log::note(e->slot, false, GetCurrentStatementStartTimestamp());
}

// True when the value is the old (or new) column's constant default.
bool at_old_default(const Entry *e, Datum v, bool isnull) {
  return e->old_default.has && same_old(e, v, isnull, e->old_default.value, e->old_default.isnull);
}
bool at_new_default(const Entry *e, Datum v, bool isnull) {
  return e->new_default.has && same_new(e, v, isnull, e->new_default.value, e->new_default.isnull);
}

// INSERT: fill whichever side the statement did not give (SPEC 4). Which
// columns it named comes from the executor (statement_columns); for COPY,
// which does not say, a column that is NULL or at its constant default
// counts as not given.
HeapTuple on_insert(const Entry *e, TriggerData *td) {
  TupleTableSlot *slot = td->tg_trigslot;
  HeapTuple tuple = td->tg_trigtuple;
  bool onull, nnull;
  Datum ov = slot_getattr(slot, e->old_att, &onull);
  Datum nv = slot_getattr(slot, e->new_att, &nnull);
  const Bitmapset *named = statement_columns::inserted(e->relid);
  // The write log counts the columns the statement named (COPY: gave).
  const bool old_named = named ? bms_is_member(e->old_att - FirstLowInvalidHeapAttributeNumber, named)
                               : !onull && !at_old_default(e, ov, onull);
  const bool new_named = named ? bms_is_member(e->new_att - FirstLowInvalidHeapAttributeNumber, named)
                               : !nnull && !at_new_default(e, nv, nnull);
  log_write(e, old_named, new_named);
  if (in_step(e, ov, onull, nv, nnull)) return tuple;

  bool old_given, new_given;
  if (named) {
    old_given = old_named;
    new_given = new_named;
    // Both named, one of them NULL or at its default (an app that maps both
    // columns and set one): that one was not given (SPEC 4).
    if (old_given && new_given && (nnull || at_new_default(e, nv, nnull)))
      new_given = false;
    else if (old_given && new_given && (onull || at_old_default(e, ov, onull)))
      old_given = false;
  } else {
    old_given = !onull && !at_old_default(e, ov, onull);
    new_given = !nnull && !at_new_default(e, nv, nnull);
  }
  if (!new_given) return set_new_from(e, td, tuple, ov, onull);  // old is the truth
  if (!old_given) return set_old_from(e, td, tuple, nv, nnull);
  // Both given and not in step: a declared side settles it, else a conflict.
  if (settings::side == settings::SideOld) return set_new_from(e, td, tuple, ov, onull);
  if (settings::side == settings::SideNew) return set_old_from(e, td, tuple, nv, nnull);
  conflict(e, td, "the INSERT gives both columns", ov, onull, nv, nnull);
}

// UPDATE: decide which side wrote from the SET list (neither or both named:
// from changed values); a row nobody wrote gets new := up(old) (this is also the backfill).
HeapTuple on_update(const Entry *e, TriggerData *td) {
  TupleTableSlot *before = td->tg_trigslot;
  TupleTableSlot *after = td->tg_newslot;
  HeapTuple tuple = td->tg_newtuple;
  bool onull, nnull, ponull, pnnull, rnull;
  Datum ov = slot_getattr(after, e->old_att, &onull);
  Datum nv = slot_getattr(after, e->new_att, &nnull);
  const Bitmapset *cols = td->tg_updatedcols;
  const bool old_named = bms_is_member(e->old_att - FirstLowInvalidHeapAttributeNumber, cols);
  const bool new_named = bms_is_member(e->new_att - FirstLowInvalidHeapAttributeNumber, cols);
  log_write(e, old_named, new_named);

  // One side in the SET list: the path of every app write that must be
  // synced. That side is converted once; the other direction is checked
  // only when the written value did not change (a row the other side
  // wrote, in step through a lossy conversion, stays as it is).
  if (old_named && !new_named) {
    Datum u = conversion::up(e->conv, ov, onull, &rnull);
    if (same_new(e, u, rnull, nv, nnull)) return tuple;
    if (!e->conv->identity) {
      Datum pov = slot_getattr(before, e->old_att, &ponull);
      if (same_old(e, pov, ponull, ov, onull) && in_step(e, ov, onull, nv, nnull)) return tuple;
    }
    return set_column(e, td, tuple, e->new_att, u, rnull);
  }
  if (new_named && !old_named) {
    Datum d = conversion::down(e->conv, nv, nnull, &rnull);
    if (same_old(e, d, rnull, ov, onull)) return tuple;
    // The new column written with the value it had: no write (a new app
    // saving a row it read before the backfill reached it, its new column
    // still NULL, must not wipe the old one). The old column stays the
    // truth: new := up(old) unless the row is in step (through a lossy
    // conversion: a value the new app wrote stays).
    Datum pnv = slot_getattr(before, e->new_att, &pnnull);
    if (same_new(e, pnv, pnnull, nv, nnull)) {
      if (in_step(e, ov, onull, nv, nnull)) return tuple;
      return set_new_from(e, td, tuple, ov, onull);
    }
    return set_column(e, td, tuple, e->old_att, d, rnull);
  }

  // In step already (the common case: the statement touched other columns,
  // or wrote both alike): nothing to decide, and the old row is not read.
  if (in_step(e, ov, onull, nv, nnull)) return tuple;

  bool old_wrote, new_wrote;
  {
    Datum pov = slot_getattr(before, e->old_att, &ponull);
    Datum pnv = slot_getattr(before, e->new_att, &pnnull);
    old_wrote = !same_old(e, pov, ponull, ov, onull);
    new_wrote = !same_new(e, pnv, pnnull, nv, nnull);
  }
  // Both sides wrote, differently: a declared side settles it (zdd.side
  // only ever picks between two writes; it never invents one).
  if (old_wrote && new_wrote && settings::side == settings::SideOld)
    return set_new_from(e, td, tuple, ov, onull);
  if (old_wrote && new_wrote && settings::side == settings::SideNew)
    return set_old_from(e, td, tuple, nv, nnull);
  if (old_wrote && new_wrote)
    conflict(e, td,
             old_named && new_named ? "the UPDATE's SET list changes both columns"
                                    : "both columns changed in this UPDATE",
             ov, onull, nv, nnull);
  if (new_wrote) return set_old_from(e, td, tuple, nv, nnull);
  return set_new_from(e, td, tuple, ov, onull);  // old wrote, or nobody: old is the truth
}

// The trigger body: protocol checks, the cached entry, the rule set.
Datum fire(FunctionCallInfo fcinfo) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                    errmsg("zdd.sync_trigger: not called by trigger manager")));
  TriggerData *td = reinterpret_cast<TriggerData *>(fcinfo->context);
  if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
      !(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                    errmsg("zdd.sync_trigger must be a BEFORE INSERT OR UPDATE FOR EACH ROW trigger")));
  const Entry *e = entry_for(fcinfo, td);
  conversion::begin_row(e->conv);
  HeapTuple result = TRIGGER_FIRED_BY_INSERT(td->tg_event) ? on_insert(e, td) : on_update(e, td);
  return PointerGetDatum(result);
}

}  // namespace

}  // namespace zdd::sync

extern "C" {
PG_FUNCTION_INFO_V1(zdd_sync_trigger);
PGDLLEXPORT Datum zdd_sync_trigger(PG_FUNCTION_ARGS) {
  return zdd::boundary([&] { return zdd::sync::fire(fcinfo); });
}
}
