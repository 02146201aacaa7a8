// worker.cpp — placeholder until the backfill worker lands (issue 3).
#include "backfill.hpp"

namespace zdd::backfill {

void request_start(const catalog::Transition &) {}
void request_stop(const catalog::Transition &) {}
void init() {}

}  // namespace zdd::backfill
