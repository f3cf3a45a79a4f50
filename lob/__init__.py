"""lob: a limit-order-book matching engine over SBE and Aeron UDP."""

__version__ = "0.1.0"
