#!/usr/bin/env bash
# Runs every Fuzz* target in the module for a fixed budget each ($1, default
# 10000x: ten thousand executions). go test -fuzz accepts one target per run,
# so they are run one by one. The budget is a count, not a duration: with a
# duration, Go 1.26's fuzz coordinator can fail a target with a bare
# "context deadline exceeded" at the end of the run under CPU load
# (golang/go#75804, fixed in Go 1.27); a count never reaches that deadline.
set -euo pipefail
t=${1:-10000x}
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
