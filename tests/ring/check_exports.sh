#!/bin/sh
# check_exports.sh - the shared library exports exactly the functions its public headers declare,
# and every one of them carries the project's prefix fr_ (no bare ring_/frame_ names in a user's program).
# usage: check_exports.sh LIBRARY HEADER...
set -eu
lib=$1
shift
tmp=${TMPDIR:-/tmp}/framering-exports.$$
trap 'rm -f "$tmp".*' EXIT
# Declarations start a line with their return type; comment lines start with '/' or ' '.
sed -n 's/^[a-z][a-z_0-9 ]*[ *]\([a-z][a-z_0-9]*\)(.*/\1/p' "$@" | sort -u > "$tmp.declared"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TtWw]$/ {sub(/@.*/, "", $3); print $3}' | sort -u > "$tmp.exported"
if ! cmp -s "$tmp.declared" "$tmp.exported"; then
	echo "check_exports: $lib does not export exactly the public API:" >&2
	diff "$tmp.declared" "$tmp.exported" | sed -n 's/^< /  declared, not exported: /p; s/^> /  exported, not declared: /p' >&2
	exit 1
fi
unprefixed=$(grep -v '^fr_' "$tmp.exported" || true)
if [ -n "$unprefixed" ]; then
	echo "check_exports: $lib exports names without the fr_ prefix:" $unprefixed >&2
	exit 1
fi
# Types and macros too: every #define, struct/enum tag and typedef of the public headers.
names=$(sed -n 's/^#define \([A-Za-z_][A-Za-z0-9_]*\).*/\1/p; s/^\(struct\|enum\) \([A-Za-z_][A-Za-z0-9_]*\).*/\2/p; s/^typedef .* \**\([A-Za-z_][A-Za-z0-9_]*\);.*/\1/p' "$@" |
	grep -vE '^(fr_|FR_|FRAMERING_[A-Z_]*_H$)' || true)
if [ -n "$names" ]; then
	echo "check_exports: public headers declare names without the fr_/FR_ prefix:" $names >&2
	exit 1
fi
echo "check_exports: $(wc -l < "$tmp.exported") functions, exactly those of the headers, all fr_"
