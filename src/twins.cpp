// twins.cpp — the new column gets twins of what protects the old one,
// built by the backfill worker after the verification pass, without
// blocking writes:
//   NOT NULL   CHECK (new IS NOT NULL) NOT VALID → VALIDATE (SHARE UPDATE
//              EXCLUSIVE, writes go on) → SET NOT NULL (uses the valid
//              check, no scan) → drop the helper check;
//   CHECK      each CHECK constraint on the old column, for the new one,
//              added NOT VALID then validated;
//   FOREIGN KEY each FK whose local columns include the old column, added
//              NOT VALID then validated;
//   INDEX      each index that uses the old column (key, expression or
//              predicate; unique, partial, expression, multi-column), built
//              with CREATE INDEX CONCURRENTLY; an INVALID leftover of a
//              failed build is dropped CONCURRENTLY and built again.
// Every step is idempotent (twins are found by their derived names), so a
// retry after a failure or crash resumes where it stopped. Brief ACCESS
// EXCLUSIVE steps go through ddl::with_lock_retry.
//
// Definitions are PostgreSQL's own deparsed text (pg_get_constraintdef,
// pg_get_indexdef) with the old column's identifier replaced as a token:
// outside string literals, not qualified (after '.' or '::') and not a
// function name (before '(').
#include "twins.hpp"

#include "ddl.hpp"
#include "spi.hpp"
#include "toplevel.hpp"
#include "xact.hpp"

extern "C" {
#include "mb/pg_wchar.h"
#include "utils/snapmgr.h"
}

namespace zdd::twins {

namespace {

// What the twins of transition id are built from.
struct Context {
  int64_t id = 0;
  Oid relid = InvalidOid;
  std::string rel, schema, old_column, new_column;
  int old_att = 0;
};

// A character of an unquoted identifier (first: its first character).
bool ident_char(unsigned char c, bool first) {
  return c == '_' || c >= 0x80 || std::isalpha(c) || (!first && (std::isdigit(c) || c == '$'));
}

// Last non-space character before position i, or '\0'.
char prev_char(const std::string &s, size_t i) {
  while (i > 0) {
    --i;
    if (!std::isspace(static_cast<unsigned char>(s[i]))) return s[i];
  }
  return '\0';
}

// First non-space character at or after position i, or '\0'.
char next_char(const std::string &s, size_t i) {
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return i < s.size() ? s[i] : '\0';
}

// Replaces the column identifier from_q (as quote_identifier prints it)
// by to_q in deparsed SQL text, as a token (see the file comment).
std::string swap_column(const std::string &text, const std::string &from_q, const std::string &to_q) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = text[i];
    if (c == '\'') {  // string literal, '' escapes
      size_t j = i + 1;
      while (j < text.size() && !(text[j] == '\'' && (j + 1 >= text.size() || text[j + 1] != '\'')))
        j += (text[j] == '\'' ? 2 : 1);
      out.append(text, i, j + 1 - i);
      i = j + 1;
      continue;
    }
    size_t j = i;
    if (c == '"') {  // quoted identifier, "" escapes
      j = i + 1;
      while (j < text.size() && !(text[j] == '"' && (j + 1 >= text.size() || text[j + 1] != '"')))
        j += (text[j] == '"' ? 2 : 1);
      j = std::min(j + 1, text.size());
    } else if (ident_char(c, true)) {
      while (j < text.size() && ident_char(text[j], false)) ++j;
    } else {
      out.push_back(text[i++]);
      continue;
    }
    const std::string token = text.substr(i, j - i);
    const char before = prev_char(text, i);
    const bool qualified = before == '.' || (before == ':' && i >= 2 && text[i - 1] == ':') ||
                           (before == ':' && prev_char(text, i - 1) == ':');
    if (token == from_q && !qualified && next_char(text, j) != '(')
      out += to_q;
    else
      out += token;
    i = j;
  }
  return out;
}

}  // namespace

// A twin's name: the original's with the old column name replaced, or
// with "_<new>" appended; clipped to NAMEDATALEN - 1 bytes on a character
// boundary.
std::string twin_name(const std::string &name, const std::string &oldc, const std::string &newc) {
  std::string n = name;
  const size_t pos = n.find(oldc);
  if (pos != std::string::npos)
    n.replace(pos, oldc.size(), newc);
  else
    n += "_" + newc;
  const int len = pg_call([&] { return pg_mbcliplen(n.c_str(), int(n.size()), NAMEDATALEN - 1); });
  return n.substr(0, size_t(len));
}

namespace {

// Reads what the twins of transition id are built from.
Context load(int64_t id) {
  Context c;
  in_own_transaction([&] {
    auto rows = spi::query(
        "SELECT t.tbl::pg_catalog.oid, n.nspname, t.old_column, t.new_column, a.attnum "
        "FROM zdd.transition t JOIN pg_catalog.pg_class r ON r.oid = t.tbl "
        "JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace "
        "JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attname = t.old_column "
        "WHERE t.id = $1",
        {spi::p_int8(id)});
    if (rows.empty())
      throw Error(ERRCODE_UNDEFINED_OBJECT,
                  fmt::format("zdd: transition {}: table or old column not found", id));
    c.id = id;
    c.relid = static_cast<Oid>(std::stoul(*rows[0][0]));
    c.schema = *rows[0][1];
    c.old_column = *rows[0][2];
    c.new_column = *rows[0][3];
    c.old_att = std::stoi(*rows[0][4]);
    c.rel = spi::qualified_relation(c.relid);
  });
  return c;
}

// True when table relid has a constraint called name.
bool constraint_exists(Oid relid, const std::string &name) {
  return !spi::query("SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = $1 AND conname = $2",
                     {spi::p_oid(relid), spi::p_text(name)})
              .empty();
}

// Adds constraint name with definition def NOT VALID (brief lock, with
// retries), then validates it unless the original was not validated.
void add_then_validate(const Context &c, const std::string &name, const std::string &def,
                       bool validate) {
  const std::string cname = spi::ident(name);
  in_own_transaction([&] {
    if (!constraint_exists(c.relid, name))
      ddl::run_with_retry("twin constraint", fmt::format("ALTER TABLE {} ADD CONSTRAINT {} {} NOT VALID",
                                                         c.rel, cname, def));
  });
  if (validate)
    in_own_transaction([&] {
      ddl::run_with_retry("validate twin", fmt::format("ALTER TABLE {} VALIDATE CONSTRAINT {}", c.rel, cname));
    });
}

// NOT NULL twin (see the file comment).
void not_null(const Context &c) {
  bool needed = false;
  in_own_transaction([&] {
    auto rows = spi::query(
        "SELECT bool_or(attnotnull) FILTER (WHERE attname = $2) AND "
        "NOT bool_or(attnotnull) FILTER (WHERE attname = $3) "
        "FROM pg_catalog.pg_attribute WHERE attrelid = $1 AND attname IN ($2, $3)",
        {spi::p_oid(c.relid), spi::p_text(c.old_column), spi::p_text(c.new_column)});
    needed = rows[0][0] && *rows[0][0] == "t";
  });
  if (!needed) return;
  const std::string helper = fmt::format("zdd_{}_not_null", c.id);
  add_then_validate(c, helper, fmt::format("CHECK ({} IS NOT NULL)", spi::ident(c.new_column)), true);
  in_own_transaction([&] {
    ddl::with_lock_retry("SET NOT NULL", [&] {
      spi::execute(fmt::format("ALTER TABLE {} ALTER COLUMN {} SET NOT NULL", c.rel, spi::ident(c.new_column)));
      spi::execute(fmt::format("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}", c.rel, spi::ident(helper)));
    });
  });
}

// CHECK and FOREIGN KEY twins.
void constraints(const Context &c) {
  std::vector<spi::Row> rows;
  in_own_transaction([&] {
    rows = spi::query(
        "SELECT conname, contype, pg_catalog.pg_get_constraintdef(oid), convalidated "
        "FROM pg_catalog.pg_constraint WHERE conrelid = $1 AND contype IN ('c', 'f') "
        "AND $2 = ANY (conkey) AND conname NOT LIKE 'zdd\\_%\\_not\\_null' ORDER BY conname",
        {spi::p_oid(c.relid), spi::p_int4(c.old_att)});
  });
  const std::string from = spi::ident(c.old_column), to = spi::ident(c.new_column);
  for (const auto &r : rows) {
    std::string def = *r[2];
    const std::string suffix = " NOT VALID";
    if (def.size() > suffix.size() && def.compare(def.size() - suffix.size(), suffix.size(), suffix) == 0)
      def.resize(def.size() - suffix.size());
    if (*r[1] == "f") {
      const size_t refs = def.find(" REFERENCES ");
      def = swap_column(def.substr(0, refs), from, to) + def.substr(refs);
    } else {
      def = swap_column(def, from, to);
    }
    add_then_validate(c, twin_name(*r[0], c.old_column, c.new_column), def, *r[3] == "t");
  }
}

// Index twins, built concurrently.
void indexes(const Context &c) {
  std::vector<spi::Row> rows;
  in_own_transaction([&] {
    rows = spi::query(
        "SELECT ci.relname, pg_catalog.pg_get_indexdef(i.indexrelid), i.indisunique "
        "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ci ON ci.oid = i.indexrelid "
        "WHERE i.indrelid = $1 AND ($2 = ANY (i.indkey::pg_catalog.int2[]) OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend d "
        "  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = i.indexrelid "
        "  AND d.refobjid = $1 AND d.refobjsubid = $2)) ORDER BY ci.relname",
        {spi::p_oid(c.relid), spi::p_int4(c.old_att)});
  });
  const std::string from = spi::ident(c.old_column), to = spi::ident(c.new_column);
  for (const auto &r : rows) {
    const std::string name = twin_name(*r[0], c.old_column, c.new_column);
    const std::string qname = fmt::format("{}.{}", spi::ident(c.schema), spi::ident(name));
    std::optional<bool> valid;
    in_own_transaction([&] {
      auto v = spi::query(
          "SELECT i.indisvalid FROM pg_catalog.pg_class x JOIN pg_catalog.pg_index i "
          "ON i.indexrelid = x.oid JOIN pg_catalog.pg_namespace n ON n.oid = x.relnamespace "
          "WHERE n.nspname = $1 AND x.relname = $2",
          {spi::p_text(c.schema), spi::p_text(name)});
      if (!v.empty()) valid = (*v[0][0] == "t");
    });
    if (valid && *valid) continue;
    if (valid) toplevel::run(fmt::format("DROP INDEX CONCURRENTLY IF EXISTS {}", qname));
    const std::string &def = *r[1];
    const size_t using_pos = def.find(" USING ");
    toplevel::run(fmt::format("CREATE {}INDEX CONCURRENTLY {} ON {}{}", *r[2] == "t" ? "UNIQUE " : "",
                              spi::ident(name), c.rel,
                              swap_column(def.substr(using_pos), from, to)));
  }
}

}  // namespace

// See twins.hpp.
void build(int64_t transition_id) {
  const Context c = load(transition_id);
  not_null(c);
  constraints(c);
  indexes(c);
}

}  // namespace zdd::twins
