"""The usage history in SQLite: what a restart must not forget (cooldown, today's
minutes and dose, a latched fault), the recorder that writes it, and its rendering.
Imports `core` and `config`; never the drivers, the remote side or the service.
"""
