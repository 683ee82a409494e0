#!/usr/bin/env bash
# Scans the module with govulncheck (a Go tool dependency: go.mod's `tool`
# line) against the vulnerability database snapshot in scripts/vulndb/osv,
# or against $VULNDB when set (VULNDB=https://vuln.go.dev where it is
# reachable). It fails when the code calls a vulnerable function, unless
# that entry is listed in scripts/vulndb/accepted with a reason (each line:
# "GO-YYYY-NNNN reason"); accepted entries are printed on every run, and
# an accepted entry that no longer applies is reported so it can go.
# Refresh the snapshot with scripts/vulndb-refresh.sh; see docs/SECURITY.md.
set -euo pipefail
command -v jq >/dev/null || { echo "vulncheck: jq is needed to read govulncheck's JSON" >&2; exit 2; }
cd "$(dirname "$0")/.."
db=${VULNDB:-file://$PWD/scripts/vulndb/osv}
accepted=scripts/vulndb/accepted
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go tool govulncheck -db "$db" -format json ./... >"$out"
# IDs of findings whose trace reaches a function (called, not only imported).
called=$(jq -r 'select(.finding) | .finding | select(.trace[0].function != null) | .osv' "$out" | sort -u)
ok=$(grep -Eo '^GO-[0-9]+-[0-9]+' "$accepted" 2>/dev/null | sort -u || true)
fail=0
for id in $called; do
	if grep -qx "$id" <<<"$ok"; then
		echo "vulncheck: $id is called; accepted: $(grep "^$id " "$accepted" | cut -d' ' -f2-)"
	else
		fixed=$(jq -r --arg id "$id" 'select(.finding) | .finding | select(.osv == $id) | "\(.trace[0].module)@\(.fixed_version // "none")"' "$out" | sort -u | tr '\n' ' ')
		echo "vulncheck: FAIL $id is called (fixed in: $fixed) https://pkg.go.dev/vuln/$id"
		fail=1
	fi
done
for id in $ok; do
	grep -qx "$id" <<<"$called" || echo "vulncheck: $id is accepted but no longer called: remove it from $accepted"
done
echo "vulncheck: $(wc -w <<<"$called") called vulnerabilities, $(jq -r 'select(.finding) | .finding.osv' "$out" | sort -u | wc -l) known in the build's modules and packages; database $db"
exit $fail
