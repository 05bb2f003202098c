"""Typed readers of environment variables, for config/settings.py.

A value that will not do raises ImproperlyConfigured with one line naming the variable, the
value and what it takes (manage.py prints it as `glimpse: …`), never a bare ValueError and
never a number outside what the setting can mean."""
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_path(name: str, default: Path) -> Path:
    return Path(os.environ.get(name, default))


def env_list(name: str, default: str = "") -> list[str]:
    """Comma-separated values; blanks are dropped."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: use 1 or 0")


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r}: use {spoken_list(choices)}")
    return value


def spoken_list(choices: tuple[str, ...]) -> str:
    return choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"


def shown(number: float) -> str:
    return str(number) if isinstance(number, int) else f"{number:g}"


def allowed_range(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {shown(minimum)} to {shown(maximum)}"
    if minimum is not None:
        return f" of {shown(minimum)} or more"
    if maximum is not None:
        return f" of {shown(maximum)} or less"
    return ""


def env_number(name: str, default: float, parse, kind: str, minimum: float | None, maximum: float | None):
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = parse(raw)
    except ValueError:
        value = None
    # NaN fails both comparisons, so it is refused with the words it is not.
    if value is None or (minimum is not None and not minimum <= value) or (maximum is not None and not value <= maximum):
        raise ImproperlyConfigured(f"{name}={raw!r}: use {kind}{allowed_range(minimum, maximum)}, like {shown(default)}")
    return value


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    return env_number(name, default, int, "a whole number", minimum, maximum)


def env_float(name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
    return env_number(name, default, float, "a number", minimum, maximum)
