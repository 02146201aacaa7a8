// statement_columns.hpp — which columns the running INSERT named.
//
// A BEFORE INSERT trigger sees the row after defaults were applied: it
// cannot tell a default from a value the statement gave. The executor
// knows (the target's insertedCols); an ExecutorStart hook records it for
// every INSERT into a table that has a zdd sync trigger, and the trigger
// asks here. Entries live while their statement runs (ExecutorEnd, or the
// (sub)transaction abort that ends it). COPY does not pass ExecutorStart:
// there the trigger falls back to comparing with the columns' defaults.
#pragma once

#include "pg.hpp"

namespace zdd::statement_columns {

// Installs the executor hooks and transaction callbacks (from _PG_init).
void install();

// The columns (offset by FirstLowInvalidHeapAttributeNumber) that the
// innermost running INSERT into relid named, or nullptr when unknown.
const Bitmapset *inserted(Oid relid);

}  // namespace zdd::statement_columns
