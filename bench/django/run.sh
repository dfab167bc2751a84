#!/usr/bin/env bash
# Side by side: blobcache's file driver (main.go) and Django's FileBasedCache
# (filebased.py) on the same phases, the same disk and the same temporary
# parent directory, RUNS times each (default 5), alternating, then a table of
# the medians and the speed ratio Django ns/op over blobcache ns/op (above 1:
# blobcache is faster). A bench helper, not a test: nothing in CI runs it.
#
#	bench/django/run.sh            # RUNS=9 TMPDIR=/mnt/disk bench/django/run.sh
#
# Django is Debian's python3-django for /usr/bin/python3, installed with
# apt-get when missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export AWS_EC2_METADATA_DISABLED=true
runs=${RUNS:-5}
py=/usr/bin/python3

if ! "$py" -c 'import django' 2>/dev/null; then
	echo "installing python3-django with apt-get" >&2
	apt-get install -y python3-django >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-django.XXXXXX")
trap 'rm -rf "$work"' EXIT
go build -o "$work/blobcache-bench" ./bench/django
mkdir "$work/stores"

out="$work/results"
for i in $(seq "$runs"); do
	echo "run $i/$runs" >&2
	"$work/blobcache-bench" -dir "$work/stores" >>"$out"
	"$py" bench/django/filebased.py -dir "$work/stores" >>"$out"
done

"$py" - "$out" "$runs" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    impl, phase, n, ns = line.split()
    rows.setdefault(phase, {}).setdefault(impl, []).append(float(ns))
print("median of %s runs each, ns/op (clear: per entry)" % sys.argv[2])
print("%-7s %14s %14s %8s" % ("phase", "Django", "blobcache", "ratio"))
for phase in ["set", "get", "add", "delete", "clear"]:
    d = statistics.median(rows[phase]["django"])
    b = statistics.median(rows[phase]["blobcache"])
    print("%-7s %14.0f %14.0f %7.2fx" % (phase, d, b, d / b))
PY
