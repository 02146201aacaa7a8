// twins.cpp — the new column gets twins of what protects the old one,
// built by the backfill worker after the verification pass, without
// blocking writes:
//   NOT NULL   CHECK (new IS NOT NULL) NOT VALID → VALIDATE (SHARE UPDATE
//              EXCLUSIVE, writes go on) → SET NOT NULL (uses the valid
//              check, no scan) → drop the helper check;
//   INDEX      each index that uses the old column (key, expression or
//              predicate; unique, partial, expression, multi-column, the
//              primary key's), cloned from the index itself with the old
//              column mapped to the new one (generateClonedIndexStmt with an
//              attribute map, as PostgreSQL clones partition indexes) and
//              built with CREATE INDEX CONCURRENTLY; an INVALID leftover of
//              a failed build is dropped CONCURRENTLY and built again;
//   CHECK      each CHECK constraint on the old column: its expression tree
//              with the column mapped, deparsed by PostgreSQL, added NOT
//              VALID then validated;
//   FOREIGN KEY each FK whose columns include the old column (a
//              self-reference's referenced column too), added NOT VALID
//              then validated (after the indexes: a self-reference needs
//              the unique twin).
// Twins are recognized by their definition (plan()), never by name: an
// unrelated object called like a twin is never adopted. New twins get
// free names; complete gives them the originals' names back. Constraint
// steps run as the table's owner in a security-restricted operation, and
// CREATE INDEX runs the owner's index expressions as the owner itself, so
// the owner's code never runs with the rights of whoever started the
// transition. Brief ACCESS EXCLUSIVE steps go
// through ddl::with_lock_retry.
#include "twins.hpp"

#include <map>

#include "conversion.hpp"
#include "ddl.hpp"
#include "partitions.hpp"
#include "spi.hpp"
#include "toplevel.hpp"
#include "xact.hpp"

extern "C" {
#include "access/attmap.h"
#include "access/relation.h"
#include "catalog/namespace.h"
#include "commands/defrem.h"
#include "mb/pg_wchar.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_relation.h"
#include "parser/parse_utilcmd.h"
#include "rewrite/rewriteManip.h"
#include "utils/ruleutils.h"
#include "storage/lmgr.h"
#include "utils/snapmgr.h"
}

namespace zdd::twins {

namespace {

// What the twins of a transition are built from.
struct Context {
  int64_t id = 0;
  Oid relid = InvalidOid, owner = InvalidOid;
  std::string rel, schema, old_column, new_column;
};

// Deparses a node tree (pg_node_tree text) of relid's columns as
// PostgreSQL prints it, with attribute from_att read as to_att (0: none).
// A list (index expressions, implicit-AND predicate) prints its items
// separated by " | ".
std::string deparse(const std::string &tree, Oid relid, int from_att, int to_att) {
  return pg_call([&] {
    Node *node = static_cast<Node *>(stringToNode(tree.c_str()));
    if (from_att > 0) {
      Relation r = relation_open(relid, AccessShareLock);
      const int natts = RelationGetNumberOfAttributes(r);
      relation_close(r, AccessShareLock);
      AttrMap *map = make_attrmap(natts);
      for (int i = 0; i < natts; ++i) map->attnums[i] = AttrNumber(i + 1);
      map->attnums[from_att - 1] = AttrNumber(to_att);
      bool whole_row = false;
      node = map_variable_attnos(node, 1, 0, map, InvalidOid, &whole_row);
    }
    List *ctx = deparse_context_for(get_rel_name(relid), relid);
    std::string out;
    if (IsA(node, List)) {
      ListCell *lc;
      foreach (lc, castNode(List, node)) {
        if (!out.empty()) out += " | ";
        out += deparse_expression(static_cast<Node *>(lfirst(lc)), ctx, false, false);
      }
    } else {
      out = deparse_expression(node, ctx, false, false);
    }
    return out;
  });
}


// The index's key columns with old_att read as new_att, as text.
std::string map_key(const std::string &indkey, int old_att, int new_att) {
  std::string out;
  for (const auto &k : spi::split_list(indkey))
    out += (out.empty() ? "" : ",") + (k == std::to_string(old_att) ? std::to_string(new_att) : k);
  return out;
}

// Replaces identifier from_q by to_q inside the parenthesized column lists
// of a foreign key's definition text: with local, the local list and a
// SET NULL / SET DEFAULT list; with refs, the referenced list (a
// self-reference has both; another table's key referencing ours, refs
// only). Column lists hold only quoted-as-needed identifiers and ", ".
std::string swap_fk_columns(const std::string &def, const std::string &from_q,
                            const std::string &to_q, bool local, bool refs) {
  std::string out;
  size_t i = 0;
  const size_t refs_at = def.find(" REFERENCES ");
  while (i < def.size()) {
    if (def[i] != '(') {
      out += def[i++];
      continue;
    }
    const size_t close = def.find(')', i);
    const bool in_refs = refs_at != std::string::npos && i > refs_at &&
                         def.rfind(" ON ", i) == std::string::npos;
    std::string list = def.substr(i + 1, close - i - 1);
    if (in_refs ? refs : local) {
      std::string mapped, item;
      size_t p = 0;
      while (p <= list.size()) {
        const size_t comma = list.find(", ", p);
        item = list.substr(p, comma == std::string::npos ? std::string::npos : comma - p);
        mapped += (mapped.empty() ? "" : ", ") + (item == from_q ? to_q : item);
        if (comma == std::string::npos) break;
        p = comma + 2;
      }
      list = mapped;
    }
    out += "(" + list + ")";
    i = close + 1;
  }
  return out;
}

// Strips a trailing " NOT VALID" from a constraint definition.
std::string valid_form(std::string def) {
  const std::string suffix = " NOT VALID";
  if (def.size() > suffix.size() && def.compare(def.size() - suffix.size(), suffix.size(), suffix) == 0)
    def.resize(def.size() - suffix.size());
  return def;
}

// The old and new column's types.
struct ColumnTypes {
  Oid old_type = InvalidOid, new_type = InvalidOid, new_collation = InvalidOid;
  int32 old_typmod = -1, new_typmod = -1;
};

ColumnTypes column_types(Oid relid, int old_att, int new_att) {
  return pg_call([&] {
    ColumnTypes t;
    Oid coll;
    get_atttypetypmodcoll(relid, AttrNumber(old_att), &t.old_type, &t.old_typmod, &coll);
    if (new_att > 0)
      get_atttypetypmodcoll(relid, AttrNumber(new_att), &t.new_type, &t.new_typmod, &t.new_collation);
    return t;
  });
}

// For a retype: at each key position of the old column, the operator
// class and collation its twin on the new column gets (the new type's
// default class where the original used the old type's default, else the
// same class; the index's collation, or the new column's where the old
// type had none, or none for a type without collation). classes and
// collations are comma-separated OID lists, rewritten in place.
void map_classes(const std::string &indkey, int old_att, Oid am, const ColumnTypes &t,
                 std::string &classes, std::string &collations) {
  auto cls = spi::split_list(classes), coll = spi::split_list(collations);
  const auto keys = spi::split_list(indkey);
  pg_call([&] {
    for (size_t i = 0; i < cls.size() && i < keys.size(); ++i) {
      if (keys[i] != std::to_string(old_att)) continue;
      const Oid c = static_cast<Oid>(std::stoul(cls[i]));
      if (GetDefaultOpClass(t.old_type, am) == c) cls[i] = std::to_string(GetDefaultOpClass(t.new_type, am));
      Oid co = i < coll.size() ? static_cast<Oid>(std::stoul(coll[i])) : InvalidOid;
      if (!type_is_collatable(t.new_type))
        co = InvalidOid;
      else if (!OidIsValid(co))
        co = t.new_collation;
      if (i < coll.size()) coll[i] = std::to_string(co);
    }
  });
  auto join = [](const std::vector<std::string> &v) {
    std::string out;
    for (const auto &x : v) out += (out.empty() ? "" : ",") + x;
    return out;
  };
  classes = join(cls);
  collations = join(coll);
}

// The CHECK expression text as PostgreSQL understands it on relid today
// (parsed, transformed, deparsed again), or nullopt when it no longer
// parses there (a retyped column without the operators it used).
std::optional<std::string> recook_check(Oid relid, const std::string &text) {
  std::optional<std::string> out;
  // In a rolled-back subtransaction: a parse error must not end ours.
  (void)ddl::probe([&] {
    out = pg_call([&] {
      ParseState *ps = make_parsestate(nullptr);
      Relation rel = relation_open(relid, AccessShareLock);
      ParseNamespaceItem *ns = addRangeTableEntryForRelation(ps, rel, AccessShareLock, nullptr, false, true);
      addNSItemToQuery(ps, ns, true, true, true);
      Node *expr = transformExpr(ps, conversion::parse_expression(text.c_str()), EXPR_KIND_CHECK_CONSTRAINT);
      expr = coerce_to_boolean(ps, expr, "CHECK");
      assign_expr_collations(ps, expr);
      char *cooked =
          deparse_expression(expr, deparse_context_for(RelationGetRelationName(rel), relid), false, false);
      relation_close(rel, AccessShareLock);
      return std::string(cooked);
    });
  });
  return out;
}

// One index of the table, as plan() compares them.
struct IndexRow {
  Oid oid;
  std::string name, signature_old, signature_new;
  bool uses_old, uses_new, usable;
  char contype;
  bool deferrable, deferred, replident;
};

// For a partitioned table's indexes: each leaf's partition of the index
// with that leaf's own twin (plan() of the leaf, once per leaf). A primary
// key or unique constraint has no twin on the parent before complete: its
// twin is the set of leaf twins (twin = relid once all exist), and its
// definition the constraint's with the old column read as the new one.
void add_leaf_twins(Oid relid, const std::string &old_column, const std::string &new_column,
                    std::vector<Item> &items) {
  std::map<Oid, std::vector<Item>> leaf_plans;
  const std::string from_q = spi::ident(old_column), to_q = spi::ident(new_column);
  for (Item &it : items) {
    if (it.kind != 'i') continue;
    auto parts = spi::query_cached(
        "SELECT i.indrelid, t.relid::pg_catalog.oid FROM pg_catalog.pg_partition_tree($1) t "
        "JOIN pg_catalog.pg_index i ON i.indexrelid = t.relid WHERE t.isleaf ORDER BY 1",
        {spi::p_oid(it.oid)});
    bool all = true;
    for (const auto &p : parts) {
      Item::LeafTwin lt;
      lt.leaf = static_cast<Oid>(std::stoul(*p[0]));
      lt.index = static_cast<Oid>(std::stoul(*p[1]));
      auto found = leaf_plans.find(lt.leaf);
      if (found == leaf_plans.end())
        found = leaf_plans.emplace(lt.leaf, plan(lt.leaf, old_column, new_column)).first;
      for (const Item &li : found->second)
        if (li.kind == 'i' && li.oid == lt.index) {
          lt.index_name = li.name;
          lt.replica_identity = li.replica_identity;
          lt.twin = li.twin;
          lt.twin_name = li.twin_name;
          lt.leftovers = li.leftovers;
        }
      all = all && OidIsValid(lt.twin);
      it.leaf_twins.push_back(lt);
    }
    if (it.contype == 'p' || it.contype == 'u') {
      auto def = spi::query_cached(
          "SELECT pg_catalog.pg_get_constraintdef(co.oid) FROM pg_catalog.pg_constraint co "
          "WHERE co.conindid = $1 AND co.conrelid = $2",
          {spi::p_oid(it.oid), spi::p_oid(relid)});
      if (!def.empty()) it.definition = swap_fk_columns(*def[0][0], from_q, to_q, true, false);
      if (all && pg_call([&] { return get_attnum(relid, new_column.c_str()); }) > 0) {
        it.twin = relid;
        it.twin_name.clear();
      }
    }
  }
}

}  // namespace

// See twins.hpp. Its catalog queries run from kept generic plans:
// complete plans every partition of a partitioned table under the tree's
// ACCESS EXCLUSIVE lock, and planning them anew per leaf was most of it.
std::vector<Item> plan(Oid relid, const std::string &old_column, const std::string &new_column) {
  const int old_att = pg_call([&] { return int(get_attnum(relid, old_column.c_str())); });
  const int new_att = pg_call([&] { return int(get_attnum(relid, new_column.c_str())); });
  std::vector<Item> items;
  if (old_att <= 0) return items;
  const ColumnTypes types = column_types(relid, old_att, new_att);
  const bool retyped = new_att > 0 && (types.old_type != types.new_type || types.old_typmod != types.new_typmod);

  // NOT NULL
  auto nn = spi::query_cached(
      "SELECT bool_or(attnotnull) FILTER (WHERE attnum = $2), "
      "COALESCE(bool_or(attnotnull) FILTER (WHERE attnum = $3), false) "
      "FROM pg_catalog.pg_attribute WHERE attrelid = $1 AND attnum IN ($2, $3)",
      {spi::p_oid(relid), spi::p_int4(old_att), spi::p_int4(new_att)});
  if (nn[0][0] && *nn[0][0] == "t") {
    Item it{'n'};
    it.name = old_column;
    it.describe = fmt::format("NOT NULL on \"{}\"", old_column);
    if (*nn[0][1] == "t") it.twin_name = new_column;
    it.twin = *nn[0][1] == "t" ? relid : InvalidOid;
    items.push_back(it);
  }

  // Indexes: signature = access method, uniqueness, key columns (old read
  // as new for the originals), operator classes, collations, options,
  // deparsed expressions and predicate.
  auto uses = [](const char *att) {
    return fmt::format(
        "({att} = ANY (i.indkey::pg_catalog.int2[]) OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend d "
        "WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = i.indexrelid "
        "AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = i.indrelid "
        "AND d.refobjsubid = {att}))",
        fmt::arg("att", att));
  };
  auto idx = spi::query_cached(
      fmt::format(
          "SELECT i.indexrelid, c.relname, {uold}, {unew}, i.indisvalid AND i.indisready, "
          "COALESCE(co.contype, '-'), COALESCE(co.condeferrable, false), "
          "COALESCE(co.condeferred, false), i.indisreplident, "
          "c.relam::pg_catalog.text || '/' || i.indisunique || '/' || i.indnullsnotdistinct || '/' "
          "|| i.indnkeyatts || '/' || i.indoption::pg_catalog.int2[]::pg_catalog.text, "
          "pg_catalog.array_to_string(i.indkey::pg_catalog.int2[], ','), i.indexprs::pg_catalog.text, "
          "i.indpred::pg_catalog.text, "
          "pg_catalog.array_to_string(i.indclass::pg_catalog.oid[], ','), "
          "pg_catalog.array_to_string(i.indcollation::pg_catalog.oid[], ','), c.relam "
          "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
          "LEFT JOIN pg_catalog.pg_constraint co ON co.conindid = i.indexrelid "
          "AND co.conrelid = i.indrelid AND co.contype IN ('p', 'u', 'x') "
          "WHERE i.indrelid = $1 ORDER BY c.relname",
          fmt::arg("uold", uses("$2")), fmt::arg("unew", uses("$3"))),
      {spi::p_oid(relid), spi::p_int4(old_att), spi::p_int4(new_att)});
  std::vector<IndexRow> rows;
  for (const auto &r : idx) {
    IndexRow x;
    x.oid = static_cast<Oid>(std::stoul(*r[0]));
    x.name = *r[1];
    x.uses_old = *r[2] == "t";
    x.uses_new = *r[3] == "t";
    x.usable = *r[4] == "t";
    x.contype = (*r[5])[0];
    x.deferrable = *r[6] == "t";
    x.deferred = *r[7] == "t";
    x.replident = *r[8] == "t";
    // 9: access method, uniqueness, options; 10: key columns; 11, 12:
    // expressions and predicate; 13, 14: operator classes and collations of
    // the key columns. Read as on the new column, the old column's key
    // positions take the classes and collations its twin gets (for a
    // retype: the new type's default class where the old type's default
    // was used).
    const std::string exprs = r[11] ? *r[11] : "", pred = r[12] ? *r[12] : "";
    x.signature_new = fmt::format("{}|{}|{}|{}|{}|{}", *r[9], *r[13], *r[14], *r[10],
                                  exprs.empty() ? "" : deparse(exprs, relid, 0, 0),
                                  pred.empty() ? "" : deparse(pred, relid, 0, 0));
    if (x.uses_old && new_att > 0) {
      std::string classes = *r[13], collations = *r[14];
      if (retyped)
        map_classes(*r[10], old_att, static_cast<Oid>(std::stoul(*r[15])), types, classes, collations);
      x.signature_old = fmt::format("{}|{}|{}|{}|{}|{}", *r[9], classes, collations,
                                    map_key(*r[10], old_att, new_att),
                                    exprs.empty() ? "" : deparse(exprs, relid, old_att, new_att),
                                    pred.empty() ? "" : deparse(pred, relid, old_att, new_att));
    }
    rows.push_back(x);
  }
  for (const auto &o : rows) {
    if (!o.uses_old || o.uses_new) continue;
    Item it{o.contype == 'x' ? 'x' : 'i'};
    it.oid = o.oid;
    it.name = o.name;
    it.contype = o.contype == '-' ? '\0' : o.contype;
    it.deferrable = o.deferrable;
    it.deferred = o.deferred;
    it.replica_identity = o.replident;
    it.describe = o.contype == 'x' ? fmt::format("exclusion constraint \"{}\"", o.name)
                                   : fmt::format("index \"{}\"", o.name);
    if (it.kind == 'i' && new_att > 0)
      for (const auto &c : rows) {
        if (!c.uses_new || c.uses_old || c.signature_new != o.signature_old) continue;
        if (!c.usable) {
          it.leftovers.push_back(c.oid);
        } else if (!OidIsValid(it.twin)) {
          it.twin = c.oid;
          it.twin_name = c.name;
        }
      }
    items.push_back(it);
  }

  // CHECK and FOREIGN KEY constraints.
  auto cons = spi::query_cached(
      "SELECT co.oid, co.conname, co.contype, co.convalidated, co.connoinherit, "
      "co.conbin::pg_catalog.text, pg_catalog.pg_get_constraintdef(co.oid), "
      "$2 = ANY (co.conkey) OR (co.confrelid = co.conrelid AND $2 = ANY (co.confkey)), "
      "$3 = ANY (co.conkey) OR (co.confrelid = co.conrelid AND $3 = ANY (co.confkey)), "
      "co.confrelid = co.conrelid "
      "FROM pg_catalog.pg_constraint co WHERE co.conrelid = $1 AND co.contype IN ('c', 'f') "
      "ORDER BY co.conname",
      {spi::p_oid(relid), spi::p_int4(old_att), spi::p_int4(new_att)});
  const std::string from_q = spi::ident(old_column), to_q = spi::ident(new_column);
  auto cons_def = [&](const spi::Row &r, int from, int to) {
    if (*r[2] == "c" && from > 0 && retyped) {
      // On a retyped column the expression means what PostgreSQL makes of
      // its text over the new column (operators chosen for the new type).
      const auto cooked = recook_check(relid, deparse(*r[5], relid, from, to));
      if (!cooked) return std::string();
      return "CHECK (" + *cooked + ")" + (*r[4] == "t" ? " NO INHERIT" : "");
    }
    if (*r[2] == "c")
      return "CHECK (" + deparse(*r[5], relid, from, to) + ")" + (*r[4] == "t" ? " NO INHERIT" : "");
    std::string def = valid_form(*r[6]);
    return from > 0 ? swap_fk_columns(def, from_q, to_q, true, *r[9] == "t") : def;
  };
  for (const auto &o : cons) {
    if (*o[7] != "t" || *o[8] == "t") continue;
    Item it{(*o[2])[0]};
    it.oid = static_cast<Oid>(std::stoul(*o[0]));
    it.name = *o[1];
    it.validated = *o[3] == "t";
    it.describe = fmt::format("{} constraint \"{}\"", it.kind == 'c' ? "CHECK" : "foreign key", it.name);
    it.definition = new_att > 0 ? cons_def(o, old_att, new_att) : std::string();
    if (new_att > 0)
      for (const auto &c : cons)
        if (!it.definition.empty() && *c[8] == "t" && *c[7] != "t" && *c[2] == *o[2] &&
            (*c[3] == "t" || !it.validated) && cons_def(c, 0, 0) == it.definition) {
          it.twin = static_cast<Oid>(std::stoul(*c[0]));
          it.twin_name = *c[1];
          break;
        }
    items.push_back(it);
  }

  // Other tables' foreign keys that reference the old column: twins that
  // reference the new column (its unique twin), on those tables.
  auto refs = spi::query_cached(
      "SELECT co.oid, co.conname, co.convalidated, pg_catalog.pg_get_constraintdef(co.oid), "
      "co.conrelid, $2 = ANY (co.confkey), $3 = ANY (co.confkey) "
      "FROM pg_catalog.pg_constraint co WHERE co.contype = 'f' AND co.confrelid = $1 "
      "AND co.conrelid <> $1 ORDER BY co.conrelid, co.conname",
      {spi::p_oid(relid), spi::p_int4(old_att), spi::p_int4(new_att)});
  for (const auto &o : refs) {
    if (*o[5] != "t" || *o[6] == "t") continue;
    Item it{'r'};
    it.oid = static_cast<Oid>(std::stoul(*o[0]));
    it.name = *o[1];
    it.validated = *o[2] == "t";
    it.table = static_cast<Oid>(std::stoul(*o[4]));
    it.describe = fmt::format("foreign key \"{}\" of {}", it.name, spi::qualified_relation(it.table));
    it.definition = new_att > 0 ? swap_fk_columns(valid_form(*o[3]), from_q, to_q, false, true) : std::string();
    if (new_att > 0)
      for (const auto &c : refs)
        if (*c[6] == "t" && *c[5] != "t" && *c[4] == *o[4] && (*c[2] == "t" || !it.validated) &&
            valid_form(*c[3]) == it.definition) {
          it.twin = static_cast<Oid>(std::stoul(*c[0]));
          it.twin_name = *c[1];
          break;
        }
    items.push_back(it);
  }
  if (partitions::is_partitioned(relid)) add_leaf_twins(relid, old_column, new_column, items);
  return items;
}

namespace {

// Reads what the twins of transition id are built from.
Context load(int64_t id) {
  Context c;
  in_own_transaction([&] {
    auto rows = catalog::query(
        "SELECT t.tbl::pg_catalog.oid, n.nspname, t.old_column, t.new_column, r.relowner "
        "FROM zdd.transition t JOIN pg_catalog.pg_class r ON r.oid = t.tbl "
        "JOIN pg_catalog.pg_namespace n ON n.oid = r.relnamespace WHERE t.id = $1",
        {spi::p_int8(id)});
    if (rows.empty())
      throw Error(ERRCODE_UNDEFINED_OBJECT, fmt::format("zdd: transition {}: table not found", id));
    c.id = id;
    c.relid = static_cast<Oid>(std::stoul(*rows[0][0]));
    c.schema = *rows[0][1];
    c.old_column = *rows[0][2];
    c.new_column = *rows[0][3];
    c.owner = static_cast<Oid>(std::stoul(*rows[0][4]));
    c.rel = spi::qualified_relation(c.relid);
  });
  return c;
}

// The current plan of c, in a transaction of its own.
std::vector<Item> current(const Context &c) {
  return in_own_transaction([&] { return plan(c.relid, c.old_column, c.new_column); });
}


// A twin's name: the original's with the old column name replaced (or
// "_<new>" appended), made free.
std::string twin_name_for(const Context &c, const std::string &orig, bool index) {
  std::string base = orig;
  const size_t pos = base.find(c.old_column);
  if (pos != std::string::npos)
    base.replace(pos, c.old_column.size(), c.new_column);
  else
    base += "_" + c.new_column;
  return spi::free_name(base, [&](const std::string &n) {
    if (index)
      return !spi::query("SELECT 1 FROM pg_catalog.pg_class x JOIN pg_catalog.pg_namespace s "
                         "ON s.oid = x.relnamespace WHERE s.nspname = $1 AND x.relname = $2",
                         {spi::p_text(c.schema), spi::p_text(n)})
                  .empty();
    return !spi::query("SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = $1 AND conname = $2",
                       {spi::p_oid(c.relid), spi::p_text(n)})
                .empty();
  });
}

// Runs DDL statement sql as the table owner (security-restricted) under the
// lock retry policy, in a transaction of its own.
void owner_ddl(const Context &c, const std::string &what, const std::string &sql) {
  in_own_transaction([&] { catalog::as_role(c.owner, [&] { ddl::run_with_retry(what, sql); }); });
}

// NOT NULL twin (see the file comment).
void not_null(const Context &c) {
  const std::string helper = fmt::format("zdd_{}_not_null", c.id);
  const std::string newc = spi::ident(c.new_column);
  bool exists = false;
  in_own_transaction([&] {
    exists = !spi::query("SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = $1 AND conname = $2",
                         {spi::p_oid(c.relid), spi::p_text(helper)})
                  .empty();
  });
  // On a partitioned table each step recurses to the partitions (each
  // partition's SET NOT NULL uses the helper check it inherited: no scan).
  const std::string only = in_own_transaction([&] { return partitions::only(c.relid); });
  if (!exists)
    owner_ddl(c, "twin NOT NULL",
              fmt::format("ALTER TABLE {}{} ADD CONSTRAINT {} CHECK ({} IS NOT NULL) NOT VALID", only,
                          c.rel, spi::ident(helper), newc));
  owner_ddl(c, "validate NOT NULL",
            fmt::format("ALTER TABLE {}{} VALIDATE CONSTRAINT {}", only, c.rel, spi::ident(helper)));
  in_own_transaction([&] {
    catalog::as_role(c.owner, [&] {
      ddl::with_lock_retry("SET NOT NULL", [&] {
        spi::execute(fmt::format("ALTER TABLE {}{} ALTER COLUMN {} SET NOT NULL", only, c.rel, newc));
        spi::execute(fmt::format("ALTER TABLE {}{} DROP CONSTRAINT IF EXISTS {}", only, c.rel,
                                 spi::ident(helper)));
      });
    });
  });
}

// Index twin: cloned from the original with the old column mapped to the
// new one, built concurrently under a free name. Invalid leftovers of an
// earlier attempt at the same twin are dropped concurrently first.
// (concurrently = false: a partitioned table without partitions, whose
// index is catalog-only and cannot be built concurrently.)
void index_twin(const Context &c, const Item &it, bool concurrently = true) {
  const std::vector<Oid> &leftovers = it.leftovers;
  std::string name;
  MemoryContext keep = pg_call([] {
    return AllocSetContextCreate(TopMemoryContext, "zdd twin index", ALLOCSET_SMALL_SIZES);
  });
  Node *stmt = nullptr;
  try {
    in_own_transaction([&] {
      name = twin_name_for(c, it.name, true);
      const int old_att = pg_call([&] { return int(get_attnum(c.relid, c.old_column.c_str())); });
      const int new_att = pg_call([&] { return int(get_attnum(c.relid, c.new_column.c_str())); });
      std::string nm = name, oldc = c.old_column, newc = c.new_column;
      pg_call([&] {
        Relation heap = relation_open(c.relid, AccessShareLock);
        Relation index = relation_open(it.oid, AccessShareLock);
        const int natts = RelationGetNumberOfAttributes(heap);
        AttrMap *map = make_attrmap(natts);
        for (int i = 0; i < natts; ++i) map->attnums[i] = AttrNumber(i + 1);
        map->attnums[old_att - 1] = AttrNumber(new_att);
        RangeVar *rv = makeRangeVar(get_namespace_name(RelationGetNamespace(heap)),
                                    pstrdup(RelationGetRelationName(heap)), -1);
        rv->inh = false;
        Oid constraint = InvalidOid;
        IndexStmt *is = generateClonedIndexStmt(rv, index, map, &constraint);
        // Simple key columns are cloned by name: read the old name as the new.
        ListCell *lc;
        foreach (lc, is->indexParams) {
          IndexElem *e = static_cast<IndexElem *>(lfirst(lc));
          if (e->name && strcmp(e->name, oldc.c_str()) == 0) e->name = pstrdup(newc.c_str());
        }
        foreach (lc, is->indexIncludingParams) {
          IndexElem *e = static_cast<IndexElem *>(lfirst(lc));
          if (e->name && strcmp(e->name, oldc.c_str()) == 0) e->name = pstrdup(newc.c_str());
        }
        is->idxname = pstrdup(nm.c_str());
        is->concurrent = concurrently;
        is->primary = false;  // complete turns it into the constraint (USING INDEX)
        is->isconstraint = false;
        is->deferrable = false;
        is->initdeferred = false;
        MemoryContext old = MemoryContextSwitchTo(keep);
        stmt = static_cast<Node *>(copyObjectImpl(is));
        MemoryContextSwitchTo(old);
        relation_close(index, AccessShareLock);
        relation_close(heap, AccessShareLock);
      });
    });
    for (Oid o : leftovers) {
      std::string q;
      in_own_transaction([&] {
        q = fmt::format("{}.{}", spi::ident(c.schema),
                        spi::ident(pg_call([&] { return std::string(get_rel_name(o)); })));
      });
      toplevel::run(fmt::format("DROP INDEX CONCURRENTLY IF EXISTS {}", q));
    }
    toplevel::run(stmt, fmt::format("CREATE INDEX {}{} (zdd twin of {})", concurrently ? "CONCURRENTLY " : "",
                                    spi::ident(name),
                                    spi::ident(it.name)));
  } catch (...) {
    pg_call([&] { MemoryContextDelete(keep); });
    throw;
  }
  pg_call([&] { MemoryContextDelete(keep); });
}

// CHECK / FOREIGN KEY twin: added NOT VALID under a free name, validated
// unless the original is not; on the table the original is on (another
// table's foreign key referencing ours: on that table, as its owner).
void constraint_twin(const Context &base, const Item &it) {
  Context c = base;
  if (OidIsValid(it.table) && it.table != base.relid)
    in_own_transaction([&] {
      c.relid = it.table;
      c.rel = spi::qualified_relation(it.table);
      c.owner = catalog::table_owner(it.table);
    });
  std::string name;
  in_own_transaction([&] {
    // An earlier attempt may have added it without validating it.
    auto again = spi::query(
        "SELECT conname FROM pg_catalog.pg_constraint WHERE conrelid = $1 AND NOT convalidated "
        "AND contype = $3 AND pg_catalog.regexp_replace("
        "pg_catalog.pg_get_constraintdef(oid), ' NOT VALID$', '') = $2",
        {spi::p_oid(c.relid), spi::p_text(it.definition), spi::p_text(std::string(1, it.kind))});
    name = again.empty() ? twin_name_for(c, it.name, false) : *again[0][0];
    if (again.empty())
      catalog::as_role(c.owner, [&] {
        ddl::run_with_retry("twin constraint",
                            fmt::format("ALTER TABLE {}{} ADD CONSTRAINT {} {} NOT VALID",
                                        partitions::only(c.relid), c.rel, spi::ident(name),
                                        it.definition));
      });
  });
  if (!it.validated) return;
  try {
    owner_ddl(c, "validate twin",
              fmt::format("ALTER TABLE {}{} VALIDATE CONSTRAINT {}",
                          in_own_transaction([&] { return partitions::only(c.relid); }), c.rel,
                          spi::ident(name)));
  } catch (const PgError &e) {
    // A CHECK that no longer holds on the converted values (a retype):
    // say which original it is; it is never dropped silently.
    if (e.sqlstate != ERRCODE_CHECK_VIOLATION) throw;
    throw Error(e.sqlstate,
                fmt::format("zdd: transition {}: {} does not hold on column \"{}\"", c.id,
                            it.describe, c.new_column),
                e.message,
                "Fix the rows (the converted values violate it), or change or drop the "
                "constraint yourself, then zdd.resume(id); or abort the transition.");
  }
}

}  // namespace

// See twins.hpp.
namespace {

// Records how many twins exist of how many are needed (zdd.status shows
// the twins pass as steps done of steps total), in a transaction of its own.
void record_progress(const Context &c) {
  in_own_transaction([&] {
    int done = 0, total = 0;
    for (const Item &it : plan(c.relid, c.old_column, c.new_column)) {
      ++total;
      if (OidIsValid(it.twin)) ++done;
    }
    catalog::execute("UPDATE zdd.transition SET twins_done = $2, twins_total = $3 WHERE id = $1",
                     {spi::p_int8(c.id), spi::p_int4(done), spi::p_int4(total)});
  });
}

// The context of leaf partition leaf of c's table.
Context leaf_context(const Context &c, Oid leaf) {
  Context l = c;
  in_own_transaction([&] {
    l.relid = leaf;
    l.rel = spi::qualified_relation(leaf);
    l.owner = catalog::table_owner(leaf);
    l.schema = pg_call([&] { return std::string(get_namespace_name(get_rel_namespace(leaf))); });
  });
  return l;
}

// A partitioned table's index twin: each leaf's twin built concurrently
// (unattached). A primary key or unique constraint stops there: complete
// makes the leaf twins constraints. Any other index: its twin on the
// parent is created ON ONLY (invalid, catalog-only: a brief lock, retried),
// so is each sub-partitioned table's, and every twin is attached to its
// parent's (ALTER INDEX ... ATTACH PARTITION: catalog-only). Nothing is
// ever built under a lock that blocks writes, even for a partition
// attached meanwhile: its twin is missing, so the parent's stays invalid
// and the pass fails until a retry builds it. An invalid parent index of
// the twin's definition is an earlier try's: it is carried on.
void partitioned_index_twin(const Context &c, const Item &it) {
  for (const Item::LeafTwin &lt : it.leaf_twins) {
    if (OidIsValid(lt.twin)) continue;
    Item leaf_item{'i'};
    leaf_item.oid = lt.index;
    leaf_item.name = lt.index_name;
    leaf_item.leftovers = lt.leftovers;
    index_twin(leaf_context(c, lt.leaf), leaf_item);
  }
  if (it.contype == 'p' || it.contype == 'u') return;
  // The original index's tree, top-down: each node's table and parent.
  struct Node {
    Oid index, parent, table;
    bool leaf;
    std::string name;
  };
  std::vector<Node> nodes;
  Item now{'i'};
  std::string using_clause, unique;
  in_own_transaction([&] {
    for (const Item &x : plan(c.relid, c.old_column, c.new_column))
      if (x.oid == it.oid) now = x;
    for (const Item::LeafTwin &lt : now.leaf_twins)
      if (!OidIsValid(lt.twin))
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    fmt::format("zdd: transition {}: partition {} lacks the twin of index \"{}\"", c.id,
                                spi::qualified_relation(lt.leaf), it.name),
                    {}, "zdd.resume(id) tries again.");
    for (const auto &r : spi::query(
             "SELECT t.relid::pg_catalog.oid, t.parentrelid::pg_catalog.oid, i.indrelid, t.isleaf, "
             "c.relname FROM pg_catalog.pg_partition_tree($1) t "
             "JOIN pg_catalog.pg_index i ON i.indexrelid = t.relid "
             "JOIN pg_catalog.pg_class c ON c.oid = t.relid WHERE t.level > 0 ORDER BY t.level, 1",
             {spi::p_oid(it.oid)}))
      nodes.push_back({static_cast<Oid>(std::stoul(*r[0])), static_cast<Oid>(std::stoul(*r[1])),
                       static_cast<Oid>(std::stoul(*r[2])), *r[3] == "t", *r[4]});
    if (now.leaf_twins.empty()) return;  // no partition: below
    // The definition after "USING" is the same on every partition (names
    // of columns and expressions), so a leaf twin's serves every level.
    const Item::LeafTwin &first = now.leaf_twins.front();
    auto def = spi::query("SELECT pg_catalog.pg_get_indexdef($1), i.indisunique FROM pg_catalog.pg_index i "
                          "WHERE i.indexrelid = $1",
                          {spi::p_oid(first.twin)});
    const std::string marker = " ON " + spi::qualified_relation(first.leaf) + " USING ";
    const size_t at = def[0][0]->find(marker);
    if (at == std::string::npos)
      throw Error(ERRCODE_INTERNAL_ERROR, fmt::format("zdd: unexpected index definition: {}", *def[0][0]));
    using_clause = def[0][0]->substr(at + marker.size());
    unique = *def[0][1] == "t" ? "UNIQUE " : "";
  });
  if (OidIsValid(now.twin)) return;
  if (now.leaf_twins.empty()) {  // no partition yet: an index of the parent alone
    index_twin(c, now, false);
    return;
  }
  // Creates the ON ONLY twin of original index named orig on table (in
  // its own transaction, as the owner); returns it.
  auto create_on_only = [&](Oid table, const std::string &orig) {
    const Context tc = table == c.relid ? c : leaf_context(c, table);
    std::string name;
    in_own_transaction([&] { name = twin_name_for(tc, orig, true); });
    owner_ddl(c, "twin index on a partitioned table",
              fmt::format("CREATE {}INDEX {} ON ONLY {} USING {}", unique, spi::ident(name), tc.rel,
                          using_clause));
    return in_own_transaction([&] {
      return static_cast<Oid>(std::stoul(*spi::query(
          "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname = $1 AND c.relnamespace = $2::pg_catalog.regnamespace",
          {spi::p_text(name), spi::p_text(spi::ident(tc.schema))})[0][0]));
    });
  };
  std::map<Oid, Oid> twin_of;  // original index -> its twin
  twin_of[it.oid] = now.leftovers.empty() ? create_on_only(c.relid, it.name) : now.leftovers.front();
  for (const Node &n : nodes) {
    const Oid parent_twin = twin_of.at(n.parent);
    Oid twin = InvalidOid;
    bool attached = false;
    in_own_transaction([&] {
      if (n.leaf) {
        for (const Item::LeafTwin &lt : now.leaf_twins)
          if (lt.index == n.index) twin = lt.twin;
      } else {
        auto child = spi::query("SELECT h.inhrelid FROM pg_catalog.pg_inherits h JOIN pg_catalog.pg_index x "
                                "ON x.indexrelid = h.inhrelid WHERE h.inhparent = $1 AND x.indrelid = $2",
                                {spi::p_oid(parent_twin), spi::p_oid(n.table)});
        if (!child.empty()) twin = static_cast<Oid>(std::stoul(*child[0][0]));
      }
      if (OidIsValid(twin))
        attached = !spi::query("SELECT 1 FROM pg_catalog.pg_inherits WHERE inhrelid = $1 AND inhparent = $2",
                               {spi::p_oid(twin), spi::p_oid(parent_twin)})
                        .empty();
    });
    if (!OidIsValid(twin) && !n.leaf) twin = create_on_only(n.table, n.name);
    if (!OidIsValid(twin)) continue;  // a leaf twin the check above would have missed: none
    if (!attached) {
      std::string sql;
      in_own_transaction([&] {
        sql = fmt::format("ALTER INDEX {} ATTACH PARTITION {}", spi::qualified_relation(parent_twin),
                          spi::qualified_relation(twin));
      });
      owner_ddl(c, "attach twin index", sql);
    }
    twin_of[n.index] = twin;
  }
}

// A partitioned table's foreign key twin (PostgreSQL 15 refuses NOT VALID
// foreign keys on partitioned tables): on each leaf, added NOT VALID and
// validated (writes go on); then added on the parent, which attaches the
// leaves' equal, validated keys without a scan (brief lock, retried).
void partitioned_fk_twin(const Context &c, const Item &it) {
  std::vector<Oid> leaves;
  in_own_transaction([&] {
    for (const auto &l : partitions::leaves(c.relid)) leaves.push_back(l.relid);
  });
  for (Oid leaf : leaves) {
    Context lc = leaf_context(c, leaf);
    Item leaf_item = it;
    leaf_item.table = InvalidOid;
    // the leaf's own copy: validated already, or (from an earlier try) not yet
    bool valid = false;
    in_own_transaction([&] {
      valid = !spi::query("SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = $1 AND contype = 'f' "
                          "AND convalidated AND pg_catalog.pg_get_constraintdef(oid) = $2",
                          {spi::p_oid(leaf), spi::p_text(it.definition)})
                   .empty();
    });
    if (!valid) constraint_twin(lc, leaf_item);
  }
  // The parent's lock first (it keeps partitions from being attached),
  // then every leaf checked to have its validated copy: the parent's key
  // then only adopts them, it never scans a partition under its lock.
  in_own_transaction([&] {
    catalog::as_role(c.owner, [&] {
      ddl::with_lock_retry("twin foreign key on the partitioned table", [&] {
        pg_call([&] { LockRelationOid(c.relid, ShareRowExclusiveLock); });
        for (const auto &l : partitions::leaves(c.relid))
          if (spi::query("SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = $1 AND contype = 'f' "
                         "AND convalidated AND pg_catalog.pg_get_constraintdef(oid) = $2",
                         {spi::p_oid(l.relid), spi::p_text(it.definition)})
                  .empty())
            throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        fmt::format("zdd: transition {}: partition {} lacks the twin of {}", c.id, l.name,
                                    it.describe),
                        "It was attached while the twins were built.", "zdd.resume(id) builds it.");
        spi::execute(fmt::format("ALTER TABLE {} ADD CONSTRAINT {} {}", c.rel,
                                 spi::ident(twin_name_for(c, it.name, false)), it.definition));
      });
    });
  });
}

}  // namespace

void build(int64_t transition_id) {
  const Context c = load(transition_id);
  const bool partitioned = in_own_transaction([&] { return partitions::is_partitioned(c.relid); });
  record_progress(c);
  // Indexes before constraints: a self-referencing foreign key needs the
  // new column's unique twin.
  for (char kind : {'n', 'i', 'c', 'f', 'r'})
    for (const Item &it : current(c)) {
      if (it.kind != kind || OidIsValid(it.twin)) continue;
      if (kind == 'n') not_null(c);
      if (kind == 'i') partitioned ? partitioned_index_twin(c, it) : index_twin(c, it);
      if (kind == 'c' && it.definition.empty())
        throw Error(ERRCODE_DATATYPE_MISMATCH,
                    fmt::format("zdd: transition {}: {} does not apply to the new type of \"{}\"",
                                c.id, it.describe, c.new_column),
                    "Its expression does not parse over the new column (an operator or "
                    "function the new type lacks).",
                    "Change the constraint so that it works for both types, then zdd.resume(id); "
                    "or abort the transition.");
      if (kind == 'f' && partitioned)
        partitioned_fk_twin(c, it);
      else if (kind == 'c' || kind == 'f' || kind == 'r')
        constraint_twin(c, it);
      record_progress(c);
    }
  for (const Item &it : current(c))
    if (!OidIsValid(it.twin))
      throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                  fmt::format("zdd: transition {}: no twin could be built for {}", c.id, it.describe),
                  it.kind == 'x' ? "zdd cannot rebuild exclusion constraints without blocking writes."
                                 : "",
                  it.kind == 'x' ? "Drop the exclusion constraint, or abort the transition."
                                 : "See the server log; zdd.resume(id) tries again.");
}

}  // namespace zdd::twins
