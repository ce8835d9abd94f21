"""`torch-compile`: what a PyTorch team gets by optimizing without leaving PyTorch.

A Llama written with standard PyTorch layers (`nn.Embedding`, `nn.Linear`, an RMSNorm and SwiGLU
written out the way Hugging Face's `modeling_llama.py` writes them, rotary embeddings with Llama 3
frequency scaling), with the two changes PyTorch's own performance guides make for decoding:

* a static KV cache: per request shape, tensors of `(rows, kv_heads, capacity, head_dim)` per
  layer allocated once and marked as static addresses, each step writing its keys and values in
  place at a position held in a device tensor, attention over the whole capacity with the
  positions past the current one masked, so every decode step has the same shapes;
* the decode step under `torch.compile(mode="reduce-overhead", fullgraph=True)`: Inductor's fused
  kernels, replayed as CUDA graphs (one graph launch per token instead of hundreds of kernel
  launches). The batch is padded to 1, 2, 4, ..., 64 rows and the capacity rounded up to 256
  positions. The step is compiled with PyTorch's automatic dynamic shapes (`dynamic=None`, the
  default): a first static graph, then one graph whose capacity is symbolic (one row: dynamo
  specializes size 1), one whose rows and capacity are (two rows and more) and one for capacities
  above 4096, so every later shape reuses a graph and only records its CUDA graph.
  `finish_loading` compiles those four at
  start-up (the first run measured ~33 s per compiled shape with `dynamic=False`, one compile per
  shape: eleven in the quick profile). Compilation is start-up, never inside a figure. The
  prefill runs eagerly.

transformers' own static cache with `torch.compile` is the documented alternative; on the GPU
machine's versions (transformers 5.17, torch 2.11) it failed in `generate()` with "accessing tensor
output of CUDAGraphs that has been overwritten", so this variant uses this model (see
src/engines/torch.rs).

Weights come from the suite's GGUF reader in Rust: each tensor dequantized to f32, handed over as
raw little-endian bytes and a shape, outermost dimension first (a matrix arrives as
`(out_features, in_features)`, `nn.Linear`'s layout). The query and key rows stay as llama.cpp's
converter wrote them (each head's rotary pairs adjacent, `(x[2i], x[2i+1])`), and this model
rotates adjacent pairs, as the suite's reference engine does (`ops::rope` in src/model/llama.rs).
f16 on a GPU; on the CPU (the suite's tests only) f32 and the same step uncompiled.

The API the Rust adapter (src/engines/torch.rs) calls::

    b = Baseline(config, "cuda:0", True)  # config: the suite's LlamaConfig as a dict; compile
    for name in b.tensor_names():         # GGUF tensor names the model needs
        b.load_tensor(name, data, shape)  # data: f32 little-endian bytes (bytearray)
    b.finish_loading()
    b.generate([[ids...], ...], max_new_tokens, streamer)   # -> new token ids per prompt
    b.logits([ids...])                    # -> last-position logits of a fresh sequence (floats)
    b.memory()                            # -> (weights bytes, KV cache bytes, device peak or None)

`generate` streams with transformers' streamer protocol: `streamer.put` gets the prompt, then each
step's new tokens on the host (the step's one synchronisation), then `streamer.end()`.
"""

import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

# GGUF tensor names (llama.cpp's) -> parameter names of this model (Hugging Face's).
_GLOBAL_NAMES = {
    "token_embd.weight": "embed_tokens.weight",
    "output_norm.weight": "norm.weight",
    "output.weight": "lm_head.weight",
}
_LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def parameter_name(gguf_name):
    """The parameter of this model that a GGUF tensor fills."""
    if gguf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[gguf_name]
    blk, index, what, weight = gguf_name.split(".")
    if blk != "blk" or weight != "weight" or what not in _LAYER_NAMES:
        raise KeyError(f"no parameter of the Llama baseline takes GGUF tensor {gguf_name!r}")
    return f"layers.{int(index)}.{_LAYER_NAMES[what]}.weight"


class RMSNorm(nn.Module):
    """x / rms(x) * weight, with the statistics in f32 whatever the activation dtype."""

    def __init__(self, dim, eps, **factory):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim, **factory), requires_grad=False)
        self.eps = eps

    def forward(self, x):
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rotate_pairs(x, cos, sin):
    """Rotate adjacent pairs `(x[..., 2i], x[..., 2i+1])` by the angles whose cosines and sines
    are `cos`, `sin` (shape `(seq, head_dim / 2)`, broadcast over batch and heads)."""
    a = x[..., 0::2]
    b = x[..., 1::2]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)


# Decode steps are compiled per shape: rows (padded) x cache capacity.
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
CAPACITY_ROUNDING = 256
# Caches (and their compiled graphs) kept at once; the oldest is dropped beyond this.
MAX_CACHES = 12


def padded_rows(b):
    """The row bucket a batch of `b` runs in (batches above the largest run unpadded)."""
    return next((r for r in ROW_BUCKETS if r >= b), b)


class StaticCache:
    """Keys and values of one request shape, `(rows, kv_heads, capacity, head_dim)` per layer."""

    def __init__(self, n_layers, rows, kv_heads, capacity, head_dim, static, **factory):
        shape = (rows, kv_heads, capacity, head_dim)
        self.k = [torch.zeros(shape, **factory) for _ in range(n_layers)]
        self.v = [torch.zeros(shape, **factory) for _ in range(n_layers)]
        if static:
            # Fixed addresses: CUDA graphs read and write them in place across replays.
            for t in self.k + self.v:
                torch._dynamo.mark_static_address(t)
        self.rows = rows
        self.capacity = capacity

    def nbytes(self):
        return sum(t.numel() * t.element_size() for t in self.k + self.v)


class Attention(nn.Module):
    def __init__(self, cfg, **factory):
        super().__init__()
        self.n_heads = cfg["n_heads"]
        self.n_kv_heads = cfg["n_kv_heads"]
        self.head_dim = cfg["head_dim"]
        hidden = cfg["hidden"]
        self.q_proj = nn.Linear(hidden, self.n_heads * self.head_dim, bias=False, **factory)
        self.k_proj = nn.Linear(hidden, self.n_kv_heads * self.head_dim, bias=False, **factory)
        self.v_proj = nn.Linear(hidden, self.n_kv_heads * self.head_dim, bias=False, **factory)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, hidden, bias=False, **factory)
        self.scale = self.head_dim ** -0.5

    def project(self, x, cos, sin):
        """q `(b, heads, s, hd)`, k and v `(b, kv_heads, s, hd)`, rotated."""
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.n_kv_heads, self.head_dim).transpose(1, 2)
        return rotate_pairs(q, cos, sin), rotate_pairs(k, cos, sin), v

    def attend(self, q, keys, values, mask):
        """Softmax attention of `q` `(b, heads, s, hd)` over `keys`/`values` `(b, kv_heads, t, hd)`
        with an additive f32 `mask` broadcastable to `(b, kv_heads, group, s, t)`. The query heads
        that share a KV head are rows of one matrix, so the cache is read once, never repeated."""
        b, h, s, d = q.shape
        group = h // self.n_kv_heads
        qg = q.reshape(b, self.n_kv_heads, group * s, d)
        scores = torch.matmul(qg, keys.transpose(2, 3)).float() * self.scale  # (b, kv, group*s, t)
        t = keys.shape[2]
        scores = (scores.view(b, self.n_kv_heads, group, s, t) + mask).view(b, self.n_kv_heads, group * s, t)
        probs = torch.softmax(scores, dim=-1).to(values.dtype)
        out = torch.matmul(probs, values)  # (b, kv, group*s, hd)
        return self.o_proj(out.view(b, h, s, d).transpose(1, 2).reshape(b, s, h * d))


class Mlp(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg, **factory):
        super().__init__()
        self.gate_proj = nn.Linear(cfg["hidden"], cfg["ffn"], bias=False, **factory)
        self.up_proj = nn.Linear(cfg["hidden"], cfg["ffn"], bias=False, **factory)
        self.down_proj = nn.Linear(cfg["ffn"], cfg["hidden"], bias=False, **factory)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    """One block's modules; `Llama.prefill` and `Llama.decode` run them around the cache."""

    def __init__(self, cfg, **factory):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg["hidden"], cfg["rms_eps"], **factory)
        self.self_attn = Attention(cfg, **factory)
        self.post_attention_layernorm = RMSNorm(cfg["hidden"], cfg["rms_eps"], **factory)
        self.mlp = Mlp(cfg, **factory)


class Llama(nn.Module):
    def __init__(self, cfg, **factory):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab"], cfg["hidden"], **factory)
        self.layers = nn.ModuleList(DecoderLayer(cfg, **factory) for _ in range(cfg["n_layers"]))
        self.norm = RMSNorm(cfg["hidden"], cfg["rms_eps"], **factory)
        self.lm_head = nn.Linear(cfg["hidden"], cfg["vocab"], bias=False, **factory)

    def prefill(self, tokens, cos, sin, cache):
        """Run prompts `tokens` `(b, s)` at positions `0..s` into rows `:b` of `cache`; returns the
        f32 logits of the last position, `(b, vocab)`."""
        b, s = tokens.shape
        mask = torch.full((s, s), float("-inf"), device=tokens.device).triu(1)
        x = self.embed_tokens(tokens)
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            q, k, v = attn.project(layer.input_layernorm(x), cos[:s], sin[:s])
            cache.k[i][:b, :, :s] = k
            cache.v[i][:b, :, :s] = v
            x = x + attn.attend(q, k, v, mask)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return self.lm_head(self.norm(x[:, -1])).float()

    def decode(self, tokens, pos, cos, sin, cache_k, cache_v):
        """One decode step of every row: `tokens` `(rows,)` at position `pos` (a 0-d device
        tensor), written into the caches in place; returns the next token of every row. Every
        shape follows the cache, so the compiled step's graphs cover every cache (rows x capacity)."""
        capacity = cache_k[0].shape[2]
        at = pos.view(1)
        c = cos.index_select(0, at)
        s_ = sin.index_select(0, at)
        # Keys past `pos` are masked: (1, 1, 1, 1, capacity).
        future = torch.arange(capacity, device=tokens.device) > pos
        mask = torch.zeros(capacity, device=tokens.device).masked_fill(future, float("-inf")).view(1, 1, 1, 1, capacity)
        x = self.embed_tokens(tokens)[:, None]
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            q, k, v = attn.project(layer.input_layernorm(x), c, s_)
            cache_k[i].index_copy_(2, at, k)
            cache_v[i].index_copy_(2, at, v)
            x = x + attn.attend(q, cache_k[i], cache_v[i], mask)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        logits = self.lm_head(self.norm(x[:, 0])).float()
        return torch.argmax(logits, dim=-1)


class Baseline:
    """What the Rust adapter holds: the model on one device, its caches, and the API above."""

    def __init__(self, config, device, compile=True):
        self.cfg = dict(config)
        self.device = torch.device(device)
        if self.device.type == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError(f"{device} was asked for but torch.cuda.is_available() is False")
            torch.cuda.set_device(self.device)
            self.dtype = torch.float16
        else:
            self.dtype = torch.float32
        self.compiled = bool(compile) and self.device.type == "cuda"
        # Built on the meta device (no memory, no random init); the GGUF tensors replace every
        # parameter in finish_loading.
        self.model = Llama(self.cfg, device="meta", dtype=self.dtype).eval()
        self.step = None
        self.caches = {}
        self.cos = None
        self.sin = None
        self.pending = {}

    # -- loading --------------------------------------------------------------------------------

    def tensor_names(self):
        """GGUF tensors to hand over, in order."""
        names = ["token_embd.weight", "output_norm.weight"]
        if not self.cfg["tied_embeddings"]:
            names.append("output.weight")
        for i in range(self.cfg["n_layers"]):
            names += [f"blk.{i}.{what}.weight" for what in _LAYER_NAMES]
        return names

    def load_tensor(self, name, data, shape):
        """Take one tensor: `data` holds f32 little-endian values, `shape` is outermost first."""
        t = torch.frombuffer(data, dtype=torch.float32).view(*shape)
        # On the CPU in f32 this is the buffer itself (no copy); otherwise one converted copy.
        self.pending[parameter_name(name)] = t.to(device=self.device, dtype=self.dtype)

    def finish_loading(self):
        state = self.pending
        self.pending = {}
        if self.cfg["tied_embeddings"]:
            state["lm_head.weight"] = state["embed_tokens.weight"]
        # strict: every parameter is filled and every tensor is used, with the expected shape.
        self.model.load_state_dict(state, strict=True, assign=True)
        if self.cfg["tied_embeddings"]:
            # One tensor for both, as Hugging Face's tie_weights does.
            self.model.lm_head.weight = self.model.embed_tokens.weight
        for p in self.model.parameters():
            p.requires_grad_(False)
        head_dim = self.cfg["head_dim"]
        exponents = torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim
        inv_freq = 1.0 / (self.cfg["rope_theta"] ** exponents)
        factors = self.cfg.get("rope_freq_factors")
        if factors is not None:
            # Llama 3 frequency scaling, as llama.cpp stores it (rope_freqs.weight): one divisor
            # per frequency, 1 for the fast ones, the full factor for the slow ones, smooth between.
            inv_freq = inv_freq / torch.tensor(factors, dtype=torch.float32)
        # Every position the suite asks for (its longest case is 8K + new tokens), made once at a
        # fixed address so the compiled step never sees a new table.
        positions = max(16384, CAPACITY_ROUNDING)
        angles = torch.outer(torch.arange(positions, dtype=torch.float32), inv_freq).to(self.device)
        self.cos = angles.cos().to(self.dtype)
        self.sin = angles.sin().to(self.dtype)
        if self.compiled:
            torch._dynamo.mark_static_address(self.cos)
            torch._dynamo.mark_static_address(self.sin)
            # A compiled graph per cache shape; a run has a handful (rows x capacity buckets).
            for knob in ("recompile_limit", "cache_size_limit"):
                if hasattr(torch._dynamo.config, knob):
                    setattr(torch._dynamo.config, knob, 64)
            self.step = torch.compile(self.model.decode, mode="reduce-overhead", fullgraph=True, dynamic=None)
            # LLM_BENCH_TORCH_PRECOMPILE=0 (`llm-bench check`): graphs compile on first use.
            if os.environ.get("LLM_BENCH_TORCH_PRECOMPILE", "1") != "0":
                self._compile_graphs()
        else:
            self.step = self.model.decode

    # Shapes whose first steps make the graphs (see the module's doc): static, symbolic capacity,
    # symbolic rows and capacity, and one row with a capacity above 4096 (dynamo guards the
    # symbolic capacity at <= 4096; tried on torch 2.15's CPU Inductor: these four cover every
    # rows x capacity the suite asks, 1..64 x 256..8704).
    COMPILE_SHAPES = ((1, CAPACITY_ROUNDING), (1, 2 * CAPACITY_ROUNDING), (2, CAPACITY_ROUNDING), (1, 17 * CAPACITY_ROUNDING))

    @torch.inference_mode()
    def _compile_graphs(self):
        """Compile the decode step's graphs now (start-up), each with the steps CUDA graph trees
        take to warm up and record, so no request of a run waits for Inductor."""
        for rows, capacity in self.COMPILE_SHAPES:
            cache = self._cache(rows, capacity)
            tokens = torch.zeros(rows, dtype=torch.long, device=self.device)
            pos = torch.tensor(0, dtype=torch.long, device=self.device)
            for _ in range(3):
                torch.compiler.cudagraph_mark_step_begin()
                tokens = self.step(tokens, pos, self.cos, self.sin, cache.k, cache.v).clone()
                pos += 1
        torch.cuda.synchronize(self.device)

    # -- requests -------------------------------------------------------------------------------

    def _cache(self, rows, capacity):
        key = (rows, capacity)
        if key not in self.caches:
            if capacity > self.cos.shape[0]:
                raise ValueError(f"the compiled PyTorch model holds {self.cos.shape[0]} positions, {capacity} asked for")
            while len(self.caches) >= MAX_CACHES:
                self.caches.pop(next(iter(self.caches)))
            c = self.cfg
            self.caches[key] = StaticCache(
                c["n_layers"], rows, c["n_kv_heads"], capacity, c["head_dim"], self.compiled,
                device=self.device, dtype=self.dtype,
            )
        return self.caches[key]

    @torch.inference_mode()
    def generate(self, ids_batch, max_new_tokens, streamer):
        """Greedy decoding of exactly `max_new_tokens` per prompt (equal lengths), streamed."""
        b, s = len(ids_batch), len(ids_batch[0])
        if s == 0 or any(len(ids) != s for ids in ids_batch):
            raise ValueError("the compiled PyTorch model batches non-empty prompts of equal length only")
        prompt = torch.tensor(ids_batch, dtype=torch.long)
        streamer.put(prompt)
        rows = padded_rows(b) if self.compiled else b
        capacity = -(-(s + max_new_tokens) // CAPACITY_ROUNDING) * CAPACITY_ROUNDING
        cache = self._cache(rows, capacity)
        logits = self.model.prefill(prompt.to(self.device), self.cos, self.sin, cache)
        tokens = torch.zeros(rows, dtype=torch.long, device=self.device)
        tokens[:b] = torch.argmax(logits, dim=-1)
        out = [tokens[:b].cpu()]
        streamer.put(out[-1])
        pos = torch.tensor(s, dtype=torch.long, device=self.device)
        for _ in range(max_new_tokens - 1):
            if self.compiled:
                torch.compiler.cudagraph_mark_step_begin()
            # The graph's output buffer is reused by its next replay: keep a copy.
            tokens = self.step(tokens, pos, self.cos, self.sin, cache.k, cache.v).clone()
            pos += 1
            out.append(tokens[:b].cpu())
            streamer.put(out[-1])
        streamer.end()
        return torch.stack(out, dim=1).tolist()

    @torch.inference_mode()
    def logits(self, ids):
        """f32 logits at the last position of `ids`, run as a fresh sequence."""
        capacity = -(-len(ids) // CAPACITY_ROUNDING) * CAPACITY_ROUNDING
        cache = self._cache(1, capacity)
        tokens = torch.tensor([ids], dtype=torch.long, device=self.device)
        return self.model.prefill(tokens, self.cos, self.sin, cache)[0].tolist()

    def close(self):
        """Free the model and caches, and give PyTorch's cached device memory back to the driver."""
        self.caches = {}
        self.model = None
        self.step = None
        self.cos = self.sin = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    # -- measurement ----------------------------------------------------------------------------

    def weights_bytes(self):
        seen = {}
        for p in self.model.parameters():
            seen[p.data_ptr()] = p.numel() * p.element_size()
        return sum(seen.values())

    def memory(self):
        kv = sum(c.nbytes() for c in self.caches.values())
        peak = torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else None
        return (self.weights_bytes(), kv, peak)

    def synchronize(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def describe(self):
        """What the results print about this engine."""
        return {
            "torch": torch.__version__,
            "torch_cuda": torch.version.cuda,
            "python": sys.version.split()[0],
            "dtype": str(self.dtype).removeprefix("torch."),
            "threads": torch.get_num_threads(),
            "compile": "compiled at start-up (Inductor, CUDA graphs; automatic dynamic shapes: 4 graphs for every rows x capacity)"
            if self.compiled
            else "uncompiled (CPU: the same static-cache step, eager)",
        }
