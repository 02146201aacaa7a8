#!/usr/bin/env bash
# Installs every Debian package zdd needs to build, test, demo and bench.
# Idempotent: does nothing when all packages are present. Needs root to
# install; as a normal user it only reports what is missing.
set -euo pipefail

PKGS=(postgresql-15 postgresql-client-15 postgresql-server-dev-15 postgresql-contrib
      libfmt-dev libipc-run-perl g++ make gnuplot-nox procps bc perl
      nodejs npm sqitch libdbd-pg-perl)

missing=()
for p in "${PKGS[@]}"; do
  # node and npm may come from elsewhere (nodesource's nodejs bundles npm
  # and conflicts with Debian's): a working command is enough.
  case $p in nodejs) command -v node >/dev/null && continue;; npm) command -v npm >/dev/null && continue;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "zdd: missing Debian packages: ${missing[*]}" >&2
  echo "zdd: run 'sudo $0' (or as root: make test) to install them" >&2
  exit 1
fi
echo "zdd: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
