"""Draw a suite's JSON as a bar chart: per scenario, each row's rate as a
ratio to raw-c's (1.0 = raw-c; the median of the per-repetition ratios),
one bar per row.

    python bench/plot.py bench/results/suite-....json chart.png

Run with the peers venv's python (run.sh --plot installs matplotlib there;
it is not a dependency of pseud-native)."""
import json
import statistics
import sys

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

BASE = 'raw-c'


def ratios(data):
    """{row: [ratio or None per scenario]}, the scenario names."""
    results = data['results']
    names = [n for n, table in results.items()
             if not n.startswith('rss-') and 'median' in table.get(BASE, {})]
    rows = [r for r in data.get('rows') or next(iter(results.values())) if r != BASE]
    out = {}
    for row in rows:
        out[row] = [_ratio(results[n].get(row, {}), results[n][BASE]) for n in names]
    return out, names


def _ratio(mine, base):
    """The median of the per-repetition ratios (as the tables print them)
    when both rows have a rate for every repetition, else of the medians."""
    if 'median' not in mine:
        return None
    a, b = mine.get('runs', []), base.get('runs', [])
    if a and len(a) == len(b):
        return statistics.median(x / y for x, y in zip(a, b))
    return mine['median'] / base['median']


def draw(data, path):
    table, names = ratios(data)
    if not names:
        raise SystemExit('no scenario with a raw-c figure to compare with')
    rows = list(table)
    width = 0.8 / max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(names)), 4.8))
    for i, row in enumerate(rows):
        xs = [j + (i - (len(rows) - 1) / 2) * width for j in range(len(names))]
        heights = [v if v is not None else 0 for v in table[row]]
        bars = ax.bar(xs, heights, width, label=row)
        for x, v in zip(xs, table[row]):
            ax.text(x, (v or 0) + 0.01, 'n/a' if v is None else '%.2f' % v,
                    ha='center', va='bottom', fontsize=7, rotation=90)
        del bars
    ax.axhline(1.0, color='black', linewidth=0.8, linestyle='--', label='raw-c (= 1)')
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_ylabel('rate / raw-c rate (same run)')
    busy = ' (machine busy)' if data.get('load', {}).get('busy') else ''
    ax.set_title('pseud-native benchmark: ratio to raw-c, %d repetition(s) of %.1f s%s'
                 % (data.get('repeat', 1), data.get('seconds', 0), busy))
    top = max([v for vals in table.values() for v in vals if v is not None] + [1.0])
    ax.set_ylim(0, top * 1.25)
    ax.legend(fontsize=8, ncol=min(len(rows), 4), loc='upper right')
    left_out = [n for n in data['results'] if n not in names and not n.startswith('rss-')]
    if left_out:
        fig.text(0.01, 0.01, 'not shown (no raw-c figure to divide by): ' + ', '.join(left_out),
                 fontsize=7, color='dimgray')
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == '__main__':
    with open(sys.argv[1]) as fh:
        draw(json.load(fh), sys.argv[2])
