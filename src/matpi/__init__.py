"""matpi: the controller of a heated, vibrating acupressure mat on a Raspberry Pi."""

__version__ = "0.1.0"
