"""Shared helpers of the bench/ scripts."""
import os
import statistics
import tempfile
import time


def spawn_and_wait(argv):
    """Returns (wall ms, cpu ms of the process tree, exit code, stderr text)."""
    null = os.open(os.devnull, os.O_RDWR)
    err = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
        (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
    _, status, ru = os.wait4(pid, 0)
    wall = (time.perf_counter() - t0) * 1e3
    os.close(null)
    err.seek(0)
    text = err.read().decode(errors="replace").strip()
    err.close()
    return wall, (ru.ru_utime + ru.ru_stime) * 1e3, os.waitstatus_to_exitcode(status), text


def report(runs, warmup, results, failures, first_column, extra=lambda name: ""):
    """Prints the table of interleaved runs (rows of (wall ms, cpu ms) per name) and up to three
    failures per name; returns {name: (wall mean, wall median, cpu mean, cpu median)}."""
    print(f"{runs} runs each, interleaved, after {warmup} warm-up runs; times in ms")
    print(f"{first_column:8s} {'wall mean':>10s} {'wall median':>12s} {'cpu mean':>10s} {'cpu median':>11s}")
    summary = {}
    for name, rows in results.items():
        if not rows:
            print(f"{name:8s} no successful run")
            continue
        walls, cpus = [r[0] for r in rows], [r[1] for r in rows]
        s = summary[name] = (statistics.mean(walls), statistics.median(walls),
                             statistics.mean(cpus), statistics.median(cpus))
        print(f"{name:8s} {s[0]:10.2f} {s[1]:12.2f} {s[2]:10.2f} {s[3]:11.2f}  {extra(name)}({len(rows)} ok)")
    for name, errs in failures.items():
        for e in errs[:3]:
            print(f"{name} failed: {e}")
        if len(errs) > 3:
            print(f"{name}: {len(errs) - 3} more failures")
    return summary


# --- results on disk: raw numbers (CSV), the summary (markdown) and a plot (PNG) --------------

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def write_csv(path, header, rows):
    """Writes rows (sequences) under a header line; numbers as Python prints them."""
    import csv
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def markdown_table(header, rows):
    """A markdown table of rows of strings or numbers (floats with 2 decimals)."""
    fmt = lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _gp_quote(s):
    # Backquotes would be command substitution in gnuplot, even in double quotes.
    return '"' + str(s).replace("`", "'").replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def bar_plot(png, title, panels, note=""):
    """Grouped bar chart(s) with gnuplot (Debian's gnuplot-nox), one PNG.

    panels: list of dicts, one plot side by side each (one per unit):
      {"title": str, "ylabel": "time (ms)", "groups": [metric names on the x axis],
       "series": [peer names, one bar colour each], "values": {series: [value per group]},
       "errors": optional {series: [(low, high) per group]} drawn as error bars}
    Every bar is labelled with its value. note: a line under the plots (machine, runs).
    Returns False (and says why) when gnuplot is missing; the CSV is the data either way."""
    import shutil as _shutil
    import subprocess as _subprocess
    gnuplot = _shutil.which("gnuplot")
    if not gnuplot:
        print(f"gnuplot not found (apt install gnuplot-nox): {png} not written")
        return False
    import textwrap as _textwrap
    width = 200 + sum(max(420, 55 * len(p['groups']) * (len(p['series']) + 1)) for p in panels)
    # The title and note lines wrapped to the picture's width (about 7 pixels a character at
    # 10 points), so a long note is not cut off at both sides.
    header = "\n".join(_textwrap.fill(line, max(40, (width - 40) // 7)) for line in
                       (title + ("\n" + note if note else "")).split("\n"))
    height = 544 + 16 * header.count("\n")
    script = [f"set terminal pngcairo size {width},{height} noenhanced font 'DejaVu Sans,10'",
              f"set output {_gp_quote(png)}",
              f"set multiplot layout 1,{len(panels)} title {_gp_quote(header)}",
              "set style data histogram", "set style histogram clustered gap 1",
              "set style fill solid 0.85 border -1", "set boxwidth 0.9", "set grid ytics",
              "set key top left", "set yrange [0:*]", "set offsets 0, 0, graph 0.12, 0",
              "set xtics nomirror", "set ytics nomirror"]
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
    blocks = []
    for p in panels:
        groups, series = p["groups"], p["series"]
        n = len(series)
        data = "\n".join(" ".join([_gp_quote(g)] + [repr(float(p["values"][s][i])) for s in series])
                         for i, g in enumerate(groups)) + "\ne\n"
        plots, inline = [], []
        for j, s in enumerate(series):
            plots.append(f"'-' using {j + 2}:xtic(1) title {_gp_quote(s)} lc rgb '{colours[j % len(colours)]}'")
            inline.append(data)
        # The value on top of each bar: a clustered bar j of group i sits at x = i + (j - (n-1)/2) / (n + gap).
        # 4 significant digits, whole numbers from 1000 up (25490, not 2.549e+04).
        for j, s in enumerate(series):
            label = f"(abs(${j + 2}) >= 1000 ? sprintf('%.0f', ${j + 2}) : sprintf('%.4g', ${j + 2}))"
            plots.append(f"'-' using ($0 + ({j} - ({n} - 1) / 2.0) / ({n} + 1.0)):{j + 2}:{label} "
                         f"with labels offset 0,0.7 notitle")
            inline.append(data)
        script += [f"set title {_gp_quote(p.get('title', ''))}", f"set ylabel {_gp_quote(p['ylabel'])}",
                   "plot " + ", ".join(plots)]
        blocks.append("".join(inline))
        script.append(blocks[-1].rstrip("\n"))
    script.append("unset multiplot")
    r = _subprocess.run([gnuplot], input="\n".join(script) + "\n", text=True, capture_output=True)
    if r.returncode != 0:
        print(f"gnuplot failed for {png}: {r.stderr.strip()[:500]}")
        return False
    return True


def save_results(stem, raw_header, raw_rows, table_header, table_rows, title, panels, note=""):
    """Writes bench/results/STEM.csv (every measured value), STEM.md (the summary table)
    and STEM.png (the plot: panels as in bar_plot), and says where they are."""
    os.makedirs(RESULTS, exist_ok=True)
    base = os.path.join(RESULTS, stem)
    write_csv(base + ".csv", raw_header, raw_rows)
    with open(base + ".md", "w") as f:
        f.write(f"{title}\n\n{note}\n\n" + markdown_table(table_header, table_rows))
    bar_plot(base + ".png", title, panels, note)
    print(f"results: {base}.csv (raw), {base}.md (table), {base}.png (plot)")


def save_interleaved(stem, title, results, summary, runs, first_column, describe=lambda name: ""):
    """save_results for the interleaved start benchmarks (report()'s inputs and output): every run's
    wall and cpu in the CSV; medians, means and ratios to the first series in the table; two panels."""
    import platform
    names = [n for n in results if n in summary]
    if not names:
        print(f"{stem}: no successful run, no results written")
        return
    raw = [(n, i, round(w, 3), round(c, 3)) for n in names for i, (w, c) in enumerate(results[n])]
    ref = summary[names[0]]
    table = [(n, describe(n).strip(), summary[n][1], summary[n][0], summary[n][3], summary[n][2],
              f"{summary[n][1] / ref[1]:.2f}", f"{summary[n][3] / ref[3]:.2f}") for n in names]
    note = (f"{runs} interleaved runs each; {os.cpu_count()} CPUs, kernel {platform.release()}, "
            f"load average {os.getloadavg()[0]:.1f} at the end")
    panels = [{"title": "wall time: spawn to exit", "ylabel": "time (ms)", "groups": ["median", "mean"],
               "series": names, "values": {n: [summary[n][1], summary[n][0]] for n in names}},
              {"title": "CPU time (user+sys, with children)", "ylabel": "CPU time (ms)",
               "groups": ["median", "mean"], "series": names,
               "values": {n: [summary[n][3], summary[n][2]] for n in names}}]
    save_results(stem, [first_column, "run", "wall_ms", "cpu_ms"], raw,
                 [first_column, "version", "wall median (ms)", "wall mean (ms)", "cpu median (ms)", "cpu mean (ms)",
                  f"wall median / {names[0]}", f"cpu median / {names[0]}"], table, title, panels, note)
