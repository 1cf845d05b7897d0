"""The running daemon: the controller thread, the assembly of one mat (`app`), what it
tells systemd and the journal, `safe-off`, and the terminal console. May import
every layer below; only `matpi.cli` imports it.
"""
