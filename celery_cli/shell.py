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


# PowerShell takes the typographic single quotes as quotes too (its tokenizer's IsSingleQuote): left, right,
# single low-9 and single high-reversed-9. Each, like ', is doubled inside a single-quoted string.
_POWERSHELL_QUOTES = ("'", "\u2018", "\u2019", "\u201a", "\u201b")


def _powershell_quoted(value: str) -> str:
    """PowerShell: nothing expands inside single quotes; a quote (any of the four typographic ones too) is
    doubled."""
    for quote in _POWERSHELL_QUOTES:
        value = value.replace(quote, quote * 2)
    return "'" + value + "'"
