"""POST /v1/chat/completions: request → generation (plain or a search) → OpenAI response or SSE stream."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

from vllm import SamplingParams
from vllm.sampling_params import RequestOutputKind
from vllm.v1.engine.exceptions import EngineDeadError

from server.errors import APIError, bad_request, engine_dead
from server.metrics import ServerMetrics
from server.protocol import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    Usage,
    completion_id,
    now,
)
from sla_engine.engine import Engine, PromptTooLongError
from sla_engine.search import (
    CommittedText,
    PlainConfig,
    SearchConfig,
    SearchConfigError,
    SearchStats,
    choose_search,
    make_search,
)
from sla_engine.store import canonical

log = logging.getLogger(__name__)

# Sampling fields that a search strategy (which decides its own decoding) cannot honour: set → 400, never ignored.
SAMPLING_FIELDS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")


@dataclass
class PreparedChat:
    """A validated request, ready for the engine."""

    id: str
    created: int
    model: str
    prompt_ids: list[int]
    params: SamplingParams
    search: SearchConfig
    stats: SearchStats
    target: Engine | None = None  # the larger model of `rsd`

    @property
    def reports_search(self) -> bool:
        return self.search.strategy != "sample"


def search_config(
    req: ChatCompletionRequest, default: SearchConfig, engine: Engine, target: Engine | None
) -> SearchConfig:
    try:
        config = choose_search(req.search.given() if req.search else None, default,
                               has_reward=engine.reward is not None, has_target=target is not None)
    except SearchConfigError as e:
        raise bad_request(f"Invalid value for 'search.{e.field}': {e}.", param=f"search.{e.field}") from None
    searching = not isinstance(config, PlainConfig)
    if req.ignore_eos and searching:
        raise bad_request(f"'ignore_eos' cannot be combined with search strategy '{config.strategy}', whose "
                          "branches end at the end-of-sequence token.", param="ignore_eos")
    if config.strategy != "sample":
        for name in SAMPLING_FIELDS:
            if getattr(req, name) is not None:
                how = "decodes by argmax" if not searching else "sets its own decoding (see its settings)"
                raise bad_request(
                    f"'{name}' cannot be combined with search strategy '{config.strategy}', which {how}; leave "
                    "it out, or send \"search\": {\"strategy\": \"sample\"}.", param=name,
                )
    return config


def completion_budget(req: ChatCompletionRequest, engine: Engine, prompt_len: int, cap: int | None) -> int:
    """max_tokens for the engine: the request's (≤ the server's cap and what the context leaves), else the
    smaller of the two."""
    asked = req.completion_limit
    name = "max_completion_tokens" if req.max_completion_tokens is not None else "max_tokens"
    try:
        room = engine.check_fits(prompt_len, asked)
    except PromptTooLongError as e:
        raise bad_request(str(e), param="messages" if asked is None else name,
                          code="context_length_exceeded") from None
    if cap is not None and asked is not None and asked > cap:
        raise bad_request(f"'{name}' is {asked}; this server allows at most {cap}.", param=name)
    return room if cap is None else min(room, cap)


def prepare(
    req: ChatCompletionRequest, engine: Engine, default_search: SearchConfig, max_tokens_cap: int | None = None,
    target: Engine | None = None,
) -> PreparedChat:
    if canonical(req.model) != engine.config.served_name:
        raise APIError(
            404, f"The model '{req.model}' does not exist; this server serves '{engine.config.served_name}'.",
            param="model", code="model_not_found",
        )
    search = search_config(req, default_search, engine, target)
    try:
        prompt_ids = engine.chat_prompt_ids([m.for_template() for m in req.messages])
    except Exception as e:  # a template may reject a role order (e.g. two system messages)
        raise bad_request(f"The messages could not be rendered with the model's chat template: {e}",
                          param="messages") from None
    max_tokens = completion_budget(req, engine, len(prompt_ids), max_tokens_cap)
    defaults = engine.default_sampling

    def pick(name: str, fallback):
        value = getattr(req, name)
        return value if value is not None else defaults.get(name, fallback)

    if search.strategy == "sample":
        sampling = dict(
            temperature=pick("temperature", 1.0), top_p=pick("top_p", 1.0),
            frequency_penalty=pick("frequency_penalty", 0.0), presence_penalty=pick("presence_penalty", 0.0),
            top_k=defaults.get("top_k", 0), min_p=defaults.get("min_p", 0.0),
            repetition_penalty=defaults.get("repetition_penalty", 1.0),
        )
    else:  # argmax of the model's own distribution: what every search decodes with inside its branches
        sampling = dict(temperature=0.0)
    params = SamplingParams(
        n=1, max_tokens=max_tokens, seed=req.seed, stop=req.stop or None, ignore_eos=req.ignore_eos,
        output_kind=RequestOutputKind.DELTA,
        **sampling,
    )
    return PreparedChat(completion_id(), now(), engine.config.served_name, prompt_ids, params, search,
                        SearchStats(settings=search.as_dict()), target)


def compact(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


class GenerationFailed(Exception):
    """The engine failed part-way; carries the OpenAI-shaped error to report."""

    def __init__(self, error: APIError):
        self.error = error


async def plain_deltas(engine: Engine, chat: PreparedChat) -> AsyncIterator[tuple[str, int, str | None]]:
    async for out in engine.generate(chat.prompt_ids, chat.params, chat.id, read_rewards=False):
        c = out.outputs[0]
        finish = c.finish_reason if out.finished else None
        if finish == "abort":
            raise GenerationFailed(APIError(503, "The request was aborted by the engine.", code="aborted"))
        chat.stats.tokens_generated += len(c.token_ids)
        chat.stats.tokens_emitted += len(c.token_ids)
        yield c.text, len(c.token_ids), finish


async def search_deltas(engine: Engine, chat: PreparedChat) -> AsyncIterator[tuple[str, int, str | None]]:
    search = make_search(chat.search, engine, chat.prompt_ids, chat.params.max_tokens, chat.stats, chat.id,
                         seed=chat.params.seed, target=chat.target)
    text = CommittedText(engine.tokenizer, chat.params.stop)
    async with aclosing(search.commits()) as commits:
        async for commit in commits:
            delta = text.add(commit.tokens, last=commit.finish_reason is not None)
            finish = "stop" if text.stopped else commit.finish_reason
            yield delta, len(commit.tokens), finish
            if finish:
                return


async def deltas(engine: Engine, chat: PreparedChat) -> AsyncIterator[tuple[str, int, str | None]]:
    """(text delta, new token count, finish reason or None); engine errors → GenerationFailed."""
    plain = isinstance(chat.search, PlainConfig)
    source = plain_deltas(engine, chat) if plain else search_deltas(engine, chat)
    try:
        async with aclosing(source) as items:
            async for item in items:
                yield item
    except EngineDeadError:
        raise GenerationFailed(engine_dead()) from None
    except GenerationFailed:
        raise
    except ValueError as e:  # the engine's own input validation
        raise GenerationFailed(bad_request(str(e))) from e
    except Exception:
        log.exception("generation %s failed", chat.id)
        raise GenerationFailed(APIError(500, "The engine failed while generating.", code="internal_error")) from None


def stats_body(chat: PreparedChat) -> dict | None:
    return chat.stats.as_dict() if chat.reports_search else None


async def complete(engine: Engine, chat: PreparedChat, metrics: ServerMetrics) -> dict:
    text, tokens, finish = [], 0, None
    try:
        async for delta, n, f in deltas(engine, chat):
            text.append(delta)
            tokens += n
            finish = f or finish
    except GenerationFailed as e:
        raise e.error from None
    finally:
        metrics.observe_search(chat.search.strategy, chat.stats)
    prompt = len(chat.prompt_ids)
    return ChatCompletion(
        id=chat.id,
        created=chat.created,
        model=chat.model,
        choices=[Choice(message=AssistantMessage(content="".join(text)), finish_reason=finish)],
        usage=Usage(prompt_tokens=prompt, completion_tokens=tokens, total_tokens=prompt + tokens),
        search_stats=stats_body(chat),
    ).dump()


async def stream(
    engine: Engine, chat: PreparedChat, include_usage: bool, metrics: ServerMetrics, arrived: float
) -> AsyncIterator[str]:
    """SSE `data:` payloads as OpenAI sends them: role, content deltas, finish (+ search_stats), optional usage,
    [DONE]. `arrived` (perf_counter) is when the request came in: TTFT counts from there."""

    def chunk(delta: Delta, finish: str | None = None, search_stats: dict | None = None) -> str:
        c = ChatCompletionChunk(
            id=chat.id, created=chat.created, model=chat.model,
            choices=[ChunkChoice(delta=delta, finish_reason=finish)], search_stats=search_stats,
        )
        return compact(c.dump())

    def usage_chunk(tokens: int) -> str:
        prompt = len(chat.prompt_ids)
        usage = Usage(prompt_tokens=prompt, completion_tokens=tokens, total_tokens=prompt + tokens)
        return compact(ChatCompletionChunk(id=chat.id, created=chat.created, model=chat.model, choices=[],
                                           usage=usage).dump())

    ended = False  # stays False when the client goes away and the server closes this generator
    clock = metrics.stream_clock(chat.search.strategy, arrived)
    with metrics.timed():
        try:
            yield chunk(Delta(role="assistant", content=""))
            tokens, finish = 0, None
            try:
                async with aclosing(deltas(engine, chat)) as items:
                    async for delta, n, f in items:
                        tokens += n
                        finish = f or finish
                        if delta:
                            clock.delta()
                            yield chunk(Delta(content=delta))
                clock.finished(tokens)
                yield chunk(Delta(), finish, stats_body(chat))
                if include_usage:
                    yield usage_chunk(tokens)
            except GenerationFailed as e:  # after the 200: an error event, as vLLM and OpenAI send it
                yield compact(e.error.body())
            yield "[DONE]"
            ended = True
        finally:
            metrics.observe_search(chat.search.strategy, chat.stats)
            if not ended:
                metrics.disconnects.inc()
