#!/bin/sh
# cleanup_stale.sh - remove /dev/shm segments left by ring test processes that died (frt-<pid>-..., frt-fuzz-<pid>).
# Run by ctest after the ring tests (FIXTURES_CLEANUP); segments of live test processes are left alone.
case "$1" in
-h|--help) echo "usage: cleanup_stale.sh   (removes /dev/shm/frt-* of dead test processes)"; exit 0 ;;
esac
removed=0
for f in /dev/shm/frt-*; do
	[ -e "$f" ] || continue
	base=${f#/dev/shm/frt-}
	pid=${base#fuzz-}
	pid=${pid%%-*}
	case "$pid" in
	''|*[!0-9]*) continue ;;
	esac
	if ! kill -0 "$pid" 2>/dev/null; then
		rm -f "$f" && removed=$((removed + 1)) && echo "removed stale $f"
	fi
done
echo "cleanup_stale: $removed stale segment(s) removed"
exit 0
