// announce.hpp — telling the world outside zdd's catalog that a transition
// changed: NOTIFY zdd (apps and tools LISTEN) and one LOG line in the
// server log, for every change of phase or backfill state. Both happen
// only if the transaction that made the change commits: NOTIFY is
// transactional, and the LOG lines are queued and written at commit
// (dropped with a rolled-back subtransaction or transaction).
#pragma once

#include "pg.hpp"

namespace zdd::announce {

// Transition id's phase (event "phase") or backfill state (event
// "backfill") went from `from` to `to`: queues NOTIFY zdd with a JSON
// payload {id, table, old_column, new_column, phase, state, event, from,
// to, reason} and the LOG line
//   zdd: transition 7 public.customer lastname→surname: backfilling → backfilled (rows 12034556, 41 min)
// Call after the catalog row shows the new phase / state.
void change(int64_t id, const std::string &event, const std::optional<std::string> &from,
            const std::string &to, const std::string &detail);

}  // namespace zdd::announce
