#!/usr/bin/env python3
"""plots.py RESULTS.json DIR: the benchmark's pictures, drawn with matplotlib
(Debian's python3-matplotlib) from bench.py's results, into DIR:

  start_delay.svg  start delays of the 100 jobs due at one instant: the
                   empirical distribution (ECDF) of pg_foreman (sequential
                   and parallel tier) and pg_cron (libpq, background workers)
  throughput.svg   runs/s of the sequential tier, second by second and per
                   5-s slice, over the throughput window
  memory.svg       the coordinator's private memory (RssAnon) by runs

A picture whose figures were not measured is not drawn (said on stderr; the
table already says MISSING). The SVGs carry no date and fixed ids, so the
same results give the same file.
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.hashsalt"] = "pg_foreman-bench"
import matplotlib.pyplot as plt  # noqa: E402

SERIES = (("pg_foreman", "pg_foreman, sequential tier", "tab:blue"),
          ("pg_foreman parallel", "pg_foreman, parallel tier (8)", "tab:cyan"),
          ("pg_cron (libpq)", "pg_cron, libpq", "tab:red"),
          ("pg_cron (bgw)", "pg_cron, background workers", "tab:orange"))


def subtitle(r):
    m = r.get("machine", {})
    pg = m.get("postgres", "?").split(" (")[0].split(" on ")[0]
    q = "\nQUICK TRY: does not answer issue 15" if r.get("quick") else ""
    return (f"{m.get('nproc', '?')} CPUs, {pg}, pg_foreman {m.get('pg_foreman', '?')} "
            f"({m.get('source', '?')}), pg_cron {m.get('pg_cron', '?')}{q}")


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)
    print(f"plots.py: wrote {path}")


def start_delay(r, path):
    fig, ax = plt.subplots(figsize=(9, 5))
    drawn = 0
    for system, label, color in SERIES:
        d = sorted(x for w in r.get("windows", []) if w["system"] == system and w["jobs"] > 1 for x in w["delays_ms"])
        if not d:
            continue
        ys = [(i + 1) / len(d) for i in range(len(d))]
        ax.step([max(x, 0.01) for x in d], ys, where="post", color=color, label=f"{label} ({len(d)} runs)")
        drawn += 1
    if not drawn:
        raise LookupError("no start delays of the 100-job boundaries")
    for ms, what in ((25, "target p95, sequential: 25 ms"), (10, "target p95, parallel: 10 ms")):
        ax.axvline(ms, color="grey", linestyle=":", linewidth=1)
        ax.text(ms, 0.5, " " + what, rotation=90, fontsize=7, color="grey", va="center")
    ax.axhline(0.95, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("start delay (ms after the boundary, log scale)")
    ax.set_ylabel("fraction of runs started")
    ax.set_title(f"100 jobs due at one instant: start delays\n{subtitle(r)}", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    save(fig, path)


def throughput(r, path):
    t = r.get("throughput")
    if not t or not t.get("per_second"):
        raise LookupError("no throughput figures")
    per = t["per_second"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.plot([i + 0.5 for i in range(len(per))], per, color="tab:blue", linewidth=1, label="runs/s, each second")
    xs, ys = [], []
    for i, v in enumerate(t["rate_by_5s"]):
        xs += [5 * i, min(5 * (i + 1), len(per))]
        ys += [v, v]
    ax.plot(xs, ys, color="tab:green", linewidth=2, label="runs/s, per 5-s slice")
    ax.axhline(t["runs_per_s"], color="tab:blue", linestyle="--", linewidth=1,
               label=f"mean over {t['seconds']:.0f} s: {t['runs_per_s']:,.0f}")
    ax.axhline(4000, color="grey", linestyle=":", linewidth=1, label="target: 4,000")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("seconds into the throughput window")
    ax.set_ylabel("runs started per second")
    ax.set_title("one sequential tier, 1,000 x SELECT 1 every 100 ms, full history\n" + subtitle(r), fontsize=9)
    ax.legend(loc="best", fontsize=8)
    ax.grid(True, alpha=0.3)
    save(fig, path)


def memory(r, path):
    pts = r.get("memory", {}).get("points", [])
    if len(pts) < 3:
        raise LookupError("no memory points")
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot([p["runs"] for p in pts], [p["RssAnon"] / 1024 for p in pts], marker="o", color="tab:purple",
            label="RssAnon (private memory)")
    w = pts[1]["RssAnon"] / 1024
    ax.axhline(w + 1, color="grey", linestyle=":", linewidth=1, label="target: < 1 MiB above the warm-up")
    ax.set_xlabel("runs of the coordinator")
    ax.set_ylabel("MiB")
    ax.set_title("the tput coordinator's private memory by runs\n" + subtitle(r), fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, alpha=0.3)
    save(fig, path)


def main():
    if len(sys.argv) != 3:
        print("usage: plots.py RESULTS.json DIR", file=sys.stderr)
        return 2
    r = json.load(open(sys.argv[1]))
    status = 0
    for name, fn in (("start_delay.svg", start_delay), ("throughput.svg", throughput), ("memory.svg", memory)):
        path = os.path.join(sys.argv[2], name)
        if os.path.exists(path):
            os.remove(path)
        try:
            fn(r, path)
        except LookupError as e:
            print(f"plots.py: {name} NOT DRAWN: {e}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
