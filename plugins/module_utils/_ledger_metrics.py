# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to homeiq.deploy: the deployment ledger's metrics, computed in the database.

Not a public API. Definitions (docs/ledger.md states them for operators), over the records in
scope (environment, project, host filters) whose ``started_at`` is at or after the window start:

- ``total``: deployments (records of kind deploy); ``successful``: status success; ``failed``:
  status failed or rolled_back; ``in_progress``: the rest, left out of every rate.
- finished = successful + failed. ``success_rate`` = successful / finished,
  ``change_failure_rate`` = failed / finished, ``rollback_rate`` = rollbacks / finished.
- ``rollbacks``: records of kind rollback (any status).
- ``avg_duration_s``: mean of finished_at - started_at over finished deployments.
- recovery of a failed deployment F: the ``finished_at`` of the first record (deploy or rollback)
  with status success, the same environment, project and host, that finished after F started,
  minus F's ``started_at``. ``mttr_s`` is the mean and ``median_recovery_s`` the median over the
  recovered ones; ``unrecovered`` counts the failures without such a record.
- ``recent_7d``: deployments started in the 7 days before now (whatever the window).
- ``deployment_frequency_per_day`` = successful / window length in days.
- ``lead_time_median_s``: median of finished_at - commit_time over successful deployments that
  have a commit_time.

Rates are fractions (0 to 1) and null where the divisor is zero; means and medians are null
where nothing is measured. Sums and medians are taken from exact integer microseconds, so both
backends give identical numbers. Each figure comes from one aggregate pass over an index, not a
Python loop over rows.
"""
from __future__ import annotations

from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_common import (
    DAY_US,
    format_time,
    seconds,
)
from ansible_collections.homeiq.deploy.plugins.module_utils._ledger_store import scope_params, scope_sql

_MAIN = """
SELECT count(*),
       coalesce(sum(CASE WHEN status = 'success' THEN 1 ELSE 0 END), 0),
       coalesce(sum(CASE WHEN status IN ('failed', 'rolled_back') THEN 1 ELSE 0 END), 0),
       coalesce(sum(CASE WHEN status = 'in_progress' THEN 1 ELSE 0 END), 0),
       coalesce(sum(CASE WHEN status <> 'in_progress' THEN finished_at_us - started_at_us ELSE 0 END), 0),
       coalesce(sum(CASE WHEN status = 'success' AND commit_time_us IS NOT NULL THEN 1 ELSE 0 END), 0),
       (SELECT count(*) FROM deployments
         WHERE kind = 'rollback' AND started_at_us >= :start{scope}),
       (SELECT count(*) FROM deployments
         WHERE kind = 'deploy' AND started_at_us >= :recent{scope})
  FROM deployments
 WHERE kind = 'deploy' AND started_at_us >= :start{scope}
"""

# For each failed deployment the first success in its scope that finished after it started (an
# index seek on deployments_recovery); then the middle one or two of the sorted recovery times.
_RECOVERY = """
WITH rec AS MATERIALIZED (
  SELECT (SELECT min(r.finished_at_us) FROM deployments r
           WHERE r.environment = f.environment AND r.project = f.project AND r.host = f.host
             AND r.status = 'success' AND r.finished_at_us > f.started_at_us) - f.started_at_us AS t
    FROM deployments f
   WHERE f.kind = 'deploy' AND f.status IN ('failed', 'rolled_back') AND f.started_at_us >= :start{scope_f}
), ranked AS (
  SELECT t, row_number() OVER (ORDER BY t) AS rn, count(*) OVER () AS n, sum(t) OVER () AS s
    FROM rec WHERE t IS NOT NULL
)
SELECT t, n, s FROM ranked WHERE rn = (n + 1) / 2 OR rn = (n + 2) / 2 ORDER BY rn
"""

# The middle one or two lead times, walked in order on deployments_lead_time (the expression must
# stay exactly as indexed); `n` comes from the aggregate pass.
_LEAD = """
SELECT finished_at_us - commit_time_us FROM deployments{lead_hint}
 WHERE kind = 'deploy' AND status = 'success' AND (finished_at_us - commit_time_us) IS NOT NULL
   AND started_at_us >= :start{scope}
 ORDER BY finished_at_us - commit_time_us
 LIMIT :take OFFSET :skip
"""

_DAILY = """
SELECT started_at_us / :day AS day, kind, status, count(*)
  FROM deployments
 WHERE started_at_us >= :start{scope}
 GROUP BY 1, 2, 3
"""

_RECOVERIES = """
SELECT f.deployment_id, f.status, f.started_at_us,
       (SELECT min(r.finished_at_us) FROM deployments r
         WHERE r.environment = f.environment AND r.project = f.project AND r.host = f.host
           AND r.status = 'success' AND r.finished_at_us > f.started_at_us) AS recovered_at_us
  FROM deployments f
 WHERE f.kind = 'deploy' AND f.status IN ('failed', 'rolled_back') AND f.started_at_us >= :start{scope_f}
 ORDER BY f.started_at_us, f.deployment_id
"""


def _ratio(part, whole):
    return None if not whole else part / whole


def _median_s(values):
    """Seconds: the middle value (or mean of the two middle values) of the rows the SQL returns."""
    if not values:
        return None
    return sum(int(v) for v in values) / len(values) / 1000000.0


def window(now_us, window_days, since_us=None):
    """(start_us, length_days): `since` replaces the start of the window when given."""
    if since_us is not None:
        return since_us, (now_us - since_us) / DAY_US
    return now_us - int(round(window_days * DAY_US)), float(window_days)


def metrics(store, filters, now_us, window_days=30, since_us=None):
    """The metrics dict for records in scope; see the module docstring for every definition."""
    start, days = window(now_us, window_days, since_us)
    params = dict(scope_params(filters), start=start, recent=now_us - 7 * DAY_US)
    scope = scope_sql(filters)
    total, successful, failed, in_progress, duration_sum, with_commit, rollbacks, recent = store.fetchone(
        _MAIN.format(scope=scope), params)
    with_commit = int(with_commit)
    total, successful, failed, in_progress = int(total), int(successful), int(failed), int(in_progress)
    finished = successful + failed

    rows = store.fetchall(_RECOVERY.format(scope_f=scope_sql(filters, "f")), params)
    recovered = int(rows[0][1]) if rows else 0
    recovery_sum = int(rows[0][2]) if rows else 0

    lead_rows = []
    if with_commit:
        lead_rows = store.fetchall(_LEAD.format(scope=scope, lead_hint=store.index_hint("deployments_lead_time")),
                                   dict(params, take=2 - with_commit % 2, skip=(with_commit - 1) // 2))

    return {
        "total": total,
        "successful": successful,
        "failed": failed,
        "in_progress": in_progress,
        "success_rate": _ratio(successful, finished),
        "change_failure_rate": _ratio(failed, finished),
        "rollbacks": int(rollbacks),
        "rollback_rate": _ratio(int(rollbacks), finished),
        "avg_duration_s": int(duration_sum) / finished / 1000000.0 if finished else None,
        "mttr_s": recovery_sum / recovered / 1000000.0 if recovered else None,
        "median_recovery_s": _median_s([r[0] for r in rows]),
        "recovered": recovered,
        "unrecovered": failed - recovered,
        "recent_7d": int(recent),
        "deployment_frequency_per_day": _ratio(successful, days) if days > 0 else None,
        "lead_time_median_s": _median_s([r[0] for r in lead_rows]),
        "window_days": days,
        "window_start": format_time(start),
        "window_end": format_time(now_us),
    }


def daily(store, filters, now_us, window_days=30, since_us=None):
    """Per UTC day of the window: counts of deploys by status and of rollbacks (for charts)."""
    start, _days = window(now_us, window_days, since_us)
    params = dict(scope_params(filters), start=start, day=DAY_US)
    days = {}
    for day, kind, status, count in store.fetchall(_DAILY.format(scope=scope_sql(filters)), params):
        entry = days.setdefault(int(day), {"success": 0, "failed": 0, "rolled_back": 0, "in_progress": 0, "rollbacks": 0})
        if kind == "rollback":
            entry["rollbacks"] += int(count)
        else:
            entry[status] += int(count)
    first, last = start // DAY_US, now_us // DAY_US
    out = []
    for day in range(first, last + 1):
        entry = days.get(day, {"success": 0, "failed": 0, "rolled_back": 0, "in_progress": 0, "rollbacks": 0})
        out.append(dict(entry, date=format_time(day * DAY_US)[:10]))
    return out


def recoveries(store, filters, now_us, window_days=30, since_us=None):
    """Each failed deployment of the window with its recovery time (null when not recovered)."""
    start, _days = window(now_us, window_days, since_us)
    params = dict(scope_params(filters), start=start)
    out = []
    for deployment_id, status, started, recovered_at in store.fetchall(
            _RECOVERIES.format(scope_f=scope_sql(filters, "f")), params):
        out.append({
            "deployment_id": deployment_id,
            "status": status,
            "started_at": format_time(started),
            "recovered_at": format_time(recovered_at),
            "recovery_s": None if recovered_at is None else seconds(int(recovered_at) - int(started)),
        })
    return out
