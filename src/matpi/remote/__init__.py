"""What a remote client may ask, and how: the command rules (`commands`), MQTT with
Home Assistant discovery (`mqtt`, `statepace`, `homeassistant`), the mat's own page
(`web`), and `netloop`, the controller's inbox that also serves their sockets.
Requests become events for the controller; nothing here switches an output.
Imports `core`, `config` and `store`, never the drivers' hardware (import-linter
checks both).
"""
