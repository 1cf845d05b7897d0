"""The newest session in `matpi history --json` (read on stdin), for scripts/test-systemd.sh.

Prints `ACTUAL_S DOSE_CEM43 END_REASON` on one line (the dose exactly as the JSON has
it), or nothing when the history holds no session. Preheats are left out.
"""

import json
import sys

sessions = [row for row in json.load(sys.stdin)["sessions"] if row["kind"] == "session"]
if sessions:
    last = sessions[-1]  # `matpi history` lists them oldest first
    print(f"{last['actual_min'] * 60:.1f} {last['dose_cem43']!r} {last['end_reason']}")
