"""The typed config (`settings`) and the TOML reader that checks it (`reader`).

Reads one file and says, per key, what is wrong. Imports only `core`.
"""
