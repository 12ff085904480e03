"""details.py: the lines under report.py's table - where the CPU went, the
windows, the throughput slices, the memory points, the idle processes. They
explain the table's figures; nothing in them is a target. A detail that was
not measured is left out (the table already says MISSING)."""

FM, FP, CL, CB = "pg_foreman", "pg_foreman parallel", "pg_cron (libpq)", "pg_cron (bgw)"


def windows(r, system):
    return [x for x in r.get("windows", []) if x["system"] == system and x["jobs"] > 1]


def p95(xs):
    s = sorted(xs)
    k = (len(s) - 1) * 0.95
    lo = int(k)
    return s[lo] + (s[min(lo + 1, len(s) - 1)] - s[lo]) * (k - lo)


def started(r):
    """Processes a window started and still had at its end, per window."""
    out = []
    for s in (FM, FP):
        w = [x.get("new_processes") for x in windows(r, s)]
        if any(w):
            names = sorted({k for x in w if x for k in x})
            out.append(f"  {s:20} processes started in each window: " + "; ".join(
                f"{k} " + ", ".join(str((x or {}).get(k, 0)) for x in w) for k in names))
    return out


def boundaries(r):
    """p95 start delay of each boundary: is one of them the outlier?"""
    out = []
    for s in (FM, FP, CL, CB):
        w = windows(r, s)
        if w:
            out.append(f"  {s:20} by boundary: p95 start delay, ms: " + ", ".join(f"{p95(x['delays_ms']):.0f}" for x in w)
                       + "; CPU per run, ms: " + ", ".join(f"{x['cpu_ms'] / x['runs']:.3f}" for x in w))
    return out


def cpu_by_process(r):
    out = ["CPU per run by process, ms ('other': the postmaster and the processes that ended, e.g. pg_cron's"
           " connections):"]
    for s in (FM, FP, CL, CB):
        w = windows(r, s)
        if not w:
            continue
        n = sum(x["runs"] for x in w)
        acc = {}
        for x in w:
            for k, v in x["live_process_ms"].items():
                acc[k] = acc.get(k, 0) + v
        ended = sum(x["cpu_ms"] for x in w) - sum(acc.values())
        top = sorted(acc.items(), key=lambda kv: -kv[1])[:4]
        out.append(f"  {s:20} " + ", ".join(f"{k} {v / n:.3f}" for k, v in top) + f", other {ended / n:.3f}")
    return out


def windows_lines(r):
    out = []
    lens = [f"{s} {sum(x['seconds'] for x in windows(r, s)) / len(windows(r, s)):.2f} s"
            for s in (FM, FP, CL, CB) if windows(r, s)]
    if lens:
        out.append("  windows (from 0.25 s before the boundary to 0.2 s after the last run finished), on average: "
                   + ", ".join(lens))
    for cfg, b in sorted(r.get("baseline", {}).items()):
        out.append(f"  baseline, pg_cron {cfg} mode: the whole cluster with nothing due: "
                   f"{b['cpu_ms'] / b['seconds']:.2f} ms CPU/s over {b['seconds']:.0f} s ({b['windows']} gaps)")
    one = r.get("one_job", {}).get(FM)
    if one:
        spans = r.get("one_job_spans", [])
        extra = r.get("one_job_other_runs") or {}
        out.append(f"  pg_foreman's single job: {len(one)} runs, one a second in {len(spans)} gaps between the windows"
                   + (f"; runs not counted: {extra}" if extra else ""))
    return out


def throughput_lines(r):
    t = r.get("throughput")
    if not t:
        return []
    p50, p99 = t["delay_p50_p99_ms"]
    out = [f"throughput: {t['runs']:,} runs in {t['seconds']:.1f} s, {t['cpu_per_run_us']:.0f} us CPU per run "
           f"(all processes), start delay p50 {p50:.0f} / p99 {p99:.0f} ms, {t['skipped_rows']:,} 'skipped' rows "
           "(coalesced fire times)",
           "  runs/s per 5-s slice: " + ", ".join(f"{x:,.0f}" for x in t["rate_by_5s"])]
    top = sorted(t["live_process_ms"].items(), key=lambda kv: -kv[1])[:4]
    out.append("  CPU per run by process: " + ", ".join(f"{k} {v / t['runs'] * 1000:.0f} us" for k, v in top))
    return out


def memory_lines(r):
    m = r.get("memory")
    if not m or len(m.get("points", [])) < 2:
        return []
    pts = m["points"]
    line = ", ".join(f"{p['runs']:,}: {p['RssAnon'] / 1024:.2f}" for p in pts)
    out = [f"memory: the tput coordinator's RssAnon (MiB) by runs: {line}"]
    if m.get("seconds"):
        n = pts[-1]["runs"] - pts[1]["runs"]
        out.append(f"  {n:,} runs from the warm-up in {m['seconds']:.0f} s ({n / m['seconds']:,.0f} runs/s; the throughput "
                   "window, then on while the idle databases were made)")
    return out


def idle_lines(r):
    i = r.get("idle")
    if not i:
        return []
    per = ", ".join(f"{k} {v:.1f} ms" for k, v in i["per_kind_ms"].items())
    return [f"idle: {i['processes']} pg_foreman processes ({i['dbs']} databases x {i['tiers']} tiers, "
            f"{i['jobs_per_db']} hourly jobs each, and the launcher): {i['cpu_ms']:.1f} ms CPU in "
            f"{i['seconds']:.0f} s ({per})"]


def expiry_lines(expiry):
    if not isinstance(expiry, dict):
        return []
    extra = {k: v for k, v in expiry.items() if k != "layouts" and not isinstance(v, (dict, list))}
    return ["expiry (test/bench/expiry/results.json): " + ", ".join(f"{k} {v}" for k, v in extra.items())] if extra else []


def lines(r, expiry):
    out = cpu_by_process(r) + windows_lines(r) + boundaries(r) + started(r)
    for part in (throughput_lines(r), memory_lines(r), idle_lines(r), expiry_lines(expiry)):
        out += part
    return out
