#!/usr/bin/env python3
"""report.py RESULTS.json [EXPIRY_OUTPUT]: print the benchmark table.

Reads what bench.py measured (and, when given, the output of
test/bench/expiry/run.sh) and prints one table, pg_foreman vs pg_cron with
ratios and the issue's targets. Exits 1 if a figure the table needs is
missing: nothing is filled in."""
import json
import math
import sys
import time


class Missing(Exception):
    pass


def pct(xs, p):
    if not xs:
        raise Missing("percentile of no values")
    s = sorted(xs)
    k = (len(s) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def windows(r, system):
    w = [x for x in r["windows"] if x["system"] == system]
    if not w:
        raise Missing(f"no measurement of {system}")
    return w


def cpu_per_run_ms(r, system):
    w = windows(r, system)
    return sum(x["cpu_ms"] for x in w) / sum(x["runs"] for x in w)


def net_cpu_per_run_ms(r, system):
    """Less the cluster's CPU when nothing is due (same configuration), at its
    measured rate, over the windows' length."""
    w = windows(r, system)
    b = r["baseline"].get(w[0]["config"])
    if not b or b["seconds"] <= 0:
        raise Missing(f"no baseline for configuration {w[0]['config']}")
    rate = b["cpu_ms"] / b["seconds"]
    return (sum(x["cpu_ms"] for x in w) - rate * sum(x["seconds"] for x in w)) / sum(x["runs"] for x in w)


def delays(r, system):
    return [d for x in windows(r, system) for d in x["delays_ms"]]


def f(v, nd=1):
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.{nd}f}"


def trio(xs):
    return f"{f(pct(xs, .5))} / {f(pct(xs, .95))} / {f(max(xs))}"


def main():
    r = json.load(open(sys.argv[1]))
    expiry = open(sys.argv[2]).read() if len(sys.argv) > 2 else None
    FM, CL, CB = "pg_foreman", "pg_cron (libpq)", "pg_cron (bgw)"
    m = r["machine"]
    out = []
    p = out.append
    p(f"pg_foreman vs pg_cron, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(r['started']))}, "
      f"{(r['finished'] - r['started']) / 60:.1f} min")
    p(f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem_gib']:.1f} GiB, Linux {m['kernel']}; {m['postgres']}; "
      f"pg_cron {m['pg_cron']}, pg_foreman {m['pg_foreman']} ({m.get('source', 'unknown')})")
    p(f"load average before/after: {r['load_before'][0]:.2f} / {r['load_after'][0]:.2f}")
    p("")

    rows = []  # (measure, foreman, cron libpq, cron bgw, ratio, target, met)
    st = r["settings"]
    cf, cl, cb = (cpu_per_run_ms(r, s) for s in (FM, CL, CB))
    nf, nl, nb = (net_cpu_per_run_ms(r, s) for s in (FM, CL, CB))
    ratio_l, ratio_b = cl / cf, cb / cf
    met = "yes" if min(ratio_l, ratio_b) >= 80 else "NO"
    runs = {s: sum(x["runs"] for x in windows(r, s)) for s in (FM, CL, CB)}
    rows.append((f"1 CPU per run, ms ({st['jobs']} jobs, {st['boundaries']} boundaries each)", f(cf, 3), f(cl, 2), f(cb, 2),
                 f"{ratio_l:.0f}x / {ratio_b:.0f}x", "<= 1/80 (>= 80x)", met))
    rows.append(("  same, less the idle baseline", f(nf, 3), f(nl, 2), f(nb, 2),
                 f"{nl / nf:.0f}x / {nb / nf:.0f}x" if nf > 0 else "-", "", ""))
    rows.append(("  runs measured", str(runs[FM]), str(runs[CL]), str(runs[CB]), "", "", ""))
    df, dl, db = (delays(r, s) for s in (FM, CL, CB))
    rows.append((f"2 start delay, {st['jobs']} jobs, p50/p95/max ms", trio(df), trio(dl), trio(db),
                 f"{pct(dl, .95) / pct(df, .95):.0f}x / {pct(db, .95) / pct(df, .95):.0f}x (p95)",
                 "p95 <= 50 ms", "yes" if pct(df, .95) <= 50 else "NO"))
    one = r["one_job"]
    for s in (FM, CL, CB):
        if not one.get(s):
            raise Missing(f"no single-job start delay of {s}")
    rows.append(("  start delay, 1 job, p50/p95/max ms", trio(one[FM]), trio(one[CL]), trio(one[CB]),
                 f"{pct(one[CL], .5) / pct(one[FM], .5):.0f}x / {pct(one[CB], .5) / pct(one[FM], .5):.0f}x (p50)",
                 "", ""))
    rows.append(("  samples (1 job)", str(len(one[FM])), str(len(one[CL])), str(len(one[CB])), "", "", ""))
    t = r["throughput"]
    st = r["settings"]
    rows.append((f"3 throughput, {st['tput_jobs']:,} x SELECT 1 / 100 ms, {t['seconds']:.0f} s", f"{t['runs_per_s']:,.0f} runs/s", "n/a", "n/a",
                 "", ">= 2,000 runs/s", "yes" if t["runs_per_s"] >= 2000 else "NO"))
    rows.append(("  CPU per run (all processes)", f"{t['cpu_per_run_us']:.0f} us", "", "", "", "", ""))
    aw = t["after_window"]
    rows.append((f"  the same tier for the {aw['runs']:,} runs after (memory)", f"{aw['runs_per_s']:,.0f} runs/s",
                 "", "", "", "", ""))
    rows.append(("  start delay p50 / p99", f"{t['p50_delay_ms']:.0f} / {t['p99_delay_ms']:.0f} ms", "", "", "", "", ""))
    i = r["idle"]
    rows.append((f"4 idle, {i['jobs']:,} hourly jobs, {i['seconds']:.0f} s", f"{i['core_pct']:.4f}% core",
                 "", "", "", "< 0.1% of a core", "yes" if i["core_pct"] < 0.1 else "NO"))
    pts = r["memory"]["points"]
    z, w, a = pts
    mib = lambda kib: kib / 1024
    g_rss, g_anon, g_shm = (mib(a[k] - w[k]) for k in ("VmRSS", "RssAnon", "RssShmem"))
    rows.append((f"5 coordinator VmRSS at {w['runs']:,} -> {a['runs']:,} runs",
                 f"{mib(w['VmRSS']):.1f} -> {mib(a['VmRSS']):.1f} MiB", "", "", "",
                 "growth < 1 MiB", ("yes" if g_rss < 1 else "NO") + f" (private: {'yes' if g_anon < 1 else 'NO'})"))
    rows.append((f"  growth over {a['runs'] - w['runs']:,} runs: VmRSS / private (RssAnon) / shared (RssShmem)",
                 f"{g_rss:+.2f} / {g_anon:+.2f} / {g_shm:+.2f} MiB", "", "", "", "", ""))
    rows.append(("  the same from the coordinator's start (0 runs)",
                 " / ".join(f"{mib(a[k] - z[k]):+.2f}" for k in ("VmRSS", "RssAnon", "RssShmem")) + " MiB",
                 "", "", "", "", ""))

    head = ("measure", "pg_foreman", "pg_cron libpq", "pg_cron bgw", "ratio (cron/foreman)", "target", "met")
    widths = [max(len(str(x[c])) for x in rows + [head]) for c in range(len(head))]
    line = lambda x: "  ".join(str(v).ljust(widths[c]) for c, v in enumerate(x)).rstrip()
    p(line(head))
    p(line(["-" * w for w in widths]))
    for x in rows:
        p(line(x))
    p("")

    # Where the CPU went: live processes, per run (reaped ones only in the totals).
    p("CPU per run by process (ms; live processes; the rest is processes that ended, e.g. pg_cron's connections):")
    for s in (FM, CL, CB):
        w = windows(r, s)
        n = sum(x["runs"] for x in w)
        acc = {}
        for x in w:
            for k, v in x["live_process_ms"].items():
                acc[k] = acc.get(k, 0) + v
        total = sum(x["cpu_ms"] for x in w)
        top = sorted(acc.items(), key=lambda kv: -kv[1])[:4]
        ended = total - sum(acc.values())
        p(f"  {s:16} " + ", ".join(f"{k} {v / n:.3f}" for k, v in top) + f", ended processes {ended / n:.3f}")
    acc = t["live_process_ms"]
    top = sorted(acc.items(), key=lambda kv: -kv[1])[:4]
    p(f"  {'throughput':16} " + ", ".join(f"{k} {v / t['runs'] * 1000:.0f} us" for k, v in top))
    p(f"  {'idle':16} " + ", ".join(f"{k} {v:.1f} ms" for k, v in sorted(i["per_process_ms"].items())))
    for cfg, b in sorted(r["baseline"].items()):
        p(f"  baseline ({cfg}): the whole cluster with nothing due: {b['cpu_ms'] / b['seconds']:.2f} ms CPU/s "
          f"over {b['seconds']:.0f} s")
    wl = windows(r, FM)
    p(f"  windows: pg_foreman {sum(x['seconds'] for x in wl) / len(wl):.1f} s, "
      f"pg_cron libpq {sum(x['seconds'] for x in windows(r, CL)) / len(windows(r, CL)):.1f} s, "
      f"pg_cron bgw {sum(x['seconds'] for x in windows(r, CB)) / len(windows(r, CB)):.1f} s on average "
      f"(from 1 s before the boundary until the runs' processes are gone + 0.5 s)")
    p(f"  throughput runs/s in 5 s slices: {', '.join(str(x) for x in t['rate_by_5s'])}")
    p(f"  throughput: {t['runs']:,} runs and {t['skipped_rows']:,} 'skipped' rows (coalesced fire times) in "
      f"{t['seconds']:.1f} s")
    if expiry is not None:
        p("")
        p("6 expiry (test/bench/expiry/run.sh):")
        lines = expiry.splitlines()
        try:
            start = next(k for k, l in enumerate(lines) if l.startswith("== results"))
        except StopIteration:
            raise Missing("the expiry benchmark printed no results")
        for l in lines[start + 1:]:
            p("  " + l if l else "")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (Missing, KeyError, ZeroDivisionError) as e:
        print(f"report.py: FAILED: a figure is missing: {e!r}", file=sys.stderr)
        sys.exit(1)
