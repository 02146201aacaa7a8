// spi.hpp — every SQL statement zdd runs goes through here.
//
// Statements run with search_path pinned to "pg_catalog, pg_temp" so the
// caller's search_path can never redirect a function, operator or table
// zdd names; identifiers are quoted by the callers (quote_ident()).
// Results are copied out as text so no SPI memory outlives the call.
#pragma once

#include <functional>

#include "error.hpp"

namespace zdd::spi {

// One positional parameter ($n): its type and value (text form, or NULL).
struct Param {
  Oid type;
  std::optional<std::string> text;
};
Param p_text(std::optional<std::string> v);
Param p_int8(int64_t v);
Param p_int4(int32_t v);
Param p_oid(Oid v);
Param p_bool(bool v);

// One result row: each column's text value or nullopt for NULL.
using Row = std::vector<std::optional<std::string>>;

// Runs sql with params; returns the rows it produced (text form).
std::vector<Row> query(const std::string &sql, const std::vector<Param> &params = {});

// As query, from a generic plan prepared on the first call and kept for
// the process: for the statements a backfill batch runs every time with
// the same text (planning them each time cost the worker ~10% of its CPU).
std::vector<Row> query_cached(const std::string &sql, const std::vector<Param> &params = {});

// Runs sql with params; returns SPI_processed.
uint64_t execute(const std::string &sql, const std::vector<Param> &params = {});

// Runs f with search_path = pg_catalog, pg_temp, as the statements above
// run: for deparsing SQL text that such a statement will read (names
// outside pg_catalog come out schema-qualified).
void pinned(const std::function<void()> &f);

// Connects to SPI for the lifetime of the object (SPI_finish on normal exit;
// on an error the transaction abort disconnects). nonatomic: for a
// procedure that commits (SPI_OPT_NONATOMIC).
class Connection {
 public:
  explicit Connection(bool nonatomic = false);
  ~Connection();
  Connection(const Connection &) = delete;
  Connection &operator=(const Connection &) = delete;

 private:
  bool connected_ = false;
};

// Quotes an identifier for SQL text (quote_identifier).
std::string ident(std::string_view name);
// Quotes a string literal for SQL text (quote_literal_cstr).
std::string literal(std::string_view value);
// Splits "a,b" (array_to_string of numbers or simple names) into its items.
std::vector<std::string> split_list(const std::string &list);

// base, or base with a number appended (clipped to NAMEDATALEN - 1 bytes),
// the first that taken() says is free: PostgreSQL's ChooseRelationName rule.
std::string free_name(const std::string &base, const std::function<bool(const std::string &)> &taken);

// "schema"."relation" for a relation OID.
std::string qualified_relation(Oid relid);

}  // namespace zdd::spi
