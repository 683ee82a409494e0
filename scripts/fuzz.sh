#!/usr/bin/env bash
# Runs every Fuzz* target in the module for a short time each ($1, default 5s).
# go test -fuzz accepts one target per run, so they are run one by one.
set -euo pipefail
t=${1:-5s}
cd "$(dirname "$0")/.."
found=0
while IFS= read -r line; do
  file=${line%%:*}
  name=$(sed -E 's/^.*func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$line")
  pkg=./$(dirname "$file")
  found=1
  echo "fuzz $pkg $name ($t)"
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" "$pkg"
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | sort)
[ "$found" = 1 ] || echo "no fuzz targets"
