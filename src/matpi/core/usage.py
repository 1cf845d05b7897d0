"""What a mat was used for: today's minutes and dose, streak and progression (pure).

The session machine owns one `Usage` and the history rebuilds it at start, so
a restart or a clock change never frees minutes or dose of the day.
"""

from dataclasses import dataclass, field
from datetime import date

from matpi.core.programs import Program


@dataclass
class Usage:
    """Use so far, carried across sessions (and, with history, across restarts)."""

    day: date
    minutes_today: float = 0.0
    """Minutes of sessions and preheats ended today: the daily cap counts every heated minute."""
    dose_today: float = 0.0
    """CEM43 of sessions and preheats ended today: the daily dose budget."""
    progress_days: dict[str, int] = field(default_factory=dict)
    progress_last: dict[str, date] = field(default_factory=dict)
    streak_days: int = 0
    last_completed_day: date | None = None

    def roll(self, today: date) -> None:
        """A new day resets today's use; a clock set back never does (the cap would reset)."""
        if today > self.day:
            self.day = today
            self.minutes_today = 0.0
            self.dose_today = 0.0

    def relabel(self, today: date) -> None:
        """After a clock step the day's use carries over to the new date: a step frees nothing."""
        self.day = max(self.day, today)

    def count_completed(self, program: Program) -> None:
        """A completed session: the streak and a progressive program grow once per day."""
        today = self.day
        if self.last_completed_day != today:
            yesterday = date.fromordinal(today.toordinal() - 1)
            kept = self.last_completed_day == yesterday
            self.streak_days = self.streak_days + 1 if kept else 1
            self.last_completed_day = today
        if program.progression and self.progress_last.get(program.name) != today:
            self.progress_last[program.name] = today
            self.progress_days[program.name] = self.progress_days.get(program.name, 0) + 1

    def streak(self) -> int:
        """Days in a row with a completed session, still alive if the last was yesterday."""
        last = self.last_completed_day
        if last is None or (self.day - last).days > 1:
            return 0
        return self.streak_days
