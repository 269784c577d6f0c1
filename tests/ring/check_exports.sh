#!/bin/sh
# check_exports.sh - the shared library exports exactly the functions its public headers declare.
# usage: check_exports.sh LIBRARY HEADER...
set -eu
lib=$1
shift
tmp=${TMPDIR:-/tmp}/framering-exports.$$
trap 'rm -f "$tmp".*' EXIT
# Declarations start a line with their return type; comment lines start with '/' or ' '.
sed -n 's/^[a-z][a-z_0-9 ]*[ *]\(\(ring\|frame\)_[a-z_0-9]*\)(.*/\1/p' "$@" | sort -u > "$tmp.declared"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TtWw]$/ {sub(/@.*/, "", $3); print $3}' | sort -u > "$tmp.exported"
if ! cmp -s "$tmp.declared" "$tmp.exported"; then
	echo "check_exports: $lib does not export exactly the public API:" >&2
	diff "$tmp.declared" "$tmp.exported" | sed -n 's/^< /  declared, not exported: /p; s/^> /  exported, not declared: /p' >&2
	exit 1
fi
echo "check_exports: $(wc -l < "$tmp.exported") functions, exactly those of the headers"
