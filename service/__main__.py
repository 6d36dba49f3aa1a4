"""Command line: ``python -m service COMMAND``.

Commands: ``api`` and ``worker`` (the two processes of the service), ``summarize FILE...``
(one-off use without the service), ``download-models`` (fill the Hugging Face cache on a machine
with internet), ``make-tiny-models DIR`` (small offline models for tests and trials) and
``glossary suggest FILE...`` (names that look like German transliterations, as glossary TSV)
and ``worker-alive`` (the worker container's health probe: exit 0 while a worker on this host
keeps its heartbeat, 1 otherwise).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence

from service.errors import ConfigError, KurzError
from service.logs import configure_logging
from service.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run one command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings)
    try:
        return int(args.run(settings, args))
    except KurzError as error:
        print(f"error: {error}", file=sys.stderr)  # noqa: T201 - the CLI's own output
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    api = commands.add_parser("api", help="serve the HTTP API (KURZ_HOST, KURZ_PORT)")
    api.set_defaults(run=_run_api)

    worker = commands.add_parser("worker", help="run a worker: load the models, take jobs")
    worker.set_defaults(run=_run_worker)

    summarize = commands.add_parser("summarize", help="translate and summarize German files")
    summarize.add_argument("files", nargs="+", metavar="FILE", help="text files; - reads stdin")
    summarize.add_argument("--style", default=None, help="summary style (see prompts/)")
    summarize.add_argument("--title", default=None, help="article title to translate too")
    summarize.add_argument("--json", action="store_true", help="one JSON result per line")
    summarize.add_argument(
        "--html", action="store_true", help="the files are HTML pages: extract the article first"
    )
    summarize.add_argument(
        "--allow-non-german", action="store_true", help="translate even if not German"
    )
    summarize.set_defaults(run=_run_summarize)

    download = commands.add_parser(
        "download-models", help="fetch the configured models into the Hugging Face cache"
    )
    download.set_defaults(run=_run_download)

    tiny = commands.add_parser("make-tiny-models", help="build tiny offline models into DIR")
    tiny.add_argument("directory", metavar="DIR")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument("--force", action="store_true", help="rebuild even if DIR is complete")
    tiny.set_defaults(run=_run_make_tiny)

    alive = commands.add_parser(
        "worker-alive", help="exit 0 if a worker on this host has a fresh heartbeat, else 1"
    )
    alive.set_defaults(run=_run_worker_alive)

    glossary = commands.add_parser("glossary", help="glossary tools for editors")
    glossary_commands = glossary.add_subparsers(dest="glossary_command", required=True)
    suggest = glossary_commands.add_parser(
        "suggest",
        help="list names that look like German transliterations: TSV on stdout, counts on stderr",
    )
    suggest.add_argument("files", nargs="+", metavar="FILE", help="text files; - reads stdin")
    suggest.set_defaults(run=_run_glossary_suggest)
    return parser


def _run_api(settings: Settings, args: argparse.Namespace) -> int:
    from service.api.app import serve

    serve(settings)
    return 0


#: The file a complete tiny build ends with (``service.dev.tiny.MARKER_NAME``, which cannot be
#: imported without torch).
TINY_MARKER_NAME = "tiny-build.json"


def _prepare_tiny_models(settings: Settings) -> None:
    """With ``KURZ_MODELS=tiny``, build the tiny offline models first (once; later runs reuse
    the build).  The runtime packages never build them: they are a developer's tool.

    Building them needs torch; an environment without it (the image's, whose build baked them
    in and converted them) uses the build it finds, and says so when there is none.
    """
    if settings.models != "tiny":
        return
    if importlib.util.find_spec("torch") is None:
        if not (settings.tiny_models_dir / TINY_MARKER_NAME).is_file():
            raise ConfigError(
                f"KURZ_MODELS=tiny: no tiny models in {settings.tiny_models_dir}, and building "
                "them needs torch, which is not installed here; build them where it is "
                "(`python -m service make-tiny-models DIR`, or an image with BAKE_MODELS=tiny)"
            )
        return
    from service.dev.tiny import make_tiny_models

    make_tiny_models(settings.tiny_models_dir)


def _run_worker(settings: Settings, args: argparse.Namespace) -> int:
    from service.worker import run_worker

    _prepare_tiny_models(settings)
    run_worker(settings)
    # Everything the worker opened is closed and its jobs are handed back by now.  Tearing the
    # interpreter down would then free the model libraries' modules and thread pools one by one,
    # over a second of an idle Ctrl-C, for memory the OS reclaims at once: exit instead.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _run_summarize(settings: Settings, args: argparse.Namespace) -> int:
    from service.cli_summarize import summarize_files

    _prepare_tiny_models(settings)
    return summarize_files(
        settings,
        args.files,
        style=args.style or settings.default_style,
        title=args.title,
        as_json=args.json,
        allow_non_german=args.allow_non_german,
        html=args.html,
    )


def _run_download(settings: Settings, args: argparse.Namespace) -> int:
    from service.nlp.loading import download_models

    for path in download_models([settings.translation_model, settings.summarization_model]):
        print(path)  # noqa: T201 - the CLI's own output
    return 0


def _run_make_tiny(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from service.dev.tiny import make_tiny_models

    paths = make_tiny_models(Path(args.directory), seed=args.seed, force=args.force)
    print(paths.translation)  # noqa: T201 - the CLI's own output
    print(paths.summarization)  # noqa: T201
    return 0


def _run_worker_alive(settings: Settings, args: argparse.Namespace) -> int:
    """Container probe.  Redis away or refusing counts as not alive: a liveness probe that
    restarts the worker then makes it reconnect."""
    import asyncio
    import socket

    from redis.exceptions import RedisError

    from service.constants import Keys
    from service.store.connection import make_redis
    from service.store.workers import WorkerRegistry

    async def probe() -> bool:
        redis = make_redis(settings.redis_url, "api")
        try:
            registry = WorkerRegistry(redis, Keys(settings.key_prefix))
            return await registry.host_alive(socket.gethostname())
        finally:
            await redis.aclose()

    try:
        alive = asyncio.run(probe())
    except (OSError, RedisError):
        alive = False
    return 0 if alive else 1


def _run_glossary_suggest(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from service.text.transliteration import find_candidates, to_tsv

    try:
        texts = [sys.stdin.read() if f == "-" else Path(f).read_text("utf-8") for f in args.files]
    except (OSError, UnicodeDecodeError) as error:
        print(f"error: {error}", file=sys.stderr)  # noqa: T201 - the CLI's own output
        return 1
    candidates = find_candidates(texts)
    for candidate in candidates:
        reasons = ", ".join(candidate.reasons)
        print(f"{candidate.count:6d}  {candidate.word}  ({reasons})", file=sys.stderr)  # noqa: T201
    sys.stdout.write(to_tsv(candidates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
