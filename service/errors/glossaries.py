"""What is wrong with a glossary: in a request, in the store, or in the default files."""

from __future__ import annotations

from service.errors.base import ConfigError, InputError


class GlossaryError(InputError):
    """A glossary in a request is invalid; the API answers 400, as DeepL does."""

    code = "invalid_glossary"
    status = 400


class GlossaryEntriesError(GlossaryError):
    """One line of the entries is invalid; ``line`` counts from 1, as an editor's does."""

    code = "invalid_glossary_entries"

    def __init__(self, line: int, problem: str) -> None:
        self.line = line
        self.problem = problem
        super().__init__(f"glossary entries, line {line}: {problem}")


class GlossaryTooLargeError(GlossaryError):
    """The entries are over DeepL's size limit or our entry-count limit."""

    code = "glossary_too_large"


class UnsupportedGlossaryLanguagesError(GlossaryError):
    """The glossary is not German to English, the one pair this service translates."""

    code = "unsupported_glossary_languages"

    def __init__(self, source_lang: str, target_lang: str) -> None:
        self.source_lang = source_lang
        self.target_lang = target_lang
        super().__init__(
            f"unsupported glossary language pair {source_lang!r} -> {target_lang!r}; "
            "this service translates DE -> EN only"
        )


class GlossaryNotFoundError(InputError):
    """No glossary with this id belongs to the caller (another owner's is not found either)."""

    code = "glossary_not_found"
    status = 404

    def __init__(self, glossary_id: str) -> None:
        self.glossary_id = glossary_id
        super().__init__(f"glossary {glossary_id!r} not found")


class GlossaryLimitError(InputError):
    """The owner already has the most glossaries allowed (DeepL: 1,000 per account)."""

    code = "glossary_limit"
    status = 400

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"at most {limit} glossaries per owner; delete one first")


class GlossaryFileError(ConfigError):
    """A file of the default glossary is invalid; the message names the file and the line."""

    code = "glossary_file"

    def __init__(self, path: str, line: int, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {problem}")
