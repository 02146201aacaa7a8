// compare.hpp — the one notion of "new equals old" zdd uses everywhere:
// binary equality of the values, NULLs equal to each other, varlena values
// compared by content whatever their header, compression or TOAST storage.
// For a rename (f = identity) this is exactly "new = f(old)", and it works
// for types without an equality operator (json, point, xml).
#pragma once

#include "pg.hpp"

extern "C" {
#include "fmgr.h"
}

namespace zdd {

// Equality of two values of one type (typlen/typbyval as in pg_type).
// May detoast (allocating in the current memory context) only when a value
// is compressed or stored out of line.
inline bool same_value(int16 typlen, bool typbyval, Datum a, bool anull, Datum b, bool bnull) {
  if (anull || bnull) return anull && bnull;
  if (typbyval) return a == b;
  if (typlen > 0) return memcmp(DatumGetPointer(a), DatumGetPointer(b), typlen) == 0;
  if (typlen == -2) return strcmp(DatumGetCString(a), DatumGetCString(b)) == 0;
  if (DatumGetPointer(a) == DatumGetPointer(b)) return true;
  struct varlena *va = (struct varlena *)DatumGetPointer(a);
  struct varlena *vb = (struct varlena *)DatumGetPointer(b);
  if (VARATT_IS_EXTERNAL(va) || VARATT_IS_COMPRESSED(va)) va = pg_detoast_datum_packed(va);
  if (VARATT_IS_EXTERNAL(vb) || VARATT_IS_COMPRESSED(vb)) vb = pg_detoast_datum_packed(vb);
  const Size la = VARSIZE_ANY_EXHDR(va), lb = VARSIZE_ANY_EXHDR(vb);
  return la == lb && memcmp(VARDATA_ANY(va), VARDATA_ANY(vb), la) == 0;
}

}  // namespace zdd
