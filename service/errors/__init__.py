"""The exception tree.  Every error the service raises on purpose is a ``KurzError``::

    KurzError                     500 internal
    ├── ConfigError               500 config: bad settings or files; the process refuses to start
    │   ├── PresetError           500 preset: one prompts/<style>.toml is invalid (file and field)
    │   ├── AllowListError        500 webhook_allow_hosts: an allow-list entry is malformed
    │   ├── WebhookConfigError    500 webhook_config: no secret, or a malformed one
    │   └── GlossaryFileError     500 glossary_file: a glossaries/*.tsv line is invalid
    ├── ModelUnavailableError     500 model_unavailable: neither a local directory nor cached
    ├── InputError                422 invalid_input: the request itself is wrong
    │   ├── EmptyTextError        422 empty_text: nothing but whitespace
    │   ├── TextTooLongError      413 text_too_long: more characters than KURZ_MAX_TEXT_CHARS
    │   ├── UnknownStyleError     422 unknown_style: style not among prompts/*.toml
    │   ├── NotGermanError        422 not_german: the article is in another language
    │   ├── CallbackRefusedError  422 callback_url_refused: a URL webhooks may not call
    │   ├── TooManyCallbacksError 422 too_many_callbacks: a caller's callbacks for one job
    │   ├── InputExpiredError     410 input_expired: a queued job's stored article is gone
    │   ├── MarkupAsTextError     422 markup_as_text: ``text`` that is plainly HTML
    │   ├── NotHtmlError          415 not_html: a page or response that is not HTML
    │   ├── PageTooLargeError     413 page_too_large: a page over the size limit
    │   ├── NothingExtractedError 422 nothing_extracted: no article text on the page
    │   ├── ExtractionTimeoutError 422 extraction_timeout: extraction ran past its limit
    │   ├── UrlRefusedError       422 url_refused: a URL the fetcher may not read
    │   ├── GlossaryError         400 invalid_glossary: a glossary in a request is invalid
    │   │   ├── GlossaryEntriesError 400 invalid_glossary_entries: one line is invalid
    │   │   ├── GlossaryTooLargeError 400 glossary_too_large: over the size or entry limit
    │   │   └── UnsupportedGlossaryLanguagesError 400 unsupported_glossary_languages: not DE->EN
    │   ├── GlossaryNotFoundError 404 glossary_not_found: none with this id for this caller
    │   └── GlossaryLimitError    400 glossary_limit: the owner has the most allowed
    ├── FetchFailedError          502 fetch_failed: the article's site failed (its status kept)
    ├── LaneTimeoutError          503 translate_timeout: a translate-lane job outran the wait
    ├── LaneFailedError           500 translate_failed: a translate-lane job failed
    └── ApiProblem                (its own) a refusal the API decides: unknown job, bad key, ...
        ├── QueueFullError        429 queue_full: the waiting list is at its limit
        └── StorageFullError      503 storage_full: the queue's Redis is nearly at maxmemory

``code`` is the stable machine-readable name an API client can switch on; ``status`` is the HTTP
status the API answers with (``service.api.problems`` maps the tree, and nothing else does).  A
500's message stays in the log: clients get a generic "internal" problem.
The classes live in this package's modules (``base``, ``articles``, ``glossaries``) and are all
importable from here; ``tests/test_errors.py`` checks that this drawing matches them.
"""

from service.errors.articles import (
    CallbackRefusedError,
    EmptyTextError,
    ExtractionTimeoutError,
    FetchFailedError,
    InputExpiredError,
    MarkupAsTextError,
    NotGermanError,
    NothingExtractedError,
    NotHtmlError,
    PageTooLargeError,
    TextTooLongError,
    TooManyCallbacksError,
    UnknownStyleError,
    UrlRefusedError,
)
from service.errors.base import (
    AllowListError,
    ApiProblem,
    ConfigError,
    InputError,
    KurzError,
    LaneFailedError,
    LaneTimeoutError,
    ModelUnavailableError,
    PresetError,
    QueueFullError,
    StorageFullError,
    WebhookConfigError,
)
from service.errors.glossaries import (
    GlossaryEntriesError,
    GlossaryError,
    GlossaryFileError,
    GlossaryLimitError,
    GlossaryNotFoundError,
    GlossaryTooLargeError,
    UnsupportedGlossaryLanguagesError,
)

__all__ = [
    "AllowListError",
    "ApiProblem",
    "CallbackRefusedError",
    "ConfigError",
    "EmptyTextError",
    "ExtractionTimeoutError",
    "FetchFailedError",
    "GlossaryEntriesError",
    "GlossaryError",
    "GlossaryFileError",
    "GlossaryLimitError",
    "GlossaryNotFoundError",
    "GlossaryTooLargeError",
    "InputError",
    "InputExpiredError",
    "KurzError",
    "LaneFailedError",
    "LaneTimeoutError",
    "MarkupAsTextError",
    "ModelUnavailableError",
    "NotGermanError",
    "NotHtmlError",
    "NothingExtractedError",
    "PageTooLargeError",
    "PresetError",
    "QueueFullError",
    "StorageFullError",
    "TextTooLongError",
    "TooManyCallbacksError",
    "UnknownStyleError",
    "UnsupportedGlossaryLanguagesError",
    "UrlRefusedError",
    "WebhookConfigError",
]
