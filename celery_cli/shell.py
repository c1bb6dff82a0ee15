"""Environment variables as each shell sets them: the lines `tcel env` prints for `eval`."""

from __future__ import annotations


def export_lines(variables: dict[str, str], shell: str) -> list[str]:
    """One line per variable that the shell runs to set it, values quoted so that nothing in them expands."""
    if shell == "fish":
        return [f"set -gx {key} {_fish_quoted(value)};" for key, value in variables.items()]
    if shell == "powershell":
        return [f"$Env:{key} = {_powershell_quoted(value)}" for key, value in variables.items()]
    return [f"export {key}={_sh_quoted(value)}" for key, value in variables.items()]


def _sh_quoted(value: str) -> str:
    """POSIX sh: nothing is special inside single quotes; a quote closes, is escaped, and reopens."""
    return "'" + value.replace("'", "'\\''") + "'"


def _fish_quoted(value: str) -> str:
    """fish: inside single quotes only \\ and ' are special, each escaped with a backslash."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _powershell_quoted(value: str) -> str:
    """PowerShell: nothing expands inside single quotes; a quote is doubled."""
    return "'" + value.replace("'", "''") + "'"
