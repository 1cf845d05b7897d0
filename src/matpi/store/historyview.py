"""`matpi history` and the page's history: the log as a table, JSON or CSV."""

import csv
import io
import json
from datetime import date, datetime
from typing import Literal

from matpi.store.history import SESSION, FaultRow, History, HistorySummary, SessionRow

HistoryFormat = Literal["table", "json", "csv"]
HISTORY_FORMATS: tuple[HistoryFormat, ...] = ("table", "json", "csv")

def render_history(history: History, days: int, today: date, fmt: HistoryFormat) -> str:
    """The last `days` days as a table, JSON (sessions, faults, totals) or CSV (sessions)."""
    rows = history.sessions(days, today)
    if fmt == "csv":
        return _csv(rows)
    summary = history.summary(days, today)
    faults = history.faults(days, today)
    if fmt == "json":
        return json.dumps({
            "days": days,
            "first_day": summary.first_day.isoformat(),
            "today": today.isoformat(),
            "streak_days": summary.streak_days,
            "sessions_total": summary.sessions,
            "completed_total": summary.completed,
            "minutes_total": round(summary.minutes, 1),
            "weeks": [{"monday": w.monday.isoformat(), "sessions": w.sessions,
                       "minutes": round(w.minutes, 1)} for w in summary.weeks],
            "sessions": [_session_record(r) for r in rows],
            "faults": [{"raised": _iso(f.raised_wall), "reason": f.reason,
                        "cleared": None if f.cleared_wall is None else _iso(f.cleared_wall)}
                       for f in faults],
        }, indent=2, ensure_ascii=False)
    return _table(rows, faults, summary, days)


_CSV_FIELDS = ("started", "ended", "kind", "program", "planned_min", "actual_min", "end_reason",
               "peak_c", "dose_cem43", "heat_level", "pattern")


def _session_record(row: SessionRow) -> dict[str, object]:
    return {
        "started": _iso(row.started_wall), "ended": _iso(row.ended_wall), "kind": row.kind,
        "program": row.program, "planned_min": row.planned_min,
        "actual_min": round(row.actual_s / 60.0, 2), "end_reason": row.end_reason,
        "peak_c": row.peak_c, "dose_cem43": row.dose_cem43,
        "heat_level": row.heat_level, "pattern": row.pattern,
    }


def _csv(rows: list[SessionRow]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_session_record(r) for r in rows)
    return out.getvalue()


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall).astimezone().isoformat(timespec="seconds")


def _table(rows: list[SessionRow], faults: list[FaultRow], summary: HistorySummary,
           days: int) -> str:
    lines = [f"Sessions, {summary.first_day} to {summary.today} ({days} days)", ""]
    if rows:
        lines.append(f"{'day':<14} {'start':<5}  {'program':<10} {'min/planned':>11}  "
                     f"{'end':<15} {'heat':<6} {'pattern':<7} {'peak °C':>7} {'CEM43':>6}")
        for r in rows:
            started = datetime.fromtimestamp(r.started_wall)
            minutes = f"{r.actual_s / 60.0:.1f}/{r.planned_min:g}"
            peak = "-" if r.peak_c is None else f"{r.peak_c:.1f}"
            program = r.program if r.kind == SESSION else "(preheat)"
            lines.append(f"{started:%Y-%m-%d %a} {started:%H:%M}  {program:<10} "
                         f"{minutes:>11}  {r.end_reason:<15} {r.heat_level:<6} "
                         f"{r.pattern:<7} {peak:>7} {r.dose_cem43:>6.2f}")
    else:
        lines.append("no sessions")
    if faults:
        lines += ["", "Faults"]
        for f in faults:
            cleared = ("still latched" if f.cleared_wall is None
                       else f"cleared {datetime.fromtimestamp(f.cleared_wall):%Y-%m-%d %H:%M}")
            lines.append(f"{datetime.fromtimestamp(f.raised_wall):%Y-%m-%d %H:%M}  "
                         f"{f.reason} ({cleared})")
    lines += ["", f"Total: {summary.sessions} sessions ({summary.completed} completed), "
                  f"{summary.minutes:.0f} min",
              f"Streak: {summary.streak_days} day{'s' if summary.streak_days != 1 else ''}",
              "", "Week of      sessions  minutes"]
    lines += [f"{w.monday} {w.sessions:>9} {w.minutes:>8.0f}" for w in summary.weeks]
    return "\n".join(lines) + "\n"
