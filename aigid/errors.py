"""The one error type that means "your input is wrong".

Everything a researcher can get wrong (a data path, a backbone name, a config value, a storage
location) raises a subclass of `UserError` whose message names the fix; the command-line
entry points turn exactly these into a one-line `error:` and exit status 2. Any other
exception is a bug and keeps its traceback.
"""


class UserError(ValueError):
    """Bad input: the message says what to pass instead."""


class ConfigError(UserError):
    """A config field with a value its method cannot take (unknown name, wrong type, out of range)."""


class StorageError(UserError):
    """A storage location, cache or run name that cannot serve this sweep; the message says what to pass."""


def one_line(text: str) -> str:
    """A library's multi-line message (a state-dict mismatch, an unpickler's refusal) as one line."""
    return " ".join(str(text).split())
