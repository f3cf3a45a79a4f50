"""Where the sample files that come with lob are: the repository's `examples/` folder, or
`<prefix>/share/lob/examples` in an installed copy."""
import os
import sys

_REPOSITORY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
_INSTALLED = os.path.join(sys.prefix, "share", "lob", "examples")


def path(name):
    """The sample file `name`; FileNotFoundError naming where it was looked for."""
    for folder in (_REPOSITORY, _INSTALLED):
        candidate = os.path.join(folder, name)
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"sample file {name} is in neither {_REPOSITORY} nor {_INSTALLED}")


def credentials_path():
    """The sample credentials file (public secrets: for the demo, tests and benchmarks only)."""
    return path("credentials.txt")
