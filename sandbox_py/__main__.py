"""``python -m sandbox_py [options] -- CMD ARGS...`` (also the ``sandbox-py``
console script); the work is in sandbox_py/cli.py."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
