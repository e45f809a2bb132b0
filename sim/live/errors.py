"""The live shell's one-line error (reported without a traceback, exit status non-zero)."""


class LiveError(Exception):
    """A live-mode problem to report in one line (no broker binary, broker unreachable)."""
