import pytest

from celery_cli.errors import ExitCode, UsageError
from celery_cli.task_args import parse_number


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2", 2),
        ("-3", -3),
        ("+4", 4),
        ("1.5", 1.5),
        ("-.5", -0.5),
        ("1e3", 1000.0),
        ("5.", 5.0),
        ("123456789012345678901234567890", 123456789012345678901234567890),
    ],
)
def test_numbers_parse_exactly(text: str, value) -> None:
    parsed = parse_number(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("text", ["two", "nan", "inf", "-inf", "1e999", "", "1_000", "0x10", " 1", "1,5", "--"])
def test_anything_else_is_a_usage_error_naming_the_value(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_number(text)
    assert caught.value.exit_code == ExitCode.USAGE
    assert repr(text) in str(caught.value) or text in str(caught.value)


def test_a_mistyped_option_is_called_an_option() -> None:
    with pytest.raises(UsageError, match="no such option: --wiat"):
        parse_number("--wiat")


def test_an_integer_past_pythons_digit_limit_is_a_usage_error_not_a_traceback() -> None:
    assert parse_number("9" * 4300) == 10**4300 - 1
    with pytest.raises(UsageError, match="integer of 4301 digits: a task takes at most 4300"):
        parse_number("-" + "9" * 4301)
