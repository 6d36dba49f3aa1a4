"""The exception tree.  Every error the service raises on purpose is a ``KurzError``::

    KurzError
    ├── ConfigError              bad settings or preset files: the process refuses to start
    │   └── PresetError          one prompts/<style>.toml is invalid (file and field named)
    ├── ModelUnavailableError    a model is neither a local directory nor in the hub cache
    └── InputError               the request itself is wrong (the API maps these to 4xx)
        ├── EmptyTextError       nothing but whitespace
        ├── TextTooLongError     more characters than KURZ_MAX_TEXT_CHARS
        ├── UnknownStyleError    style not among prompts/*.toml
        └── NotGermanError       the article is in another language

``code`` is the stable machine-readable name an API client can switch on.
"""

from __future__ import annotations

from collections.abc import Sequence


class KurzError(Exception):
    """Base of every deliberate error; ``code`` is stable across releases."""

    code = "internal"


class ConfigError(KurzError):
    """Settings or files that make the process unable to start."""

    code = "config"


class PresetError(ConfigError):
    """A style preset file is invalid; the message names the file and the field."""

    code = "preset"

    def __init__(self, path: str, field: str, problem: str) -> None:
        self.path = path
        self.field = field
        self.problem = problem
        super().__init__(f"{path}: field {field!r}: {problem}")


class ModelUnavailableError(KurzError):
    """A configured model cannot be loaded; the message says which and how to fetch it."""

    code = "model_unavailable"

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        message = (
            f"model {model!r} is not available: {reason}. "
            "Fetch it on a machine with internet with `python -m service download-models`, "
            "or point the setting at a local directory (KURZ_MODELS=tiny uses the offline models)."
        )
        super().__init__(message)


class InputError(KurzError):
    """The request is wrong; retrying it unchanged cannot succeed."""

    code = "invalid_input"


class EmptyTextError(InputError):
    """The article has no text."""

    code = "empty_text"

    def __init__(self) -> None:
        super().__init__("the article text is empty")


class TextTooLongError(InputError):
    """The article is over the character limit."""

    code = "text_too_long"

    def __init__(self, length: int, limit: int) -> None:
        self.length = length
        self.limit = limit
        super().__init__(f"the article has {length} characters; the limit is {limit}")


class UnknownStyleError(InputError):
    """The requested style has no preset."""

    code = "unknown_style"

    def __init__(self, style: str, known: Sequence[str]) -> None:
        self.style = style
        self.known = list(known)
        super().__init__(f"unknown style {style!r}; known styles: {', '.join(self.known)}")


class NotGermanError(InputError):
    """The article is not German."""

    code = "not_german"

    def __init__(self, detected: str, german_share: float) -> None:
        self.detected = detected
        self.german_share = german_share
        message = (
            f"the article does not look German (detected {detected!r}, "
            f"{german_share:.0%} of sentences German)"
        )
        super().__init__(message)
