"""How every command ends on an error the user can fix: one line on stderr, exit code 1."""

from __future__ import annotations

import sys


def fail(prog: str, message: str):
    """Prints "PROG: error: MESSAGE" to stderr and exits with status 1 (no traceback)."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(1)
