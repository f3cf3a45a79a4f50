"""Generated SBE codecs (built from schemas/ by setup.py; not edited by hand)."""
