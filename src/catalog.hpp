// catalog.hpp — reading and writing zdd's own catalog tables.
//
// Only this file writes zdd.transition and zdd.history. Writes run with the
// rights of the owner of schema zdd (the extension owner), and only after
// the caller was checked to own the table concerned; the statements are
// fixed text with parameters, so no caller input becomes SQL.
#pragma once

#include "error.hpp"
#include "spi.hpp"

namespace zdd::catalog {

// The parts of a zdd.transition row that the SQL functions act on.
struct Transition {
  int64_t id = 0;
  Oid relid = InvalidOid;
  std::string old_column, new_column, kind, phase, backfill_state;
  Oid started_by = InvalidOid;
  bool table_exists = false;  // the regclass still names a relation
  std::optional<std::string> up, down;  // a retype's conversions (nullopt: the cast)
  bool keep_name = false;     // complete gives the new column the old one's name
};

// Runs f with the rights of zdd's schema owner; restores the caller's user
// whether f returns or throws.
template <typename F>
auto as_owner(F &&f) -> decltype(f());
Oid owner();

// Runs f as role, in a security-restricted operation (as PostgreSQL's own
// maintenance commands do: VACUUM, ANALYZE, CREATE INDEX run the table
// owner's code as the table owner). Restores the caller's user whether f
// returns or throws.
template <typename F>
auto as_role(Oid role, F &&f) -> decltype(f());

// The owner of relation relid.
Oid table_owner(Oid relid);

// Loads transition id, locking its row FOR UPDATE when lock is set.
// Throws 42704 (undefined_object) for an unknown id.
Transition load(int64_t id, bool lock);

// The open (not completed, not aborted) transition on relid that uses
// column as its old or new column, if any.
std::optional<int64_t> open_transition_using(Oid relid, const std::string &column);

// Inserts a new transition row in phase 'expanded' with its history line;
// returns its id (taken from zdd.transition_id_seq beforehand).
int64_t next_id();
void insert(int64_t id, Oid relid, const std::string &old_column, const std::string &new_column,
            int batch_size, int pause_ms, int max_rows_per_sec, int target_batch_ms,
            const std::string &detail = "begin_rename");

// Sets the phase of transition t (from t.phase) and writes the history.
void set_phase(const Transition &t, const std::string &to, const std::string &detail = {});

// Sets the backfill state of transition t (from t.backfill_state) and
// writes the history.
void set_backfill_state(const Transition &t, const std::string &to, const std::string &detail = {});

// Ends transition id's wait for the cluster's health, if it waits: the
// time waited added to waited, the reason cleared, state 'waiting' back to
// 'running' (any other state is kept), and last_batch_at set to now so the
// rate of the next batch does not count the wait.
void end_wait(int64_t id);

// Appends one line to zdd.history.
void add_history(int64_t id, const std::string &event, const std::optional<std::string> &from,
                 const std::string &to, const std::string &detail);

// Runs a catalog statement with owner rights (for the backfill and complete
// modules' own bookkeeping).
uint64_t execute(const std::string &sql, const std::vector<spi::Param> &params = {});
std::vector<spi::Row> query(const std::string &sql, const std::vector<spi::Param> &params = {});

// True when zdd.transition has column name: a library newer than the
// database's SQL objects (ALTER EXTENSION zdd UPDATE not run yet) skips
// what the older catalog cannot hold.
bool has_column(const std::string &name);

// Name of the sync trigger of transition id. "zz_" makes it fire after
// the table's other BEFORE triggers (they fire in name order), so it sees
// the values those triggers leave.
std::string trigger_name(int64_t id);

// Name of the current user, for history lines.
std::string current_user_name();

// ---- implementation of the template ----

// Switches user id to the catalog owner, in a security-restricted context.
struct UserSwitch {
  Oid saved_user;
  int saved_sec;
};
UserSwitch switch_to(Oid role);
void restore_user(const UserSwitch &s);

template <typename F>
auto as_owner(F &&f) -> decltype(f()) {
  return as_role(owner(), std::forward<F>(f));
}

template <typename F>
auto as_role(Oid role, F &&f) -> decltype(f()) {
  UserSwitch s = switch_to(role);
  try {
    if constexpr (std::is_void_v<decltype(f())>) {
      f();
      restore_user(s);
      return;
    } else {
      auto r = f();
      restore_user(s);
      return r;
    }
  } catch (...) {
    restore_user(s);
    throw;
  }
}

}  // namespace zdd::catalog
