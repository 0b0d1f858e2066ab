"""OpenAI chat-completions request and response shapes (the subset this server implements).

Unknown fields are rejected (as OpenAI does: "Unrecognized request argument supplied"), so that a
feature a client relies on is never silently ignored.
"""

from __future__ import annotations

import dataclasses
import time
import typing
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_serializer, field_validator, model_validator

from sla_engine.search.choose import CONFIG_CLASSES, STRATEGIES

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

    @field_validator("content", mode="before")
    @classmethod
    def _text_only(cls, content):
        """Say plainly that only text parts are served (an image part would otherwise fail as 'not a string')."""
        if isinstance(content, list):
            for i, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind != "text":
                    raise ValueError(f"content part {i} has type {kind!r}; this server takes only text parts "
                                     "({\"type\": \"text\", \"text\": ...}) or a string")
        return content

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)

    def for_template(self) -> dict:
        # Chat templates know "system", not OpenAI's newer "developer" role.
        return {"role": "system" if self.role == "developer" else self.role, "content": self.text()}


class StreamOptions(Strict):
    include_usage: bool = False


class SearchFieldBase(Strict):
    def given(self) -> dict:
        """The settings the client sent."""
        return self.model_dump(exclude_none=True)


def search_field() -> type[SearchFieldBase]:
    """The `search` extension field's model (clients send it through the openai client's `extra_body`),
    generated from the strategy configs (sla_engine/search/config.py): `strategy` and every setting of every
    strategy, each typed as its config types it. Settings left out come from the server's default search when
    it runs the same strategy (`sla serve --search`), else from the strategy's defaults; a setting of another
    strategy, or one out of its range, is a 400 (the configs check both)."""
    fields: dict = {"strategy": (Literal[STRATEGIES] | None, Field(None, description="the search strategy"))}
    users: dict[str, list[str]] = {}
    for cls in CONFIG_CLASSES:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name == "strategy":
                continue
            hint = hints[f.name]  # X, X | None, or a Literal (whose args are its values, not types)
            kind = hint if typing.get_origin(hint) is Literal else next(
                t for t in typing.get_args(hint) or (hint,) if t is not type(None))
            if f.name in fields and fields[f.name][0] != kind | None:
                raise TypeError(f"search setting {f.name!r} has two types across strategies")
            fields[f.name] = (kind | None, None)
            users.setdefault(f.name, []).append(cls.strategy)
    for name, strategies in users.items():
        fields[name] = (fields[name][0], Field(None, description=f"setting of: {', '.join(strategies)}"))
    return create_model("SearchField", __base__=SearchFieldBase, __doc__=search_field.__doc__, **fields)


SearchField = search_field()


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
    search: SearchField | None = None

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
    def _options(self) -> ChatCompletionRequest:
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


class WithSearchStats(BaseModel):
    # `search_stats` of a response (SearchStats.as_dict()): the strategy and the settings that ran, what the
    # search did (tokens generated and emitted, branches forked and aborted, prefix-cache hit rate of branch
    # prompts, mean reward of the committed tokens) and the strategy's own counters, all flat
    search_stats: dict[str, Any] | None = None

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
