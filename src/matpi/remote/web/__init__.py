"""The mat's own page: an HTTP server thread with a JSON API, a live event stream and
the static files of a phone-first dashboard (see README, "The mat's own page").

Imports `core`, `config`, `store` and the rest of `remote`; never the drivers.
`matpi.remote.web.server` holds the server (it imports tornado); nothing is imported
here, so that `matpi web-password` and a mat without its page do not load it.

`tornado.log` imports `curses` only to colour tornado's own log lines in a terminal,
and takes an ImportError as "no colours". matpi logs to the journal with its own
format, so the page's modules stop that import here: 0.5 MiB less on a Pi Zero
(bench/bench_daemon.py --mqtt, the page's row). A `curses` already loaded stays.
"""

import sys

sys.modules.setdefault("curses", None)  # type: ignore[arg-type]
