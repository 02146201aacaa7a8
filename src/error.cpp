// error.cpp — conversion of errors across the C++/PostgreSQL boundary.
#include "error.hpp"

#include <new>

namespace zdd {

// Copies the error PostgreSQL just longjmp'd with into a PgError, clears
// PostgreSQL's error state and throws. The copy is plain std::string so a
// following subtransaction rollback cannot free it under us.
void rethrow_pg_error(MemoryContext cxt) {
  MemoryContextSwitchTo(cxt);
  ErrorData *ed = CopyErrorData();
  FlushErrorState();
  PgError err(ed->sqlerrcode, ed->message ? ed->message : "unknown error",
              ed->detail ? ed->detail : "", ed->hint ? ed->hint : "");
  if (ed->context) err.context = ed->context;
  FreeErrorData(ed);
  throw err;
}

namespace {
// Duplicates s into the current memory context, NULL for an empty string.
char *dup_or_null(const std::string &s) { return s.empty() ? nullptr : pstrdup(s.c_str()); }
}  // namespace

// Turns whatever is being thrown into palloc'd strings. pstrdup cannot
// longjmp here in practice (small allocations); if it did, the process is
// out of memory and PostgreSQL's own handling takes over.
PendingError capture_current_exception() noexcept {
  PendingError p{ERRCODE_INTERNAL_ERROR, nullptr, nullptr, nullptr, nullptr};
  try {
    throw;
  } catch (const PgError &e) {
    p = {e.sqlstate, dup_or_null(e.message), dup_or_null(e.detail), dup_or_null(e.hint),
         dup_or_null(e.context)};
  } catch (const Error &e) {
    p = {e.sqlstate, dup_or_null(e.message), dup_or_null(e.detail), dup_or_null(e.hint), nullptr};
  } catch (const std::bad_alloc &) {
    p.sqlstate = ERRCODE_OUT_OF_MEMORY;
    p.message = pstrdup("zdd: out of memory");
  } catch (const std::exception &e) {
    p.message = pstrdup(fmt::format("zdd: internal error: {}", e.what()).c_str());
  } catch (...) {
    p.message = pstrdup("zdd: unknown internal error");
  }
  return p;
}

// Raises the captured error with PostgreSQL's own machinery.
void raise(const PendingError &e) {
  ereport(ERROR, (errcode(e.sqlstate), errmsg_internal("%s", e.message ? e.message : "error"),
                  e.detail ? errdetail_internal("%s", e.detail) : 0,
                  e.hint ? errhint("%s", e.hint) : 0,
                  e.context ? errcontext("%s", e.context) : 0));
  pg_unreachable();
}

}  // namespace zdd
