"""POST /v1/chat/completions: request → engine generation → OpenAI response or SSE stream."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import AsyncIterator

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

log = logging.getLogger(__name__)


@dataclass
class PreparedChat:
    """A validated request, ready for the engine."""

    id: str
    created: int
    model: str
    prompt_ids: list[int]
    params: SamplingParams


def prepare(req: ChatCompletionRequest, engine: Engine) -> PreparedChat:
    if req.model != engine.config.served_name:
        raise APIError(
            404, f"The model '{req.model}' does not exist; this server serves '{engine.config.served_name}'.",
            param="model", code="model_not_found",
        )
    try:
        prompt_ids = engine.chat_prompt_ids([m.for_template() for m in req.messages])
    except Exception as e:  # a template may reject a role order (e.g. two system messages)
        raise bad_request(f"The messages could not be rendered with the model's chat template: {e}", param="messages")
    try:
        max_tokens = engine.check_fits(len(prompt_ids), req.completion_limit)
    except PromptTooLongError as e:
        param = "messages" if req.completion_limit is None else "max_tokens"
        raise bad_request(str(e), param=param, code="context_length_exceeded")
    defaults = engine.default_sampling

    def pick(name: str, fallback):
        value = getattr(req, name)
        return value if value is not None else defaults.get(name, fallback)

    params = SamplingParams(
        n=1,
        max_tokens=max_tokens,
        temperature=pick("temperature", 1.0),
        top_p=pick("top_p", 1.0),
        frequency_penalty=pick("frequency_penalty", 0.0),
        presence_penalty=pick("presence_penalty", 0.0),
        top_k=defaults.get("top_k", 0),
        min_p=defaults.get("min_p", 0.0),
        repetition_penalty=defaults.get("repetition_penalty", 1.0),
        seed=req.seed,
        stop=req.stop or None,
        output_kind=RequestOutputKind.DELTA,
    )
    return PreparedChat(completion_id(), now(), req.model, prompt_ids, params)


class GenerationFailed(Exception):
    """The engine failed part-way; carries the OpenAI-shaped error to report."""

    def __init__(self, error: APIError):
        self.error = error


async def deltas(engine: Engine, chat: PreparedChat) -> AsyncIterator[tuple[str, int, str | None]]:
    """(text delta, new token count, finish reason or None) per engine output; engine errors → GenerationFailed."""
    try:
        async for out in engine.generate(chat.prompt_ids, chat.params, chat.id):
            c = out.outputs[0]
            finish = c.finish_reason if out.finished else None
            if finish == "abort":
                raise GenerationFailed(APIError(503, "The request was aborted by the engine.", code="aborted"))
            yield c.text, len(c.token_ids), finish
    except EngineDeadError:
        raise GenerationFailed(engine_dead())
    except GenerationFailed:
        raise
    except ValueError as e:  # the engine's own input validation
        raise GenerationFailed(bad_request(str(e)))
    except Exception:
        log.exception("generation %s failed", chat.id)
        raise GenerationFailed(APIError(500, "The engine failed while generating.", code="internal_error"))


async def complete(engine: Engine, chat: PreparedChat) -> ChatCompletion:
    text, tokens, finish = [], 0, None
    try:
        async for delta, n, f in deltas(engine, chat):
            text.append(delta)
            tokens += n
            finish = f or finish
    except GenerationFailed as e:
        raise e.error
    prompt = len(chat.prompt_ids)
    return ChatCompletion(
        id=chat.id,
        created=chat.created,
        model=chat.model,
        choices=[Choice(message=AssistantMessage(content="".join(text)), finish_reason=finish)],
        usage=Usage(prompt_tokens=prompt, completion_tokens=tokens, total_tokens=prompt + tokens),
    )


async def stream(engine: Engine, chat: PreparedChat, include_usage: bool, metrics: ServerMetrics) -> AsyncIterator[str]:
    """SSE `data:` payloads as OpenAI sends them: role, content deltas, finish, optional usage, [DONE]."""

    def chunk(delta: Delta, finish: str | None = None) -> str:
        c = ChatCompletionChunk(
            id=chat.id, created=chat.created, model=chat.model,
            choices=[ChunkChoice(delta=delta, finish_reason=finish)],
        )
        return c.model_dump_json()

    def usage_chunk(tokens: int) -> str:
        prompt = len(chat.prompt_ids)
        usage = Usage(prompt_tokens=prompt, completion_tokens=tokens, total_tokens=prompt + tokens)
        return ChatCompletionChunk(id=chat.id, created=chat.created, model=chat.model, choices=[], usage=usage).model_dump_json()

    ended = False  # stays False when the client goes away and the server closes this generator
    with metrics.track():
        try:
            yield chunk(Delta(role="assistant", content=""))
            tokens, finish = 0, None
            try:
                async for delta, n, f in deltas(engine, chat):
                    tokens += n
                    finish = f or finish
                    if delta:
                        yield chunk(Delta(content=delta))
                yield chunk(Delta(), finish)
                if include_usage:
                    yield usage_chunk(tokens)
            except GenerationFailed as e:  # after the 200: an error event, as vLLM and OpenAI send it
                yield json.dumps(e.error.body())
            yield "[DONE]"
            ended = True
        finally:
            if not ended:
                metrics.disconnects.inc()
