"""Summarises hyperfine's --export-json as a markdown table (times in ms).

    python3 benches/hyperfine_table.py results.json SECRETS [--target NAME MS] [--compare A B]

The first command is the baseline (`true`): the last column is each other
command's median overhead over it. --target NAME MS says whether NAME's
median overhead is under MS; --compare A B prints B's median minus A's.
"""
import json
import statistics
import sys


def quantile(times, p):
    times = sorted(times)
    k = (len(times) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(times) - 1)
    return times[lo] + (times[hi] - times[lo]) * (k - lo)


def main(argv):
    path, secrets, options = argv[0], argv[1], argv[2:]
    results = json.load(open(path))["results"]
    medians = {r["command"]: statistics.median(r["times"]) * 1e3 for r in results}
    base = medians[results[0]["command"]]
    print()
    print(f"{secrets} secrets, {len(results[0]['times'])} runs each; times in ms")
    print()
    print("| command | median | p25–p75 | min–max | mean ± σ | median overhead over `true` |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        t = [x * 1e3 for x in r["times"]]
        overhead = "—" if r is results[0] else f"{medians[r['command']] - base:+.2f}"
        print(
            f"| `{r['command']}` | {medians[r['command']]:.2f} | {quantile(t, .25):.2f}–{quantile(t, .75):.2f} | "
            f"{min(t):.2f}–{max(t):.2f} | {statistics.mean(t):.2f} ± {statistics.stdev(t):.2f} | {overhead} |"
        )
    while options:
        if options[0] == "--target":
            name, target = options[1], float(options[2])
            overhead = medians[name] - base
            verdict = "meets" if overhead < target else "misses"
            print()
            print(f"{name}: median overhead {overhead:.2f} ms ({verdict} the < {target:g} ms target)")
            options = options[3:]
        elif options[0] == "--compare":
            a, b = options[1], options[2]
            print()
            print(f"{b} minus {a}, median: {medians[b] - medians[a]:+.2f} ms")
            options = options[3:]
        else:
            sys.exit(f"unknown option {options[0]}")


main(sys.argv[1:])
