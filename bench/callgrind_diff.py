"""Per-call profile from two callgrind runs (N and 2N calls).

    python bench/callgrind_diff.py RUN_N RUN_2N N [--top 40] [--inclusive]

Subtracts, function by function, callgrind_annotate's counts of the N run
from the 2N run's and divides by N: what one call costs in each function,
with start-up and shutdown cancelled out."""
import argparse
import re
import subprocess
from collections import defaultdict

LINE = re.compile(r'^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$')


def per_function(path, inclusive):
    out = subprocess.run(['callgrind_annotate', '--threshold=100', '--auto=no',
                          '--inclusive=' + ('yes' if inclusive else 'no'), path],
                         check=True, capture_output=True, text=True).stdout
    counts = defaultdict(int)
    body = out.split('file:function', 1)[-1]
    for line in body.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        name = m.group(2)
        # "/long/path/file.c:func [lib]" -> "file.c:func [lib basename]"
        name = re.sub(r'^\S*/', '', name.split(' [')[0])
        lib = re.search(r'\[(.*)\]', m.group(2))
        if lib:
            name += ' [' + lib.group(1).rsplit('/', 1)[-1] + ']'
        counts[name] += int(m.group(1).replace(',', ''))
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('run_n')
    ap.add_argument('run_2n')
    ap.add_argument('n', type=int)
    ap.add_argument('--top', type=int, default=40)
    ap.add_argument('--inclusive', action='store_true')
    args = ap.parse_args()
    a = per_function(args.run_n, args.inclusive)
    b = per_function(args.run_2n, args.inclusive)
    diff = {k: (b.get(k, 0) - a.get(k, 0)) / args.n for k in set(a) | set(b)}
    total = sum(diff.values()) if not args.inclusive else None
    rows = sorted(diff.items(), key=lambda kv: -kv[1])[:args.top]
    if total is not None:
        print('%10.0f  Ir per call, total' % total)
    for name, v in rows:
        share = ' (%4.1f%%)' % (100 * v / total) if total else ''
        print('%10.0f%s  %s' % (v, share, name))


if __name__ == '__main__':
    main()
