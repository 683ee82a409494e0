#!/usr/bin/env bash
# Refreshes the vulnerability database snapshot that `make vulncheck`
# (part of `make test`) scans against: the OSV entries of the Go
# vulnerability database that concern the standard library, the toolchain
# or a module of this build, copied from a version of golang.org/x/vulndb
# that the Go module proxy serves.
#
#   scripts/vulndb-refresh.sh [VERSION]   # default: the version in
#                                         # scripts/vulndb/VERSION
#
# Where vuln.go.dev itself is reachable, `make vulncheck VULNDB=https://vuln.go.dev`
# scans against the live database instead. See docs/SECURITY.md.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=scripts/vulndb
version="${1:-$(cat "$dir/VERSION")}"
src=$(go mod download -json "golang.org/x/vulndb@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$src" ] || [ ! -d "$src/data/osv" ]; then
	echo "vulndb-refresh: golang.org/x/vulndb@$version has no data/osv" >&2
	exit 1
fi
# Every module of the build (tools included), the standard library and
# the toolchain, as the OSV "package.name" lines spell them.
patterns=$(mktemp)
trap 'rm -f "$patterns"' EXIT
{ go list -m all | awk '{print $1}'; echo stdlib; echo toolchain; } |
	sed 's/.*/"name": "&",/' > "$patterns"
rm -rf "$dir/osv"
mkdir -p "$dir/osv"
grep -lF -f "$patterns" "$src"/data/osv/*.json | xargs -r cp -t "$dir/osv"
# Stored minified (a third of the size); govulncheck reads them as they are.
for f in "$dir"/osv/*.json; do jq -c . "$f" >"$f.tmp" && mv "$f.tmp" "$f"; done
chmod 0644 "$dir"/osv/*.json
echo "$version" > "$dir/VERSION"
echo "vulndb snapshot: $(ls "$dir/osv" | wc -l) entries from golang.org/x/vulndb@$version"
