"""OpenAI chat-completions request and response shapes (the subset this server implements).

Unknown fields are rejected (as OpenAI does: "Unrecognized request argument supplied"), so that a
feature a client relies on is never silently ignored.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator

MAX_STOP_SEQUENCES = 4  # as OpenAI
MAX_MESSAGES = 1024  # a chat longer than this is a client bug, not a conversation


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "5" is not a number, "yes" not a boolean


class TextPart(Strict):
    type: Literal["text"]
    text: str


class ChatMessage(Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)

    def for_template(self) -> dict:
        # Chat templates know "system", not OpenAI's newer "developer" role.
        return {"role": "system" if self.role == "developer" else self.role, "content": self.text()}


class StreamOptions(Strict):
    include_usage: bool = False


class SearchSettings(Strict):
    """The `search` extension field (clients send it through the openai client's `extra_body`): a strategy
    and its settings. Fields left out come from the server's default search when it runs the same strategy
    (`sla serve --search`), else from the strategy's defaults; a field that is not a setting of the chosen
    strategy, or out of its range, is a 400 (ranges are checked by sla_engine.search.config)."""

    strategy: Literal["sample", "greedy", "sla", "best_of_n", "cards", "tree", "rsd"] | None = None
    # sla (and tree: width)
    width: int | None = None
    chunk: int | None = None
    depth: int | None = None
    fork_min_p: float | None = None
    # best_of_n (and tree: temperature; cards: top_k; rsd: threshold)
    n: int | None = None
    temperature: float | None = None
    top_k: int | None = None
    greedy_first: bool | None = None
    prune_at: int | None = None
    keep: float | None = None
    batch: int | None = None
    threshold: float | None = None
    prefer_finished: bool | None = None
    # cards
    entropy: float | None = None
    min_segment: int | None = None
    max_segment: int | None = None
    beta: float | None = None
    reward_start: float | None = None
    reward_end: float | None = None
    max_rejections: int | None = None
    # tree
    segment: int | None = None
    paths: int | None = None
    # rsd
    max_step: int | None = None

    def given(self) -> dict:
        return self.model_dump(exclude_none=True)


class ChatCompletionRequest(Strict):
    model: str
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=MAX_MESSAGES)]
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] | None = None
    seed: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | None = None  # a 64-bit integer, as vLLM takes
    stop: str | list[str] | None = None
    n: Literal[1] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    ignore_eos: bool = False  # vLLM's extension (benchmarks use it for fixed-length outputs)
    search: SearchSettings | None = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: str | list[str] | None) -> list[str]:
        stops = [v] if isinstance(v, str) else list(v or [])
        if len(stops) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed")
        if any(s == "" for s in stops):
            raise ValueError("stop sequences must not be empty")
        return stops

    @model_validator(mode="after")
    def _options(self) -> "ChatCompletionRequest":
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed when stream is true")
        return self

    @property
    def completion_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


# ---- responses ---------------------------------------------------------------------------------

FinishReason = Literal["stop", "length"]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason | None
    logprobs: None = None


class SearchStatsBody(BaseModel):
    """`search_stats` of a response: the strategy and the settings that ran, what the search did, and the
    strategy's own counters (e.g. `samples`, `segments_rejected`, `steps_target`), all flat."""

    model_config = ConfigDict(extra="allow")

    strategy: str
    tokens_generated: int
    tokens_emitted: int
    branches_forked: int
    branches_aborted: int
    prefix_cache_hit_rate: float | None  # of the prompt tokens of branch requests
    mean_reward: float | None  # of the committed path


class WithSearchStats(BaseModel):
    search_stats: SearchStatsBody | None = None

    def dump(self) -> dict:
        """JSON body; `search_stats` only when a search ran (plain OpenAI shape otherwise)."""
        return self.model_dump(mode="json", exclude={"search_stats"} if self.search_stats is None else None)


class ChatCompletion(WithSearchStats):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: None = None

    @field_serializer("delta")
    def _delta(self, delta: Delta) -> dict:
        return delta.model_dump(exclude_none=True)  # as OpenAI: {"role": ...} first, then {"content": ...}


class ChatCompletionChunk(WithSearchStats):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "sla-server"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())
