#!/usr/bin/env bash
# Builds the debug lane's PostgreSQL: Debian's source package of the
# installed postgresql-15 minor version, configured with --enable-cassert
# --enable-debug, -DRANDOMIZE_ALLOCATED_MEMORY (cassert brings
# CLOBBER_FREED_MEMORY and memory-context checking) and -DUSE_VALGRIND (so
# valgrind understands memory contexts; the client requests cost nothing
# outside valgrind). Built once per machine and cached outside the work tree
# in $ZDD_DEBUG_PG (default /var/tmp/zdd-debug-pg-<version>): a later run
# finds the finished tree and returns at once.
#
# Prints the install prefix on its last line. As root it adds a deb-src
# entry for the archives already configured (no new registry) and installs
# the build's packages; as a normal user it needs them present.
set -euo pipefail

log() { echo "zdd debug-pg: $*" >&2; }

installed=$(dpkg-query -W -f='${Version}' postgresql-15)
# A cached build of the installed minor version, or of any other: return it.
for dir in "${ZDD_DEBUG_PG:-/var/tmp/zdd-debug-pg-${installed%%-*}}" /var/tmp/zdd-debug-pg-15.*; do
  if [ -f "$dir/.built" ]; then echo "$dir/install"; exit 0; fi
done

if [ "$(id -u)" -eq 0 ]; then
  # deb-src twins of the configured Debian archives.
  src=/etc/apt/sources.list.d/zdd-debian-src.sources
  if [ ! -f "$src" ]; then
    sed -n '/^Types:/s/.*/Types: deb-src/p;/^Types:/!p' /etc/apt/sources.list.d/debian.sources > "$src"
    need_update=1
  fi
  pkgs=(dpkg-dev gcc make bison flex perl libipc-run-perl valgrind zlib1g-dev)
  missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  export DEBIAN_FRONTEND=noninteractive
  if [ -n "${need_update:-}" ] || [ ${#missing[@]} -gt 0 ]; then apt-get update -qq; fi
  [ ${#missing[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The installed version's source first; when the archive serves no source
# for it (Debian's security archive often has binaries only), the newest
# source of the same major version that it does serve.
candidates=$( { echo "$installed"; apt-cache showsrc postgresql-15 2>/dev/null | sed -n 's/^Version: //p' | sort -rV; } | awk '!seen[$0]++')
work=$(mktemp -d /var/tmp/zdd-debug-pg-src.XXXXXX)
ver=
for v in $candidates; do
  log "fetching Debian source postgresql-15=$v"
  if (cd "$work" && apt-get source -qq --download-only "postgresql-15=$v" >/dev/null 2>&1); then
    ver=$v; break
  fi
  rm -f "$work"/*
done
[ -n "$ver" ] || { log "no source of postgresql-15 could be fetched (deb-src)"; exit 1; }
[ "$ver" = "$installed" ] || log "installed $installed has no source in the archive: building $ver"
upstream=${ver%%-*}
cache=${ZDD_DEBUG_PG:-/var/tmp/zdd-debug-pg-$upstream}
prefix=$cache/install
rm -rf "$cache/src"; mkdir -p "$cache/src"
mv "$work"/* "$cache/src/"; rmdir "$work"
cd "$cache/src"
# Upstream source without Debian's patches: those hard-wire the package
# directories (pkglibdir = /usr/lib/postgresql/15/lib), and `make install`
# would then overwrite the system's server modules.
dpkg-source -q -x --skip-patches ./*.dsc >/dev/null
cd "$cache"
build=$cache/src/postgresql-15-$upstream
cd "$build"
if [ ! -f config.status ]; then
  log "configure (cassert, debug, RANDOMIZE_ALLOCATED_MEMORY, USE_VALGRIND)"
  ./configure --prefix="$prefix" --enable-cassert --enable-debug --enable-tap-tests \
    --without-readline --without-icu --with-zlib \
    CFLAGS="-O1 -g -fno-omit-frame-pointer" \
    CPPFLAGS="-DRANDOMIZE_ALLOCATED_MEMORY -DUSE_VALGRIND" >"$cache/configure.log" 2>&1
fi
jobs=$(nproc)
# Run from `make test-debug`, this script inherits the outer make's
# MAKELEVEL and MAKEFLAGS: PostgreSQL's build then takes itself for a
# sub-make, skips generating its headers (errcodes.h, ...) first, and a
# parallel build fails when src/common is compiled before them. This is a
# top-level build of its own.
unset MAKELEVEL MAKEFLAGS MFLAGS
log "building with $jobs jobs (about 10 minutes on 2 cores)"
make -s -j"$jobs" >"$cache/build.log" 2>&1
# Never install outside the prefix (see the note on Debian's patches).
case "$(src/bin/pg_config/pg_config --pkglibdir)" in
  "$prefix"/*) ;;
  *) log "refusing to install: pkglibdir is outside $prefix"; exit 1 ;;
esac
make -s install >>"$cache/build.log" 2>&1
# Test drivers and the extensions the tests use.
make -s -C src/test/isolation -j"$jobs" >>"$cache/build.log" 2>&1
for m in citext isn; do make -s -C contrib/$m install >>"$cache/build.log" 2>&1; done
# The pgxs test helpers where PGXS expects them (pg_isolation_regress too).
install -d "$prefix/lib/postgresql/pgxs/src/test/isolation"
install -m 755 src/test/isolation/pg_isolation_regress src/test/isolation/isolationtester \
  "$prefix/lib/postgresql/pgxs/src/test/isolation/"
install -d "$prefix/lib/postgresql/pgxs/src/test/regress"
install -m 755 src/test/regress/pg_regress "$prefix/lib/postgresql/pgxs/src/test/regress/"
install -d "$prefix/lib/postgresql/pgxs/src/test/perl"
cp -r src/test/perl/PostgreSQL "$prefix/lib/postgresql/pgxs/src/test/perl/"
cp src/tools/valgrind.supp "$prefix/valgrind.supp"
touch "$cache/.built"
log "done: $prefix"
echo "$prefix"
