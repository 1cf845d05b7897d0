"""The pure core: the session machine, its guards and the numbers behind them.

No I/O, no threads, no clock reads: every function takes the time it is given.
It imports nothing of matpi outside `core`; every other layer may import it.
"""
