"""Article endpoints: submit one (``POST /summarize``) or many, and list the summary styles."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, QueryParameter

from service.api.auth import caller_of, require_json
from service.api.deps import ServicesDep
from service.api.glossary_use import owner_of
from service.api.keys import Caller
from service.api.problems import problem_for, problem_responses
from service.api.schemas import (
    BatchAccepted,
    BatchItem,
    BatchRequest,
    JobAccepted,
    StyleInfo,
    SummarizeRequest,
)
from service.api.services import Services
from service.api.submission import (
    copy_of_request,
    current_models,
    prepare,
    submit,
    submit_once,
    wait_for,
)
from service.errors import ApiProblem, KurzError
from service.schemas import JobStatus, JobView, ModelInfo
from service.store.idempotency import fingerprint

__all__ = ["MAX_BATCH", "list_styles", "summarize", "summarize_batch"]

#: The most articles one batch request may hold.
MAX_BATCH = 100
#: What a 202 tells the client about polling its job.
ACCEPTED_RETRY_AFTER_S = 2


def respond(view: JobView) -> Response[Any]:
    """200 with the full view once it succeeded; otherwise 202 pointing at the job."""
    if view.status == JobStatus.SUCCEEDED:
        return Response(view, status_code=200)
    return Response(
        JobAccepted(id=view.id, status=view.status, links=view.links),
        status_code=202,
        headers={"Location": view.links.self, "Retry-After": str(ACCEPTED_RETRY_AFTER_S)},
    )


_SUBMIT_RESPONSES: dict[int, ResponseSpec] = {
    200: ResponseSpec(
        data_container=JobView,
        description="Answered from the result cache, or the job finished within `wait`",
        generate_examples=False,
    ),
    **problem_responses(400, 401, 404, 409, 413, 415, 422, 429, 503),
}


@post(
    "/summarize",
    status_code=202,
    guards=[require_json],
    responses=_SUBMIT_RESPONSES,
    summary="Translate and summarize one German article",
    description=(
        "Validates the article and enqueues a job, or answers at once from the result cache. "
        "Identical articles share one job.  `202` carries `Location: /jobs/{id}`; with "
        "`wait` the request holds up to that many seconds for the result.  An "
        "`Idempotency-Key` makes retries of the same request return the same job."
    ),
    tags=["articles"],
)
async def summarize(
    request: Request[Any, Any, Any],
    data: JSONBody[SummarizeRequest],
    services: ServicesDep,
    wait: Annotated[
        float,
        QueryParameter(ge=0, le=60, description="Seconds to wait for the result before a 202."),
    ] = 0.0,
    idempotency_key: Annotated[
        str | None,
        HeaderParameter(
            name="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Retries with the same key and body return the same job for 24 h.",
        ),
    ] = None,
) -> Response[Any]:
    """``POST /summarize``."""
    caller = caller_of(request)
    models = await current_models(services)
    prepared = await prepare(
        data, services, models, owner=owner_of(caller), cache_scope=caller.cache_scope
    )
    if idempotency_key is None:
        view = await submit(services, prepared)
    else:
        client = caller_of(request).client
        view = await submit_once(services, prepared, client, idempotency_key, fingerprint(data))
    return respond(await wait_for(services, view, wait, copy_of_request(prepared, services)))


@post(
    "/summarize/batch",
    status_code=202,
    guards=[require_json],
    responses=problem_responses(400, 401, 413, 415, 422, 429, 503),
    summary="Submit up to 100 articles at once",
    description=(
        "Each article is validated and submitted on its own: the answer lists, by index, either "
        "the job (`id`, `status`, `links`) or the problem that article has.  Articles already "
        "in the result cache come back with status `succeeded`."
    ),
    tags=["articles"],
)
async def summarize_batch(
    request: Request[Any, Any, Any], data: JSONBody[BatchRequest], services: ServicesDep
) -> BatchAccepted:
    """``POST /summarize/batch``."""
    count = len(data.articles)
    if count == 0:
        raise ApiProblem(422, "no_articles", "the batch has no articles")
    if count > MAX_BATCH:
        raise ApiProblem(
            422,
            "too_many_articles",
            f"a batch holds at most {MAX_BATCH} articles, not {count}",
            limit=MAX_BATCH,
            count=count,
        )
    caller = caller_of(request)
    # The guard counted the request as one submission; each further article counts too, so a
    # batch of 100 cannot carry a hundred times the submissions a key may make.
    await services.limiter.check(caller.rate_subject, caller.rate_limit, amount=count - 1)
    models = await current_models(services)
    items: list[BatchItem] = []
    for index, raw in enumerate(data.articles):
        items.append(await _batch_item(services, models, index, raw, caller))
    return BatchAccepted(jobs=items)


async def _batch_item(
    services: Services,
    models: dict[str, ModelInfo],
    index: int,
    raw: dict[str, Any],
    caller: Caller,
) -> BatchItem:
    """One article of a batch; its own problems become its entry, Redis outages fail the batch."""
    try:
        article = msgspec.convert(raw, SummarizeRequest)
        prepared = await prepare(
            article, services, models, owner=owner_of(caller), cache_scope=caller.cache_scope
        )
        view = await submit(services, prepared)
    except (KurzError, msgspec.ValidationError) as exc:
        return BatchItem(index=index, error=problem_for(exc).body())
    return BatchItem(index=index, id=view.id, status=view.status, links=view.links)


@get(
    "/styles",
    summary="The summary styles, and what of each the loaded summarizer uses",
    description=(
        "Each style's generation settings and layout always apply.  Its `instruction` reaches "
        "only instruction-following summarizers (T5/FLAN-T5): `instruction_applies` says "
        "whether the workers' model is one (the default BART model is not)."
    ),
    tags=["articles"],
)
async def list_styles(services: ServicesDep) -> list[StyleInfo]:
    """``GET /styles``."""
    traits = await services.workers.summarizer()
    return [
        StyleInfo(
            name=preset.name,
            description=preset.description,
            version=preset.version,
            digest=preset.digest,
            layout=preset.layout,
            summarizer=traits.model if traits else None,
            instruction_applies=traits.follows_instructions if traits else None,
        )
        for preset in services.presets.all()
    ]
