"""The PyTorch baseline as teams deploy it: Hugging Face transformers' `generate()`.

The model is loaded from the same GGUF file every other engine reads, with transformers' own GGUF
loading (`from_pretrained(dir, gguf_file=name)`, which dequantizes the tensors with the `gguf`
package), in bf16 on a GPU (the dtype transformers' Llama 3.2 documentation uses) and f32 on the
CPU. Attention is transformers' default for the model (`config._attn_implementation`, SDPA in
transformers 5), the cache its default dynamic cache, decoding `generate()`'s greedy search: what
`model.generate(input_ids, max_new_tokens=n)` does out of the box.

Two settings a benchmark needs, and nothing else:

* end-of-sequence never stops a request: `generate()` is given no end-of-sequence token, so it
  decodes exactly `max_new_tokens` tokens, greedily, past the model's end-of-turn token as every
  engine of the suite does (no logits processor is added, unlike `min_new_tokens`);
* each new token is stamped as it streams: the `streamer` is the caller's object with
  transformers' streamer protocol (`put`, `end`). transformers hands `put` the prompt first, then
  each step's tokens already copied to the host (`tokens.cpu()` in its stopping check, the same
  synchronisation its own stopping criteria make every step), so stamping adds no sync.

Llama 3's RoPE frequency scaling: transformers' GGUF loader reads no scaling from the file (the
GGUF stores it as the `rope_freqs` tensor), so when the suite's configuration has frequency
factors the matching `llama3` rope parameters are set on the config before the weights load.

The API the Rust adapter (src/engines/torch.rs) calls::

    b = Baseline("/models/x.gguf", "cuda:0", rope)   # rope: None or llama3 scaling parameters
    b.generate([[ids...], ...], max_new_tokens, streamer)   # -> new token ids per prompt
    b.logits([ids...])                    # -> last-position logits of a fresh sequence (floats)
    b.memory()                            # -> (weights bytes, KV cache bytes, device peak or None)
"""

import os
import sys

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

# The suite prints its own progress; transformers' progress bars and advice would interleave.
transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()


def saved_copy(gguf_path, dtype, rope):
    """Where this load's transformers copy is kept when `LLM_BENCH_TORCH_WEIGHTS` names a folder:
    transformers' GGUF loader dequantizes every tensor with numpy (44 s of the 1B model's 45 s load
    on an H200 host, target-reports/h200-2026-12-06-d), and a lease loads the baseline three times
    (the check, its passes). The copy is what that load made, written as a transformers checkpoint
    (`save_copy`), so the weights are the same bits; it is kept per model file (size and modification
    time), dtype, RoPE scaling and transformers version. Start-up only."""
    root = os.environ.get("LLM_BENCH_TORCH_WEIGHTS")
    if not root:
        return None
    st = os.stat(gguf_path)
    rope_key = "none" if rope is None else "-".join(f"{k}={rope[k]}" for k in sorted(rope))
    key = f"{os.path.basename(gguf_path)}-{st.st_size}-{int(st.st_mtime)}-{str(dtype).removeprefix('torch.')}-{rope_key}-transformers{transformers.__version__}"
    os.makedirs(root, exist_ok=True)
    return os.path.join(root, key.replace("/", "_"))


def save_copy(model, saved):
    """The loaded model as a transformers checkpoint: its config and its tensors (safetensors, tied
    ones once). `save_pretrained` itself refuses a model loaded from GGUF ("quantized with
    QuantizationMethod.GGUF and is not serializable"), although its tensors are plain ones once
    loaded; the copy leaves out that marker, so `from_pretrained(copy)` loads it as any checkpoint.
    Written whole, then renamed: a process loading meanwhile finds the copy or none."""
    import copy

    from safetensors.torch import save_model

    partial = f"{saved}.part-{os.getpid()}"
    os.makedirs(partial, exist_ok=True)
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(partial)
    save_model(model, os.path.join(partial, "model.safetensors"), metadata={"format": "pt"})
    os.replace(partial, saved)


class Baseline:
    """What the Rust adapter holds: the transformers model on one device."""

    def __init__(self, gguf_path, device, rope=None):
        self.device = torch.device(device)
        if self.device.type == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError(f"{device} was asked for but torch.cuda.is_available() is False")
            torch.cuda.set_device(self.device)
            self.dtype = torch.bfloat16
        else:
            self.dtype = torch.float32
        folder, name = os.path.split(os.path.abspath(gguf_path))
        saved = saved_copy(gguf_path, self.dtype, rope)
        if saved is not None and os.path.isfile(os.path.join(saved, "config.json")):
            self.model = AutoModelForCausalLM.from_pretrained(saved, dtype=self.dtype)
            self.weights_from = f"transformers' GGUF load of {name}, as an earlier process saved it ({saved})"
        else:
            config = AutoConfig.from_pretrained(folder, gguf_file=name)
            if rope is not None:
                config.rope_parameters = dict(rope)
            self.model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, config=config, dtype=self.dtype)
            self.weights_from = f"{name} through transformers' GGUF loader"
            if saved is not None:
                save_copy(self.model, saved)
        self.model.to(self.device).eval()
        self.last_kv_tokens = 0

    @torch.inference_mode()
    def generate(self, ids_batch, max_new_tokens, streamer):
        """Greedy `generate()` of exactly `max_new_tokens` per prompt (equal lengths), streamed."""
        s = len(ids_batch[0])
        if s == 0 or any(len(ids) != s for ids in ids_batch):
            raise ValueError("the transformers baseline batches non-empty prompts of equal length only")
        ids = torch.tensor(ids_batch, dtype=torch.long, device=self.device)
        out = self.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
            streamer=streamer,
        )
        self.last_kv_tokens = len(ids_batch) * (s + max_new_tokens)
        return out[:, s:].tolist()

    @torch.inference_mode()
    def logits(self, ids):
        """f32 logits at the last position of `ids`, run as a fresh sequence."""
        tokens = torch.tensor([ids], dtype=torch.long, device=self.device)
        return self.model(input_ids=tokens).logits[0, -1].float().tolist()

    def close(self):
        self.model = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def memory(self):
        """Weights as stored, the last request batch's KV cache (its dynamic cache is freed with
        the request: keys and values of every position, in the model's dtype), PyTorch's peak."""
        seen = {}
        for p in self.model.parameters():
            seen[p.data_ptr()] = p.numel() * p.element_size()
        c = self.model.config
        head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        per_token = 2 * c.num_hidden_layers * c.num_key_value_heads * head_dim * self.dtype.itemsize
        peak = torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else None
        return (sum(seen.values()), self.last_kv_tokens * per_token, peak)

    def synchronize(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def describe(self):
        """What the results print about this engine."""
        return {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": sys.version.split()[0],
            "dtype": str(self.dtype).removeprefix("torch."),
            "attention": str(self.model.config._attn_implementation),
            "threads": torch.get_num_threads(),
            "weights_from": self.weights_from,
        }
