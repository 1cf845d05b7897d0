"""The mat's own page: an HTTP server thread with a JSON API, a live event stream and
the static files of a phone-first dashboard (see README, "The mat's own page").

Imports `core`, `config`, `store` and the rest of `remote`; never the drivers.
`matpi.remote.web.server` holds the server (it imports tornado); nothing is imported
here, so that `matpi web-password` and a mat without its page do not load it.
"""
