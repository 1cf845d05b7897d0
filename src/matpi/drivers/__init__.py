"""The hardware: one class per physical thing behind the protocols in `base`, the
system clock, the simulator, the mat board's link, and `hardware`, which builds
what a config describes. Imports `core` and `config`; never `store` or above.
"""
