// guard.hpp — the event trigger that keeps DDL from breaking an open
// transition, and the scope in which zdd's own DDL passes it.
#pragma once

#include "pg.hpp"

namespace zdd::guard {

// zdd's own DDL (begin_rename, complete, abort) runs inside a Scope: the
// guard lets it through.
class Scope {
 public:
  Scope();
  ~Scope();
  Scope(const Scope &) = delete;
  Scope &operator=(const Scope &) = delete;
};

}  // namespace zdd::guard
