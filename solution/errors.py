"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class UserError(Exception):
    """Bad input or state that the user can fix; the message is shown as is, without a traceback."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


def where(path, row: int | None = None, column: str | None = None) -> str:
    """`file, row N, column C` for error messages (row N is the Nth CSV record, header = row 1, as a spreadsheet shows it; a quoted multi-line tweet is one row)."""
    parts = [str(path)]
    if row is not None:
        parts.append(f"row {row}")
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts)
