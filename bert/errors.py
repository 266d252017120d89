"""The one exception type users see.

Everything that can go wrong because of *input* (a missing file, a corrupt checkpoint, text without a [MASK],
an unknown model name) raises :class:`BertError` with a message that names the problem and what to do about it.
The CLI prints that message on one line and exits with status 1 instead of showing a traceback; Python callers
can catch it like any other exception. Programming errors (bugs) stay ordinary exceptions on purpose.
"""


class BertError(Exception):
    """A problem with the user's input, files or environment, explained in one line."""


def kind_of(value: object) -> str:
    """What a message calls a value of the wrong type, with its article: "an int", "a list"."""
    return with_article(type(value).__name__)


def with_article(name: str) -> str:
    """``name`` after "a" or "an": "an int", "a str"."""
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
