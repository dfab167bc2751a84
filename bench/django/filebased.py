"""Times Django's FileBasedCache on the phases blobcache's file driver is
compared on (see run.sh and main.go beside this file):

    set     1,000 Sets of distinct keys, 100-byte values
    get     1,000 Gets of those keys (hits)
    add     1,000 Adds of new keys
    delete  200 Deletes of keys set above
    clear   one Clear of a fresh cache holding 250 entries (ns/op is per entry)

MAX_ENTRIES is 100000 so that no phase culls (Django's default, 300, would
cull during the set phase); TIMEOUT is 300 s, both caches' default. Run with
Debian's interpreter (python3-django):

    /usr/bin/python3 bench/django/filebased.py -dir /tmp/parent

It prints one line per phase, "django <phase> <ops> <ns/op>", and removes
what it made under the directory.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

import django
from django.conf import settings

if not settings.configured:
    settings.configure(CACHES={}, USE_TZ=True)
django.setup()

from django.core.cache.backends.filebased import FileBasedCache  # noqa: E402

SETS, GETS, ADDS, DELETES, CLEAR = 1000, 1000, 1000, 200, 250
VALUE = b"v" * 100
PARAMS = {"TIMEOUT": 300, "OPTIONS": {"MAX_ENTRIES": 100000}}


def timed(name, n, fn):
    start = time.perf_counter_ns()
    fn()
    elapsed = time.perf_counter_ns() - start
    print("django %s %d %.1f" % (name, n, elapsed / n), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-dir", default=None, help="parent of the cache directories (default: the system's temp dir)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="django-", dir=args.dir)
    try:
        c = FileBasedCache(os.path.join(work, "phases"), PARAMS)
        keys = ["key-%d" % i for i in range(SETS)]
        new = ["new-%d" % i for i in range(ADDS)]

        def sets():
            for k in keys:
                c.set(k, VALUE)

        def gets():
            for k in keys:
                if c.get(k) != VALUE:
                    sys.exit("get %s: not the value set" % k)

        def adds():
            for k in new:
                if not c.add(k, VALUE):
                    sys.exit("add %s: refused" % k)

        def deletes():
            for k in keys[:DELETES]:
                if not c.delete(k):
                    sys.exit("delete %s: nothing deleted" % k)

        timed("set", SETS, sets)
        timed("get", GETS, gets)
        timed("add", ADDS, adds)
        timed("delete", DELETES, deletes)

        full = FileBasedCache(os.path.join(work, "clear"), PARAMS)
        for i in range(CLEAR):
            full.set("clear-%d" % i, VALUE)
        timed("clear", CLEAR, full.clear)
        if os.listdir(full._dir):
            sys.exit("clear left entries behind")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
