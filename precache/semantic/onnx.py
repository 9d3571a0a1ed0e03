"""The question embedder on ONNX Runtime: a sentence-transformers model exported once, optionally int8.

The export holds the transformer, the model's pooling and the normalisation in one graph. It is built
from the local model folder with torch's exporter the first time it is needed and kept in a cache
folder named after the model folder and its weights, so a process that finds it needs no export and
no network; concurrent processes build it once (a file lock) and never read a half-written file.
"""

import fcntl
import hashlib
import inspect
import json
import os
from pathlib import Path

import numpy as np

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
POOLING_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}
SUPPORTED_MODULES = {"Transformer", "Pooling", "Normalize"}


class UnsupportedModel(Exception):
    """The model has parts this exporter does not handle (it stays on torch)."""


def model_layout(folder: Path) -> tuple[str, int]:
    """Return (pooling mode, max tokens) of a sentence-transformers folder, or raise UnsupportedModel."""
    modules = json.loads((folder / "modules.json").read_text()) if (folder / "modules.json").exists() else []
    kinds = {m["type"].rsplit(".", 1)[-1]: m for m in modules}
    if not modules or set(kinds) - SUPPORTED_MODULES or "Pooling" not in kinds:
        raise UnsupportedModel(f"{folder}: modules {sorted(kinds)} (supported: {sorted(SUPPORTED_MODULES)})")
    pooling = json.loads((folder / kinds["Pooling"]["path"] / "config.json").read_text())
    modes = [mode for key, mode in POOLING_MODES.items() if pooling.get(key)]
    if len(modes) != 1 or not (folder / "tokenizer.json").exists():
        raise UnsupportedModel(f"{folder}: pooling {pooling} or no tokenizer.json")
    config = folder / "sentence_bert_config.json"
    max_tokens = json.loads(config.read_text()).get("max_seq_length") if config.exists() else None
    return modes[0], int(max_tokens or 512)


def cache_folder(folder: Path, cache_dir: Path) -> Path:
    """Return the cache folder of one model folder's export (a new one when its weights change)."""
    stamp = [str(folder.resolve())]
    for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        stat = weights.stat()
        stamp.append(f"{weights.name}:{stat.st_size}:{int(stat.st_mtime)}")
    return Path(cache_dir) / f"{folder.name}-{hashlib.sha256('|'.join(stamp).encode()).hexdigest()[:12]}"


def exported(folder: Path, cache_dir: Path, quantized: bool) -> Path:
    """Return the ONNX file of a model folder, exporting (and quantizing) it on first use."""
    target_dir = cache_folder(folder, cache_dir)
    target = target_dir / ("model_int8.onnx" if quantized else "model.onnx")
    if target.exists():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    with open(target_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be exporting it right now
        plain = target_dir / "model.onnx"
        if not plain.exists():
            _atomic(plain, lambda tmp: _export(folder, tmp))
        if quantized and not target.exists():
            _atomic(target, lambda tmp: _quantize(plain, tmp))
    return target


def _atomic(target: Path, build) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        build(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _export(folder: Path, target: Path) -> None:
    import warnings

    import torch
    from transformers import AutoModel

    pooling, _ = model_layout(folder)
    model = AutoModel.from_pretrained(str(folder)).eval()
    # BERT-like models take segment ids; MPNet, DistilBERT and RoBERTa-like ones take none.
    names = [name for name in INPUTS if name in inspect.signature(model.forward).parameters]

    class Pooled(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            feed = dict(zip(names, inputs))
            hidden = self.model(**feed).last_hidden_state
            attention_mask = feed["attention_mask"]
            if pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    sample = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in names)
    axes = {name: {0: "batch", 1: "tokens"} for name in names} | {"embedding": {0: "batch"}}
    with warnings.catch_warnings():  # the exporter warns about its own deprecations
        warnings.simplefilter("ignore")
        torch.onnx.export(Pooled(model), sample, str(target),
                          input_names=names, output_names=["embedding"], dynamic_axes=axes, opset_version=17,
                          dynamo=False)


def _quantize(plain: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(plain), str(target), weight_type=QuantType.QInt8, per_channel=True)


class OnnxEncoder:
    """Encode texts with an exported model on ONNX Runtime's CPU provider."""

    def __init__(self, folder: Path, cache_dir: Path, quantized: bool = False, threads: int | None = 1):
        import onnxruntime
        from tokenizers import Tokenizer

        _, max_tokens = model_layout(folder)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.no_padding()
        self.max_tokens = max_tokens
        self.counter = Tokenizer.from_file(str(folder / "tokenizer.json"))  # uncut: it tells how long a text is
        self.counter.no_truncation()
        self.counter.no_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: one per core
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(exported(folder, cache_dir, quantized)), options,
                                                    providers=["CPUExecutionProvider"])
        self.dim = int(self.session.get_outputs()[0].shape[-1])
        self.inputs = [i.name for i in self.session.get_inputs()]  # the graph drops inputs its model ignores

    def tokens(self, text: str) -> int:
        """Return how many tokens a text is, special tokens included, before any cut."""
        return len(self.counter.encode(text).ids)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return one normalised float32 row per text (one padded batch)."""
        encoded = self.tokenizer.encode_batch(list(texts))
        width = max(len(e.ids) for e in encoded)
        feed = {name: np.zeros((len(encoded), width), dtype=np.int64) for name in self.inputs}
        for row, e in enumerate(encoded):
            values = dict(zip(INPUTS, (e.ids, e.attention_mask, e.type_ids)))
            for name in self.inputs:
                feed[name][row, :len(e.ids)] = values[name]
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32)
