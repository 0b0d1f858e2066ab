"""Reward-head files, kept beside (never inside) the base model:

    reward_head.safetensors   the channel + head weights (any float dtype; loaded as fp32)
    reward_head.json          {"format_version", "width", "head", "hidden_size", "num_layers", "eps",
                               "base_model", "base_model_sha256", "calibration", "readout"}

`calibration` (optional; `calibration.py`) records the mean/std that were folded into the head's weights,
so the rewards the file gives are already standardized; null for an uncalibrated head.
`readout` (optional, default "mean") is how the head was trained to score a path: "mean", the mean reward over
its tokens (a Bradley–Terry head), or "last", the output at its last token (a value head: the log-odds that
the answer will be right). Searches score paths that way unless a request says otherwise.

A head is only valid for the base model it was trained on: `base_model_sha256` is that model's fingerprint
(`model_fingerprint`), checked when a server starts, before the engine does.
"""

from __future__ import annotations

import hashlib
import json
import typing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from sla_engine.reward.calibration import Calibration
from sla_engine.reward.channel import ChannelConfig, RewardChannel

FORMAT_VERSION = 1
Readout = Literal["mean", "last"]
READOUTS: tuple[str, ...] = typing.get_args(Readout)
WEIGHTS_FILE = "reward_head.safetensors"
META_FILE = "reward_head.json"
MANIFEST = "sla-model.json"  # written by the model store for packaged models


class RewardHeadError(ValueError):
    """A reward head cannot be used: unreadable, corrupt, or made for another base model."""


def model_fingerprint(model_path: Path) -> str:
    """Identity of a base model folder: the verified GGUF hash for packaged models, else a SHA-256 over
    config.json and each safetensors file's name, size and first MiB (header and leading weights)."""
    manifest = model_path / MANIFEST
    if manifest.is_file():
        return json.loads(manifest.read_text())["gguf_sha256"]
    digest = hashlib.sha256((model_path / "config.json").read_bytes())
    for f in sorted(model_path.glob("*.safetensors")):
        digest.update(f"{f.name}:{f.stat().st_size}".encode())
        with open(f, "rb") as fh:
            digest.update(fh.read(1 << 20))
    return digest.hexdigest()


def model_dims(model_path: Path) -> tuple[int, int]:
    """(hidden_size, num_hidden_layers) from a model folder's config.json."""
    config = json.loads((model_path / "config.json").read_text())
    config = config.get("text_config", config)
    return config["hidden_size"], config["num_hidden_layers"]


@dataclass(frozen=True)
class RewardHead:
    config: ChannelConfig
    base_model: str
    base_model_sha256: str
    state_dict: dict[str, torch.Tensor]
    calibration: Calibration | None = None
    readout: Readout = "mean"

    def __post_init__(self) -> None:
        if self.readout not in READOUTS:
            raise RewardHeadError(f"a head's readout is one of {', '.join(READOUTS)}, not {self.readout!r}")

    def channel(self) -> RewardChannel:
        module = RewardChannel(self.config)
        module.load_state_dict({k: v.float() for k, v in self.state_dict.items()})
        return module

    @classmethod
    def from_channel(cls, channel: RewardChannel, base_model: str, base_model_path: Path,
                     calibration: Calibration | None = None, readout: Readout = "mean") -> RewardHead:
        state = {k: v.detach().cpu().contiguous() for k, v in channel.state_dict().items()}
        return cls(channel.config, base_model, model_fingerprint(base_model_path), state, calibration, readout)

    @classmethod
    def random(cls, model_path: Path, base_model: str, width: int = 256, seed: int = 0) -> RewardHead:
        """Untrained weights of the given width: for speed measurements, where what a head learnt does not matter."""
        hidden, layers = model_dims(model_path)
        torch.manual_seed(seed)
        return cls.from_channel(RewardChannel(ChannelConfig(hidden, layers, width)), base_model, model_path)

    def save(self, folder: Path, dtype: torch.dtype | None = torch.float32) -> Path:
        """Both files into `folder`, every tensor in `dtype` (None: each in its own)."""
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v if dtype is None else v.to(dtype) for k, v in self.state_dict.items()},
                  str(folder / WEIGHTS_FILE))
        meta = {"format_version": FORMAT_VERSION, **asdict(self.config),
                "base_model": self.base_model, "base_model_sha256": self.base_model_sha256,
                "calibration": self.calibration.to_json() if self.calibration else None, "readout": self.readout}
        (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, path: Path) -> RewardHead:
        """From a folder holding both files (or the path of either file)."""
        folder = path if path.is_dir() else path.parent
        meta_path, weights_path = folder / META_FILE, folder / WEIGHTS_FILE
        for f in (meta_path, weights_path):
            if not f.is_file():
                raise RewardHeadError(f"reward head: {f} is missing")
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("format_version") != FORMAT_VERSION:
                raise RewardHeadError(f"reward head {meta_path}: format_version {meta.get('format_version')!r}, "
                                      f"expected {FORMAT_VERSION}")
            config = ChannelConfig(meta["hidden_size"], meta["num_layers"], meta["width"], meta["head"], meta["eps"])
            base, base_sha = meta["base_model"], meta["base_model_sha256"]
            calibration = Calibration.from_json(meta["calibration"]) if meta.get("calibration") else None
            readout = meta.get("readout", "mean")
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            if isinstance(e, RewardHeadError):
                raise
            raise RewardHeadError(f"reward head {meta_path} is not valid metadata: {e}") from e
        try:
            state = load_file(str(weights_path))
        except (SafetensorError, OSError) as e:
            raise RewardHeadError(f"reward head {weights_path} is corrupt or unreadable: {e}") from e
        expected = {k: v.shape for k, v in RewardChannel(config).state_dict().items()}
        found = {k: v.shape for k, v in state.items()}
        if expected != found:
            raise RewardHeadError(f"reward head {weights_path}: tensors do not match its metadata "
                                  f"(missing {sorted(set(expected) - set(found))}, "
                                  f"unexpected {sorted(set(found) - set(expected))}, "
                                  f"shapes {[k for k in expected.keys() & found.keys() if expected[k] != found[k]]})")
        if not all(torch.isfinite(v).all() for v in state.values()):
            raise RewardHeadError(f"reward head {weights_path} holds non-finite weights")
        return cls(config, base, base_sha, state, calibration, readout)

    @classmethod
    def load_for(cls, path: Path, model_path: Path) -> RewardHead:
        """`load`, refusing a head made for another base model than the one at `model_path`."""
        head = cls.load(path)
        head.check_base(model_path)
        return head

    def check_base(self, model_path: Path) -> None:
        """Refuses a head made for another base model (clear message, before any engine starts)."""
        hidden, layers = model_dims(model_path)
        if (hidden, layers) != (self.config.hidden_size, self.config.num_layers):
            raise RewardHeadError(
                f"reward head for {self.base_model!r} (hidden {self.config.hidden_size}, {self.config.num_layers} "
                f"layers) does not fit the model at {model_path} (hidden {hidden}, {layers} layers)")
        actual = model_fingerprint(model_path)
        if actual != self.base_model_sha256:
            raise RewardHeadError(
                f"reward head was trained for base model {self.base_model!r} (sha256 {self.base_model_sha256[:12]}…), "
                f"not for the model at {model_path} (sha256 {actual[:12]}…)")
