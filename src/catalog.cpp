// catalog.cpp — zdd.transition / zdd.history access.
#include "catalog.hpp"

#include "announce.hpp"

extern "C" {
#include "utils/syscache.h"
#include "access/genam.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "utils/fmgroids.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
}

namespace zdd::catalog {

namespace {
// The extension's schema and owner as pg_extension records them (cached per
// backend; looked up again when schema "zdd" is no longer that schema).
Oid ext_schema = InvalidOid, ext_owner = InvalidOid;
}  // namespace

// Owner of the extension, after checking that the schema called "zdd" is
// the extension's own schema and belongs to the extension's owner: zdd
// never acts on a look-alike schema someone else created or renamed into
// place (the install script refuses a pre-created schema of another role).
Oid owner() {
  return pg_call([] {
    const Oid byname = get_namespace_oid("zdd", true);
    if (!OidIsValid(byname) || byname != ext_schema) {
      ext_schema = ext_owner = InvalidOid;
      Relation rel = table_open(ExtensionRelationId, AccessShareLock);
      ScanKeyData key;
      ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
                  CStringGetDatum("zdd"));
      SysScanDesc scan = systable_beginscan(rel, ExtensionNameIndexId, true, nullptr, 1, &key);
      HeapTuple tup = systable_getnext(scan);
      if (HeapTupleIsValid(tup)) {
        ext_schema = ((Form_pg_extension)GETSTRUCT(tup))->extnamespace;
        ext_owner = ((Form_pg_extension)GETSTRUCT(tup))->extowner;
      }
      systable_endscan(scan);
      table_close(rel, AccessShareLock);
    }
    if (!OidIsValid(byname) || byname != ext_schema || !OidIsValid(ext_owner))
      ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                      errmsg("zdd: schema \"zdd\" is not the zdd extension's schema"),
                      errhint("The extension is missing, or its schema was replaced; "
                              "DROP EXTENSION zdd and CREATE EXTENSION zdd again.")));
    HeapTuple tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(byname));
    if (!HeapTupleIsValid(tup)) elog(ERROR, "zdd: cache lookup failed for schema zdd");
    const Oid nspowner = ((Form_pg_namespace)GETSTRUCT(tup))->nspowner;
    ReleaseSysCache(tup);
    if (nspowner != ext_owner)
      ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                      errmsg("zdd: schema \"zdd\" does not belong to the extension's owner"),
                      errhint("DROP EXTENSION zdd and CREATE EXTENSION zdd again.")));
    return ext_owner;
  });
}

Oid table_owner(Oid relid) {
  return pg_call([&] {
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tup))
      ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                      errmsg("relation with OID %u does not exist", relid)));
    Oid o = ((Form_pg_class)GETSTRUCT(tup))->relowner;
    ReleaseSysCache(tup);
    return o;
  });
}

UserSwitch switch_to(Oid o) {
  UserSwitch s{};
  pg_call([&] {
    GetUserIdAndSecContext(&s.saved_user, &s.saved_sec);
    SetUserIdAndSecContext(
        o, s.saved_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
  });
  return s;
}

void restore_user(const UserSwitch &s) { SetUserIdAndSecContext(s.saved_user, s.saved_sec); }

uint64_t execute(const std::string &sql, const std::vector<spi::Param> &params) {
  return as_owner([&] { return spi::execute(sql, params); });
}

std::vector<spi::Row> query(const std::string &sql, const std::vector<spi::Param> &params) {
  return as_owner([&] { return spi::query(sql, params); });
}

bool has_column(const std::string &name) {
  return !spi::query("SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = 'zdd.transition'::pg_catalog.regclass "
                     "AND attname = $1 AND NOT attisdropped",
                     {spi::p_text(name)})
              .empty();
}

std::string trigger_name(int64_t id) { return fmt::format("zz_zdd_sync_{}", id); }

std::string current_user_name() {
  return pg_call([] { return std::string(GetUserNameFromId(GetUserId(), false)); });
}

Transition load(int64_t id, bool lock) {
  std::string sql =
      "SELECT t.id, t.tbl::pg_catalog.oid, t.old_column, t.new_column, t.kind, t.phase, "
      "t.backfill_state, t.started_by::pg_catalog.oid, "
      "EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = t.tbl::pg_catalog.oid), "
      // Read through to_jsonb: a library newer than the SQL objects (before
      // ALTER EXTENSION zdd UPDATE) still loads transitions of 0.1.0.
      "pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.->>) 'up_expr', "
      "pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.->>) 'down_expr', "
      "COALESCE(pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.->>) 'keep_name', 'false') "
      "FROM zdd.transition t WHERE t.id OPERATOR(pg_catalog.=) $1";
  if (lock) sql += " FOR UPDATE OF t";
  auto rows = query(sql, {spi::p_int8(id)});
  if (rows.empty())
    throw Error(ERRCODE_UNDEFINED_OBJECT, fmt::format("zdd: transition {} does not exist", id),
                {}, "SELECT * FROM zdd.status lists the transitions.");
  const spi::Row &r = rows[0];
  Transition t;
  t.id = std::stoll(*r[0]);
  t.relid = static_cast<Oid>(std::stoul(*r[1]));
  t.old_column = *r[2];
  t.new_column = *r[3];
  t.kind = *r[4];
  t.phase = *r[5];
  t.backfill_state = *r[6];
  t.started_by = static_cast<Oid>(std::stoul(*r[7]));
  t.table_exists = (*r[8] == "t");
  t.up = r[9];
  t.down = r[10];
  t.keep_name = *r[11] == "true";
  return t;
}

std::optional<int64_t> open_transition_using(Oid relid, const std::string &column) {
  auto rows = query(
      "SELECT id FROM zdd.transition WHERE tbl OPERATOR(pg_catalog.=) $1::pg_catalog.regclass "
      "AND phase OPERATOR(pg_catalog.<>) ALL (ARRAY['completed', 'aborted']) "
      "AND $2::pg_catalog.name OPERATOR(pg_catalog.=) ANY (ARRAY[old_column, new_column]) "
      "ORDER BY id LIMIT 1",
      {spi::p_oid(relid), spi::p_text(column)});
  if (rows.empty()) return std::nullopt;
  return std::stoll(*rows[0][0]);
}

int64_t next_id() {
  auto rows = query("SELECT pg_catalog.nextval('zdd.transition_id_seq'::pg_catalog.regclass)");
  return std::stoll(*rows[0][0]);
}

void insert(int64_t id, Oid relid, const std::string &old_column, const std::string &new_column,
            int batch_size, int pause_ms, int max_rows_per_sec, int target_batch_ms,
            const std::string &detail) {
  execute(
      "INSERT INTO zdd.transition (id, tbl, old_column, new_column, started_by, batch_size, "
      "pause_ms, max_rows_per_sec, target_batch_ms) "
      "VALUES ($1, $2::pg_catalog.regclass, $3, $4, $5::pg_catalog.regrole, $6, $7, $8, $9)",
      {spi::p_int8(id), spi::p_oid(relid), spi::p_text(old_column), spi::p_text(new_column),
       spi::p_oid(pg_call([] { return GetUserId(); })), spi::p_int4(batch_size),
       spi::p_int4(pause_ms), spi::p_int4(max_rows_per_sec), spi::p_int4(target_batch_ms)});
  add_history(id, "phase", std::nullopt, "expanded", detail);
}

void add_history(int64_t id, const std::string &event, const std::optional<std::string> &from,
                 const std::string &to, const std::string &detail) {
  std::string who = current_user_name();
  execute(
      "INSERT INTO zdd.history (transition_id, by_role, event, from_state, to_state, detail) "
      "VALUES ($1, $2, $3, $4, $5, NULLIF($6, ''))",
      {spi::p_int8(id), spi::p_text(who), spi::p_text(event), spi::p_text(from), spi::p_text(to),
       spi::p_text(detail)});
  if (!from || *from != to) announce::change(id, event, from, to, detail);
}

void set_phase(const Transition &t, const std::string &to, const std::string &detail) {
  execute(
      "UPDATE zdd.transition SET phase = $2, updated_at = pg_catalog.now(), "
      "finished_at = CASE WHEN $2 OPERATOR(pg_catalog.=) ANY (ARRAY['completed', 'aborted']) "
      "THEN pg_catalog.now() END WHERE id OPERATOR(pg_catalog.=) $1",
      {spi::p_int8(t.id), spi::p_text(to)});
  add_history(t.id, "phase", t.phase, to, detail);
}

void set_backfill_state(const Transition &t, const std::string &to, const std::string &detail) {
  execute(
      "UPDATE zdd.transition SET backfill_state = $2, updated_at = pg_catalog.now() "
      "WHERE id OPERATOR(pg_catalog.=) $1",
      {spi::p_int8(t.id), spi::p_text(to)});
  if (t.backfill_state == "waiting") end_wait(t.id);
  add_history(t.id, "backfill", t.backfill_state, to, detail);
}

void end_wait(int64_t id) {
  execute(
      "UPDATE zdd.transition SET waited = waited OPERATOR(pg_catalog.+) "
      "COALESCE(pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) waiting_since, interval '0'), "
      "waiting_since = NULL, wait_reason = NULL, last_batch_at = pg_catalog.clock_timestamp(), "
      "backfill_state = CASE WHEN backfill_state OPERATOR(pg_catalog.=) 'waiting' THEN 'running' "
      "ELSE backfill_state END "
      "WHERE id OPERATOR(pg_catalog.=) $1 "
      "AND (waiting_since IS NOT NULL OR backfill_state OPERATOR(pg_catalog.=) 'waiting')",
      {spi::p_int8(id)});
}

}  // namespace zdd::catalog
