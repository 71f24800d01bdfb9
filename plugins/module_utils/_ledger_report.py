# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to homeiq.deploy: the deployment ledger's HTML report.

Not a public API. ``render_html()`` turns the ledger's answers (metrics, per-day counts, recent
deployments, recoveries) into one self-contained page: inline CSS and inline SVG charts, no
script, no font, image or style sheet fetched from anywhere, so it opens offline and can be
mailed or archived as it is. Every value shown comes from the arguments; text is escaped.
"""
from __future__ import annotations

import math
from html import escape

COLOURS = {
    "success": "#2e7d32",
    "failed": "#c62828",
    "rolled_back": "#ef6c00",
    "in_progress": "#9e9e9e",
    "rollback": "#1565c0",
}
LABELS = {
    "success": "success",
    "failed": "failed",
    "rolled_back": "rolled back",
    "in_progress": "in progress",
    "rollback": "rollback record",
}

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 0; background: #f5f6f8; color: #1d2330; }
header { background: #1d2330; color: #fff; padding: 20px 32px; }
header h1 { margin: 0 0 6px; font-size: 24px; }
header p { margin: 0; color: #c9d1e0; font-size: 14px; }
main { padding: 20px 32px 40px; max-width: 1200px; }
section { background: #fff; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.12); padding: 16px 20px; margin: 0 0 20px; }
h2 { font-size: 17px; margin: 0 0 12px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 12px; }
.card { border: 1px solid #e1e5ec; border-radius: 6px; padding: 10px 12px; }
.card .v { font-size: 22px; font-weight: 600; }
.card .k { font-size: 12px; color: #5a6478; text-transform: uppercase; letter-spacing: .04em; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #e8ebf0; vertical-align: top; }
th { background: #f0f2f6; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; }
.legend { font-size: 12px; margin: 6px 0 0; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; vertical-align: -1px; }
.empty { color: #5a6478; font-style: italic; }
svg text { font-family: inherit; font-size: 11px; fill: #5a6478; }
code { font-size: 12px; }
"""


def _e(value):
    return escape("" if value is None else str(value), quote=True)


def fmt_duration(value):
    if value is None:
        return "n/a"
    value = float(value)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value < 60:
        return "%s%.1f s" % (sign, value)
    if value < 3600:
        return "%s%d min %d s" % (sign, value // 60, value % 60)
    if value < 86400:
        return "%s%d h %d min" % (sign, value // 3600, (value % 3600) // 60)
    return "%s%d d %d h" % (sign, value // 86400, (value % 86400) // 3600)


def fmt_rate(value):
    return "n/a" if value is None else "%.1f %%" % (value * 100)


def fmt_number(value):
    if value is None:
        return "n/a"
    if isinstance(value, float) and not value.is_integer():
        return "%.2f" % value
    return "%d" % value


def nice_max(value):
    """A round axis maximum at or above value (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _legend(keys):
    return '<p class="legend">%s</p>' % "".join(
        '<span><i style="background:%s"></i>%s</span>' % (COLOURS[k], _e(LABELS[k])) for k in keys)


def _frame(width, height, left, top, plot_h, y_max, y_label, fmt):
    parts = []
    for i in range(5):
        value = y_max * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e8ebf0"/>' % (left, y, width - 10, y))
        parts.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (left - 6, y + 4, _e(fmt(value))))
    parts.append('<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">%s</text>'
                 % (top + plot_h // 2, top + plot_h // 2, _e(y_label)))
    return parts


def chart_daily(daily):
    """Stacked bars per day coloured by outcome, with rollback records marked above."""
    if not daily or not any(d["success"] + d["failed"] + d["rolled_back"] + d["in_progress"] + d["rollbacks"] for d in daily):
        return '<p class="empty">No deployments in this window.</p>'
    width, height, left, top, bottom = 960, 240, 48, 14, 40
    plot_w, plot_h = width - left - 10, height - top - bottom
    peak = max(d["success"] + d["failed"] + d["rolled_back"] + d["in_progress"] for d in daily)
    y_max = 4 * int(math.ceil(nice_max(max(peak, 1)) / 4.0))  # whole numbers on every grid line
    slot = plot_w / len(daily)
    bar_w = max(1.0, slot * 0.75)
    parts = _frame(width, height, left, top, plot_h, y_max, "deployments", lambda v: "%g" % v)
    label_every = max(1, int(math.ceil(len(daily) / 12.0)))
    for i, day in enumerate(daily):
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h
        for key in ("success", "rolled_back", "failed", "in_progress"):
            count = day[key]
            if not count:
                continue
            h = plot_h * count / y_max
            y -= h
            parts.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %d %s</title></rect>'
                         % (x, y, bar_w, h, COLOURS[key], _e(day["date"]), count, _e(LABELS[key])))
        if day["rollbacks"]:
            cx = x + bar_w / 2
            parts.append('<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s: %d rollback record(s)</title></circle>'
                         % (cx, max(top + 4, y - 7), COLOURS["rollback"], _e(day["date"]), day["rollbacks"]))
        if i % label_every == 0:
            parts.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (x + bar_w / 2, height - bottom + 16, _e(day["date"][5:])))
    svg = ('<svg role="img" aria-label="Deployments per day" width="100%%" '
           'viewBox="0 0 %d %d">%s</svg>' % (width, height, "".join(parts)))
    return svg + _legend(("success", "failed", "rolled_back", "in_progress", "rollback"))


def _bars(items, y_label, empty):
    """Bars of seconds, one per item: dicts with label, value (seconds or None), colour, title."""
    if not items:
        return '<p class="empty">%s</p>' % _e(empty)
    width, height, left, top, bottom = 960, 220, 92, 14, 40
    plot_w, plot_h = width - left - 10, height - top - bottom
    peak = max([i["value"] for i in items if i["value"] is not None] or [1])
    unit = 3600 if peak >= 4 * 3600 else 60 if peak >= 240 else 1  # round grid lines in hours, minutes or seconds
    y_max = nice_max(max(peak, 1) / unit) * unit
    slot = plot_w / len(items)
    bar_w = max(1.0, min(40.0, slot * 0.75))
    parts = _frame(width, height, left, top, plot_h, y_max, y_label, fmt_duration)
    label_every = max(1, int(math.ceil(len(items) / 10.0)))
    for n, item in enumerate(items):
        x = left + n * slot + (slot - bar_w) / 2
        if item["value"] is None:
            parts.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="none" stroke="%s" stroke-dasharray="4 3">'
                         '<title>%s</title></rect>' % (x, top, bar_w, plot_h, item["colour"], _e(item["title"])))
        else:
            h = max(1.0, plot_h * max(item["value"], 0) / y_max)
            parts.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>'
                         % (x, top + plot_h - h, bar_w, h, item["colour"], _e(item["title"])))
        if n % label_every == 0:
            parts.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (x + bar_w / 2, height - bottom + 16, _e(item["label"])))
    return ('<svg role="img" aria-label="%s" width="100%%" viewBox="0 0 %d %d">%s</svg>'
            % (_e(y_label), width, height, "".join(parts)))


def chart_durations(deployments):
    items = []
    for d in reversed(deployments):  # oldest first, left to right
        status = d["status"] if d["kind"] == "deploy" else "rollback"
        if d["status"] == "in_progress":
            continue
        items.append({
            "label": (d["started_at"] or "")[5:16].replace("T", " "),
            "value": d["duration_s"],
            "colour": COLOURS.get(status, COLOURS["in_progress"]),
            "title": "%s (%s, %s): %s" % (d["deployment_id"], d["kind"], LABELS.get(d["status"], d["status"]), fmt_duration(d["duration_s"])),
        })
    out = _bars(items, "duration", "No finished deployments to show.")
    return out + (_legend(("success", "failed", "rolled_back", "rollback")) if items else "")


def chart_recoveries(recoveries):
    items = []
    for r in recoveries:
        items.append({
            "label": (r["started_at"] or "")[5:16].replace("T", " "),
            "value": r["recovery_s"],
            "colour": COLOURS[r["status"]] if r["recovery_s"] is not None else COLOURS["failed"],
            "title": "%s (%s): %s" % (r["deployment_id"], LABELS.get(r["status"], r["status"]),
                                      "recovered in " + fmt_duration(r["recovery_s"]) if r["recovery_s"] is not None
                                      else "not recovered yet"),
        })
    out = _bars(items, "time to recover", "No failed deployments in this window.")
    if items:
        out += '<p class="legend">Each bar is one failed or rolled-back deployment; a dashed outline is one not recovered yet.</p>'
    return out


METRIC_ROWS = (
    ("total", "Deployments", fmt_number, "records of kind deploy started in the window"),
    ("successful", "Successful", fmt_number, "status success"),
    ("failed", "Failed", fmt_number, "status failed or rolled_back"),
    ("in_progress", "In progress", fmt_number, "not finished; left out of every rate"),
    ("success_rate", "Success rate", fmt_rate, "successful / finished"),
    ("change_failure_rate", "Change failure rate", fmt_rate, "failed / finished"),
    ("rollbacks", "Rollbacks", fmt_number, "records of kind rollback started in the window"),
    ("rollback_rate", "Rollback rate", fmt_rate, "rollbacks / finished deployments"),
    ("avg_duration_s", "Average duration", fmt_duration, "mean of finished_at - started_at over finished deployments"),
    ("mttr_s", "Mean time to recover", fmt_duration,
     "mean time from a failure's start to the next success (deploy or rollback) in its environment, project and host"),
    ("median_recovery_s", "Median recovery", fmt_duration, "median of the same recovery times"),
    ("unrecovered", "Not recovered", fmt_number, "failures with no later success in their scope"),
    ("recent_7d", "Last 7 days", fmt_number, "deployments started in the last 7 days"),
    ("deployment_frequency_per_day", "Deployment frequency", lambda v: "n/a" if v is None else "%.2f / day" % v,
     "successful deployments / days in the window"),
    ("lead_time_median_s", "Lead time (median)", fmt_duration, "median of finished_at - commit_time over successful deployments"),
)


def _cards(metrics):
    keys = ("total", "success_rate", "change_failure_rate", "deployment_frequency_per_day", "lead_time_median_s",
            "mttr_s", "median_recovery_s", "avg_duration_s", "rollbacks", "unrecovered")
    rows = {k: (label, fmt) for k, label, fmt, _d in METRIC_ROWS}
    return '<div class="cards">%s</div>' % "".join(
        '<div class="card"><div class="k">%s</div><div class="v">%s</div></div>' % (_e(rows[k][0]), _e(rows[k][1](metrics.get(k))))
        for k in keys)


def _metrics_table(metrics):
    body = "".join(
        '<tr><td>%s</td><td class="num" title="%s">%s</td><td>%s</td></tr>'
        % (_e(label), _e(metrics.get(key)), _e(fmt(metrics.get(key))), _e(definition))
        for key, label, fmt, definition in METRIC_ROWS)
    return '<table><thead><tr><th>Metric</th><th>Value</th><th>Definition</th></tr></thead><tbody>%s</tbody></table>' % body


def _history(deployments):
    if not deployments:
        return '<p class="empty">No deployments recorded in this window.</p>'
    rows = []
    for d in deployments:
        colour = COLOURS.get(d["status"], "#555")
        checks = "" if d["passed_checks"] is None and d["failed_checks"] is None else "%s / %s" % (
            d["passed_checks"] if d["passed_checks"] is not None else "-", d["failed_checks"] if d["failed_checks"] is not None else "-")
        scope = " / ".join(x for x in (d["environment"], d["project"], d["host"]) if x)
        what = d["kind"] + (" of " + d["rollback_of"] if d["rollback_of"] else "")
        rows.append(
            "<tr><td><code>%s</code></td><td>%s</td><td><span class=\"badge\" style=\"background:%s\">%s</span></td>"
            "<td>%s</td><td><code>%s</code></td><td>%s</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
            "<td class=\"num\">%s</td><td>%s</td><td>%s</td></tr>"
            % (_e(d["deployment_id"]), _e(what), colour, _e(LABELS.get(d["status"], d["status"])), _e(scope),
               _e((d["commit"] or "")[:12]), _e((d["started_at"] or "")[:19].replace("T", " ")), _e(fmt_duration(d["duration_s"])),
               _e(d["services_count"] if d["services_count"] is not None else ""), _e(checks), _e(d["performer"]), _e(d["notes"])))
    return ("<table><thead><tr><th>Deployment</th><th>Kind</th><th>Status</th><th>Scope</th><th>Commit</th><th>Started (UTC)</th>"
            "<th>Duration</th><th>Services</th><th>Checks passed / failed</th><th>By</th><th>Notes</th></tr></thead><tbody>%s"
            "</tbody></table>" % "".join(rows))


def _when(text):
    """ISO 8601 UTC shown to the minute."""
    return (text or "")[:16].replace("T", " ") + (" UTC" if text else "")


def render_html(title, scope, backend, metrics, deployments, daily, recoveries, generated_at):
    """The whole report page as one string."""
    scope_text = ", ".join("%s %s" % (k, v) for k, v in sorted(scope.items())) or "all environments, projects and hosts"
    subtitle = "%s &middot; window %s to %s (%s days) &middot; %s backend &middot; generated %s" % (
        _e(scope_text), _e(_when(metrics.get("window_start"))), _e(_when(metrics.get("window_end"))),
        _e(fmt_number(metrics.get("window_days"))), _e(backend), _e(_when(generated_at)))
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        "<title>%s</title><style>%s</style></head><body>" % (_e(title), CSS),
        "<header><h1>%s</h1><p>%s</p></header><main>" % (_e(title), subtitle),
        "<section><h2>Summary</h2>%s</section>" % _cards(metrics),
        "<section><h2>Deployments per day</h2>%s</section>" % chart_daily(daily),
        "<section><h2>Duration of recent deployments</h2>%s</section>" % chart_durations(deployments),
        "<section><h2>Recovery from failed deployments</h2>%s</section>" % chart_recoveries(recoveries),
        "<section><h2>Metrics</h2>%s</section>" % _metrics_table(metrics),
        "<section><h2>History (newest first, %d shown)</h2>%s</section>" % (len(deployments), _history(deployments)),
        "</main></body></html>\n",
    ])
