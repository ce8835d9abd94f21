"""The PyTorch baseline: a Llama written with standard PyTorch layers, run eagerly.

It is the "plain PyTorch" a team would start from, so nothing in it is tuned: `nn.Embedding` and
`nn.Linear` layers, an RMSNorm and SwiGLU written out the way Hugging Face's `modeling_llama.py`
writes them, rotary embeddings with Llama 3 frequency scaling, attention as a matmul, a softmax
and a matmul (no `F.scaled_dot_product_attention`), eager mode: no `torch.compile`, no fused or
custom kernels, no CUDA graphs. Weights and activations are f16 on a GPU, f32 on the CPU.

Weights come from the suite's GGUF reader in Rust (one copy of the truth about the bytes on disk):
Rust dequantizes each tensor to f32 and hands over its raw little-endian bytes and its shape,
outermost dimension first (GGUF lists dimensions innermost first, so Rust reverses them; a matrix
arrives as `(out_features, in_features)`, which is `nn.Linear`'s layout). The query and key rows
stay as llama.cpp's converter wrote them: it permutes them so that each head's rotary pairs are
adjacent, `(x[2i], x[2i+1])`, and this model rotates adjacent pairs accordingly, as the suite's
reference engine does (`ops::rope` in src/llama.rs).

The KV cache is preallocated once per request batch, for the prompt and every new token, as
tensors of shape `(batch, kv_heads, capacity, head_dim)` per layer; each step writes its keys and
values into place instead of growing the cache with `torch.cat`.

The API the Rust adapter (src/engines/torch.rs) calls, in order::

    b = Baseline(config, "cuda:0")        # config: the suite's LlamaConfig as a dict
    for name in b.tensor_names():         # GGUF tensor names the model needs
        b.load_tensor(name, data, shape)  # data: f32 little-endian bytes (bytearray)
    b.finish_loading()
    first = b.prefill([[ids...], ...], max_new_tokens)   # -> the first new token of each prompt
    nxt = b.decode()                                     # -> the next token of each, repeated
    b.logits([ids...])                    # -> last-position logits of a fresh sequence (floats)
    b.memory()                            # -> (weights bytes, KV cache bytes, device peak or None)

Each call returns Python ints or floats, so each step ends with the device synchronised and its
tokens on the host, which is what a streaming PyTorch generate loop does.
"""

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


def repeat_kv(x, times):
    """(batch, kv_heads, seq, dim) -> (batch, kv_heads * times, seq, dim): query head h reads
    key/value head h // times (grouped-query attention)."""
    if times == 1:
        return x
    b, kv, s, d = x.shape
    return x[:, :, None].expand(b, kv, times, s, d).reshape(b, kv * times, s, d)


class KVCache:
    """Keys and values of one request batch, preallocated for `capacity` positions."""

    def __init__(self, n_layers, batch, kv_heads, capacity, head_dim, **factory):
        shape = (batch, kv_heads, capacity, head_dim)
        self.k = [torch.zeros(shape, **factory) for _ in range(n_layers)]
        self.v = [torch.zeros(shape, **factory) for _ in range(n_layers)]
        self.capacity = capacity
        # Positions filled so far.
        self.length = 0

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

    def forward(self, x, cos, sin, mask, cache, layer):
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q = rotate_pairs(q, cos, sin)
        k = rotate_pairs(k, cos, sin)
        start = cache.length
        end = start + s
        cache.k[layer][:, :, start:end] = k
        cache.v[layer][:, :, start:end] = v
        group = self.n_heads // self.n_kv_heads
        keys = repeat_kv(cache.k[layer][:, :, :end], group)
        values = repeat_kv(cache.v[layer][:, :, :end], group)
        scores = torch.matmul(q, keys.transpose(2, 3)) * self.scale  # (b, heads, s, end)
        scores = scores.float()
        if mask is not None:
            scores = scores + mask
        probs = torch.softmax(scores, dim=-1).to(v.dtype)
        out = torch.matmul(probs, values)  # (b, heads, s, head_dim)
        out = out.transpose(1, 2).reshape(b, s, self.n_heads * self.head_dim)
        return self.o_proj(out)


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
    def __init__(self, cfg, **factory):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg["hidden"], cfg["rms_eps"], **factory)
        self.self_attn = Attention(cfg, **factory)
        self.post_attention_layernorm = RMSNorm(cfg["hidden"], cfg["rms_eps"], **factory)
        self.mlp = Mlp(cfg, **factory)

    def forward(self, x, cos, sin, mask, cache, layer):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, layer)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    def __init__(self, cfg, **factory):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab"], cfg["hidden"], **factory)
        self.layers = nn.ModuleList(DecoderLayer(cfg, **factory) for _ in range(cfg["n_layers"]))
        self.norm = RMSNorm(cfg["hidden"], cfg["rms_eps"], **factory)
        self.lm_head = nn.Linear(cfg["hidden"], cfg["vocab"], bias=False, **factory)

    def forward(self, tokens, cos, sin, cache):
        """Run `tokens` (shape `(batch, seq)`) at positions `cache.length ..` and advance the
        cache; returns the f32 logits of the last position, shape `(batch, vocab)`."""
        s = tokens.shape[1]
        start = cache.length
        if start + s > cache.capacity:
            raise ValueError(f"the KV cache holds {cache.capacity} positions, {start + s} needed")
        cos = cos[start : start + s]
        sin = sin[start : start + s]
        # Causal mask for a prefill: query i (at start + i) sees keys 0 ..= start + i.
        mask = None
        if s > 1:
            mask = torch.full((s, start + s), float("-inf"), device=tokens.device)
            mask = torch.triu(mask, diagonal=start + 1)
        x = self.embed_tokens(tokens)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, mask, cache, i)
        cache.length = start + s
        x = self.norm(x[:, -1])
        return self.lm_head(x).float()


class Baseline:
    """What the Rust adapter holds: the model on one device, its KV cache, and the API above."""

    def __init__(self, config, device):
        self.cfg = dict(config)
        self.device = torch.device(device)
        if self.device.type == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError(f"{device} was asked for but torch.cuda.is_available() is False")
            torch.cuda.set_device(self.device)
            self.dtype = torch.float16
        else:
            self.dtype = torch.float32
        # Built on the meta device (no memory, no random init); the GGUF tensors replace every
        # parameter in finish_loading.
        self.model = Llama(self.cfg, device="meta", dtype=self.dtype).eval()
        self.cache = None
        self.next_tokens = None
        self.inv_freq = None
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
        self.inv_freq = inv_freq.to(self.device)
        self._rope_table(512)

    def _rope_table(self, positions):
        """cos and sin of every position below `positions`, grown on demand."""
        if self.cos is not None and self.cos.shape[0] >= positions:
            return
        pos = torch.arange(positions, dtype=torch.float32, device=self.device)
        angles = torch.outer(pos, self.inv_freq)
        self.cos = angles.cos().to(self.dtype)
        self.sin = angles.sin().to(self.dtype)

    # -- requests -------------------------------------------------------------------------------

    def _start(self, batch, capacity):
        self.reset()
        self._rope_table(capacity)
        c = self.cfg
        self.cache = KVCache(
            c["n_layers"], batch, c["n_kv_heads"], capacity, c["head_dim"], device=self.device, dtype=self.dtype
        )

    @torch.inference_mode()
    def prefill(self, ids_batch, max_new_tokens):
        """Start a request batch (equal-length prompts); returns each prompt's first new token.
        The cache gets room for the prompt and `max_new_tokens` new tokens."""
        s = len(ids_batch[0])
        if s == 0 or any(len(ids) != s for ids in ids_batch):
            raise ValueError("the PyTorch baseline batches non-empty prompts of equal length only")
        self._start(len(ids_batch), s + max_new_tokens)
        tokens = torch.tensor(ids_batch, dtype=torch.long, device=self.device)
        logits = self.model(tokens, self.cos, self.sin, self.cache)
        self.next_tokens = torch.argmax(logits, dim=-1)
        return self.next_tokens.tolist()

    @torch.inference_mode()
    def decode(self):
        """Feed the tokens returned last (still on the device) and return the next ones."""
        if self.next_tokens is None:
            raise RuntimeError("decode() before prefill()")
        logits = self.model(self.next_tokens[:, None], self.cos, self.sin, self.cache)
        self.next_tokens = torch.argmax(logits, dim=-1)
        return self.next_tokens.tolist()

    @torch.inference_mode()
    def logits(self, ids):
        """f32 logits at the last position of `ids`, run as a fresh sequence."""
        self._start(1, len(ids))
        tokens = torch.tensor([ids], dtype=torch.long, device=self.device)
        return self.model(tokens, self.cos, self.sin, self.cache)[0].tolist()

    def reset(self):
        """Drop the KV cache (its memory goes back to PyTorch's allocator)."""
        self.cache = None
        self.next_tokens = None

    def close(self):
        """Free the model and cache, and give PyTorch's cached device memory back to the driver."""
        self.reset()
        self.model = None
        self.cos = self.sin = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    # -- measurement ----------------------------------------------------------------------------

    def weights_bytes(self):
        seen = {}
        for p in self.model.parameters():
            seen[p.data_ptr()] = p.numel() * p.element_size()
        return sum(seen.values())

    def max_memory_allocated(self):
        """PyTorch's peak of device memory allocated, on CUDA; None on the CPU."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device)
        return None

    def memory(self):
        kv = self.cache.nbytes() if self.cache is not None else 0
        return (self.weights_bytes(), kv, self.max_memory_allocated())

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
        }
