#!/usr/bin/env python3
"""report.py RESULTS.json [--expiry FILE | --expiry-skipped] [--wall TEXT]

One table with every target of issue 15 and whether it is met, pg_foreman
beside pg_cron where pg_cron has a comparable figure, then the details.
RESULTS.json is bench.py's; FILE is the expiry benchmark's results.json
({"layouts": [{"layout", "batched_rows_per_s", "unbounded_rows_per_s",
"ratio", "writer_p99_ms_baseline", "writer_p99_ms_batched",
"writer_p99_ratio"}, ...]}, one per index layout).

A figure that cannot be computed from what was measured is shown as MISSING
and makes the exit status 1; a missed target does not. Nothing is filled in.
"""
import argparse
import json
import math
import sys
import time

FM, FP, CL, CB = "pg_foreman", "pg_foreman parallel", "pg_cron (libpq)", "pg_cron (bgw)"
LAYOUTS = ("pk", "created_at", "partial")
EXPIRY_FIELDS = ("batched_rows_per_s", "unbounded_rows_per_s", "ratio", "writer_p99_ms_baseline",
                 "writer_p99_ms_batched", "writer_p99_ratio")
HEAD = ("#", "measure", "pg_foreman", "pg_cron libpq", "pg_cron bgw", "target", "met")


class Missing(Exception):
    pass


def pct(xs, p):
    if not xs:
        raise Missing("no samples")
    s = sorted(xs)
    k = (len(s) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def ms(v):
    return f"{v:,.0f} ms" if v >= 100 else f"{v:.1f} ms" if v >= 10 else f"{v:.2f} ms"


def need(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            raise Missing(f"no '{k}' in the results")
        d = d[k]
    return d


class Report:
    def __init__(self, r, expiry, expiry_note, expiry_skipped=False, wall=""):
        self.r = r
        self.expiry = expiry
        self.expiry_note = expiry_note
        self.expiry_skipped = expiry_skipped
        self.wall = wall
        self.rows = []
        self.missing = []
        self.verdicts = []

    # -------------------------------------------------------------- helpers
    def windows(self, system):
        """The system's windows of 100 jobs (not those of pg_cron's single job)."""
        w = [x for x in self.r.get("windows", []) if x["system"] == system and x["jobs"] > 1]
        if not w:
            raise Missing(f"no window of {system} with {self.r['workload']['jobs']} jobs")
        return w

    def cpu_per_run(self, system, net=False):
        w = self.windows(system)
        cpu = sum(x["cpu_ms"] for x in w)
        if net:
            b = need(self.r, "baseline", w[0]["config"])
            cpu -= b["cpu_ms"] / b["seconds"] * sum(x["seconds"] for x in w)
        return cpu / sum(x["runs"] for x in w)

    def delays(self, system):
        return [d for x in self.windows(system) for d in x["delays_ms"]]

    def quick(self, knobs):
        """The knobs of `knobs` set below their full value in this run (and
        'expiry_perf' when the expiry benchmark ran under perf)."""
        q = dict(self.r.get("quick", {}))
        if isinstance(self.expiry, dict) and self.expiry.get("perf") is True:
            q["expiry_perf"] = True
        return [k for k in knobs if k in q]

    def add(self, no, measure, fm, cl="", cb="", target="", ok=None, knobs=()):
        """One row; ok = None for a detail row, else whether the target is met."""
        met = ""
        if ok is not None:
            met = "yes" if ok else "NO"
            if self.quick(knobs):
                met += " (quick)"
            self.verdicts.append((self.label, ok, bool(self.quick(knobs))))
        self.rows.append((no, measure, fm, cl, cb, target, met))

    def section(self, no, measure, target, fn):
        """Rows of one target; what cannot be computed is MISSING."""
        self.label = f"{no} {measure}"
        try:
            fn()
        except (Missing, KeyError, ZeroDivisionError, ValueError, TypeError, IndexError) as e:
            why = e.args[0] if isinstance(e, Missing) else f"{type(e).__name__}: {e}"
            self.rows.append((no, measure, f"MISSING: {why}", "", "", target, "MISSING"))
            self.missing.append(f"{no} {measure}: {why}")

    # --------------------------------------------------------------- targets
    def cpu(self):
        cf, cl, cb = (self.cpu_per_run(s) for s in (FM, CL, CB))
        n = {s: sum(x["runs"] for x in self.windows(s)) for s in (FM, CL, CB)}
        k = ("boundaries",)
        self.add("1", "CPU per trivial run, all processes (100 jobs every minute)",
                 f"{cf:.3f} ms", f"{cl:.2f} ms", f"{cb:.2f} ms", "<= 0.15 ms", cf <= 0.15, k)
        self.label = "1 CPU per run, pg_cron / pg_foreman"
        self.add("", "  pg_cron / pg_foreman, same run", "", f"{cl / cf:.0f}x", f"{cb / cf:.0f}x", ">= 30x",
                 min(cl, cb) / cf >= 30, k)
        try:
            nets = [self.cpu_per_run(s, net=True) for s in (FM, CL, CB)]
            self.add("", "  the same, less the cluster's idle CPU (baseline)", f"{nets[0]:.3f} ms", f"{nets[1]:.2f} ms",
                     f"{nets[2]:.2f} ms")
        except Missing as e:
            self.add("", "  the same, less the cluster's idle CPU", f"not computed: {e}")
        self.add("", "  runs measured", str(n[FM]), str(n[CL]), str(n[CB]))

    def throughput(self):
        t = need(self.r, "throughput")
        w = self.r["workload"]
        sl = t["rate_by_5s"]
        self.add("2", f"1 sequential tier, {w['tput_jobs']:,} x SELECT 1 / 100 ms, full history, "
                 f"{t['seconds']:.0f} s: runs/s", f"{t['runs_per_s']:,.0f}", "n/a", "n/a", ">= 4,000",
                 t["runs_per_s"] >= 4000, ("tput_seconds",))
        self.add("", "  runs/s per 5-s slice: lowest / median / highest",
                 f"{min(sl):,.0f} / {pct(sl, .5):,.0f} / {max(sl):,.0f}")

    def one_job(self):
        one = need(self.r, "one_job")
        f = need(one, FM)
        floor = self.r["workload"]["one_job_min_samples"]
        if len(f) < floor and not self.quick(("boundaries",)):
            raise Missing(f"{len(f)} samples of pg_foreman's single job; a p99 needs {floor}")
        cron = [one.get(s, []) for s in (CL, CB)]
        if not all(cron):
            raise Missing("no start delay of pg_cron's single job")
        p99 = pct(f, .99)
        self.add("3", "1 job due at a boundary: start delay p99", f"{ms(p99)} (n={len(f)})",
                 *(f"{ms(max(c))} (n={len(c)}: max; {max(c) / p99:.1f}x)" if len(c) < floor
                   else f"{ms(pct(c, .99))} ({pct(c, .99) / p99:.1f}x)" for c in cron),
                 "<= 2 ms", p99 <= 2, ("boundaries",))
        self.add("", "  p50 / max", f"{ms(pct(f, .5))} / {ms(max(f))}",
                 *(f"{ms(pct(c, .5))} / {ms(max(c))}" for c in cron))

    def p95s(self, system):
        """The p95 start delay of each boundary of `system`'s 100-job windows."""
        return [pct(w["delays_ms"], .95) for w in self.windows(system)]

    def burst(self):
        """Target 4: the p95 of the 100 runs due at one instant, one per
        boundary; the row shows their median (one boundary slowed by other
        load on the machine does not decide it) and the next row the worst."""
        f, l, b = (self.p95s(s) for s in (FM, CL, CB))
        p95 = pct(f, .5)
        self.add("4", "100 jobs due at one instant, sequential tier: p95 start delay (median of the boundaries)",
                 ms(p95), *(f"{ms(pct(x, .5))} ({pct(x, .5) / p95:.1f}x)" for x in (l, b)), "<= 25 ms", p95 <= 25,
                 ("boundaries",))
        self.add("", "  worst boundary's p95; boundaries", *(f"{ms(max(x))}; {len(x)}" for x in (f, l, b)))
        self.add("", "  all runs pooled: p50 / p95 / max",
                 *(f"{ms(pct(d, .5))} / {ms(pct(d, .95))} / {ms(max(d))}" for d in (self.delays(s) for s in (FM, CL, CB))))

    def parallel(self):
        f = self.p95s(FP)
        dp = self.delays(FP)
        c = self.r["workload"]["par_concurrency"]
        self.add("5", f"the same, parallel tier (concurrency {c}): p95 start delay (median of the boundaries)",
                 ms(pct(f, .5)), "", "", "<= 10 ms", pct(f, .5) <= 10, ("boundaries",))
        self.add("", "  worst boundary's p95; pooled p50 / p95 / max; CPU per run",
                 f"{ms(max(f))}; {ms(pct(dp, .5))} / {ms(pct(dp, .95))} / {ms(max(dp))}; {self.cpu_per_run(FP):.3f} ms")

    def idle(self):
        i = need(self.r, "idle")
        self.add("6", f"{i['dbs']} databases x {i['tiers']} tiers, nothing due: pg_foreman's CPU "
                 f"({i['seconds']:.0f} s)", f"{i['core_pct']:.3f}% of a core", "", "", "< 0.5%", i["core_pct"] < 0.5,
                 ("idle_dbs", "idle_seconds"))

    def memory(self):
        pts = need(self.r, "memory", "points")
        if len(pts) < 3:
            raise Missing("the memory measurement did not reach its run count")
        w, a = pts[1], pts[-1]
        runs = a["runs"] - w["runs"]
        if runs < self.r["settings"]["mem_runs"]:
            raise Missing(f"only {runs:,} of {self.r['settings']['mem_runs']:,} runs measured")
        g = (a["RssAnon"] - w["RssAnon"]) / 1024
        self.add("7", f"coordinator's RssAnon growth over {runs:,} runs", f"{g:+.2f} MiB", "", "",
                 "< 1 MiB", g < 1, ("mem_runs",))
        self.add("", "  from its start (0 runs); VmRSS (with shared buffers)",
                 f"{(a['RssAnon'] - pts[0]['RssAnon']) / 1024:+.2f} MiB; {(a['VmRSS'] - w['VmRSS']) / 1024:+.1f} MiB")

    def expiry_rows(self):
        if self.expiry_skipped:
            self.rows.append(("8", "expiry", "not run (BENCH_EXPIRY=0): does not answer issue 15", "", "",
                              ">= 75%, <= 1.5x", "skipped"))
            return
        if self.expiry_note:
            raise Missing(self.expiry_note)
        by = {x.get("layout"): x for x in need(self.expiry, "layouts")}
        for lay in LAYOUTS:
            self.section("8", f"expiry, index {lay}", "", lambda lay=lay: self.expiry_layout(lay, by))

    def expiry_layout(self, lay, by):
        if lay not in by:
            raise Missing(f"no layout '{lay}' in the expiry results")
        x = by[lay]
        for key in EXPIRY_FIELDS:
            if not isinstance(x.get(key), (int, float)):
                raise Missing(f"layout '{lay}' has no number '{key}' in the expiry results")
        b, u = float(x["batched_rows_per_s"]), float(x["unbounded_rows_per_s"])
        p0, p1 = float(x["writer_p99_ms_baseline"]), float(x["writer_p99_ms_batched"])
        self.label = f"8 expiry {lay}: rows/s"
        k = ("expiry_perf",)
        self.add("8", f"expiry, index {lay}: batched rows/s vs one unbounded UPDATE",
                 f"{b / u:.0%} ({b:,.0f} vs {u:,.0f})", "", "", ">= 75%", b / u >= 0.75, k)
        self.label = f"8 expiry {lay}: writer p99"
        self.add("8", f"expiry, index {lay}: writer p99, batched vs no maintenance",
                 f"{p1 / p0:.2f}x ({ms(p1)} vs {ms(p0)})", "", "", "<= 1.5x", p1 / p0 <= 1.5, k)
        for key, mine in (("ratio", b / u), ("writer_p99_ratio", p1 / p0)):
            given = float(x[key])
            if not (math.isclose(given, mine, rel_tol=0.02) or math.isclose(given, mine * 100, rel_tol=0.02)):
                self.add("", f"  note: results.json says {key} = {given:g}, its rows/s and ms say {mine:.3f}", "")

    # ---------------------------------------------------------------- output
    def build(self):
        self.section("1", "CPU per trivial run", "<= 0.15 ms", self.cpu)
        self.section("2", "one sequential tier: runs/s", ">= 4,000", self.throughput)
        self.section("3", "1 job due at a boundary: p99", "<= 2 ms", self.one_job)
        self.section("4", "100 jobs at one instant, sequential: p95", "<= 25 ms", self.burst)
        self.section("5", "100 jobs at one instant, parallel: p95", "<= 10 ms", self.parallel)
        self.section("6", "idle databases: CPU", "< 0.5%", self.idle)
        self.section("7", "coordinator RssAnon growth", "< 1 MiB", self.memory)
        self.section("8", "expiry", ">= 75%, <= 1.5x", self.expiry_rows)

    def table(self):
        widths = [max(len(str(x[c])) for x in self.rows + [HEAD]) for c in range(len(HEAD))]
        line = lambda x: "  ".join(str(v).ljust(widths[c]) for c, v in enumerate(x)).rstrip()  # noqa: E731
        return [line(HEAD), line(["-" * w for w in widths])] + [line(x) for x in self.rows]

    def banner(self):
        r = self.r
        out = []
        m = r.get("machine", {})
        out.append(f"pg_foreman vs pg_cron (issue 15), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(r['started']))}"
                   + (f", {self.wall}" if self.wall else ""))
        if m:
            out.append(f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem_gib']:.1f} GiB, Linux {m['kernel']}; "
                       f"{m['postgres']}; pg_cron {m['pg_cron']}, pg_foreman {m['pg_foreman']} ({m['source']})")
        out.append(f"load average before/after: {r['load_before'][0]:.2f} / {r['load_after'][0]:.2f}")
        if r.get("quick") or self.expiry_skipped or self.quick(("expiry_perf",)):
            knobs = [f"{k} {v[0]:,} (full: {v[1]:,})" for k, v in r.get("quick", {}).items()]
            knobs += ["expiry not run"] if self.expiry_skipped else []
            knobs += ["expiry run under perf (PERF=1)"] if self.quick(("expiry_perf",)) else []
            out.append(f"QUICK TRY - {', '.join(knobs)}: the rows marked (quick) or skipped do not answer issue 15")
        return out

    def summary(self):
        full = [v for v in self.verdicts if not v[2]]
        quick = [v for v in self.verdicts if v[2]]
        out = [f"targets met: {sum(1 for v in full if v[1])} of {len(full)} measured in full"
               + (f"; quick try: {sum(1 for v in quick if v[1])} of {len(quick)}" if quick else "")]
        missed = [v[0] for v in self.verdicts if not v[1]]
        if missed:
            out.append("missed: " + "; ".join(missed))
        if self.missing:
            out.append(f"MISSING MEASUREMENTS ({len(self.missing)}): this run does not answer issue 15")
            out += [f"  {m}" for m in self.missing]
        for e in self.r.get("errors", []):
            out.append(f"  bench.py: {e}")
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--expiry")
    ap.add_argument("--expiry-skipped", action="store_true")
    ap.add_argument("--wall", default="")
    ap.add_argument("--verdict", help="write 'complete', 'quick' or 'missing' here (run.sh --copy-pictures reads it)")
    a = ap.parse_args()
    r = json.load(open(a.results))
    expiry, note = None, None
    if not a.expiry_skipped:
        try:
            expiry = json.load(open(a.expiry))
        except FileNotFoundError:
            note = f"{a.expiry} does not exist: the expiry benchmark wrote no results"
        except (OSError, ValueError) as e:
            note = f"{a.expiry} is unreadable: {e}"
    rep = Report(r, expiry, note, a.expiry_skipped, a.wall)
    rep.build()
    import details  # the section under the table
    out = rep.banner() + [""] + rep.table() + [""] + rep.summary() + [""] + details.lines(r, expiry)
    print("\n".join(out))
    missing = bool(rep.missing or r.get("errors"))
    if a.verdict:
        quick = r.get("quick") or a.expiry_skipped or rep.quick(("expiry_perf",))
        with open(a.verdict, "w") as f:
            f.write("missing\n" if missing else "quick\n" if quick else "complete\n")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
