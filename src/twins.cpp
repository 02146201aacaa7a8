// twins.cpp — placeholder until constraint and index twins land (issue 4).
#include "twins.hpp"

namespace zdd::twins {

void build(int64_t) {}

}  // namespace zdd::twins
