//! The CPU side of the kernel analysis (issue 10): the Llama-3.2-1B shapes, a deterministic random
//! source, Q8_0 quantisation, f64 references for every kernel in `kernels/llama_ops.cu`, and the
//! error measure the checks use.
//!
//! Compiled without the `cuda` feature so that its tests run in CI on a machine without a GPU;
//! `crate::kernels::cuda` (feature `cuda`) runs the kernels and compares them with these references.
//!
//! # How errors are measured
//!
//! Every reference returns, per output element, its value in f64 *and* the magnitude the error is
//! judged against ([`Reference::scale`]):
//!
//! * for sums of products (matvec, matmul, attention, the sum of squares behind RMSNorm) the sum of
//!   the absolute values of the terms, `sum_j |w_ij x_j|`; rounding in an f32 accumulation of those
//!   terms is bounded by (number of sequential additions) x 2^-24 x that sum, whatever the signs, while
//!   the result itself can be near zero through cancellation, so dividing by `|y_i|` would flag
//!   correct kernels;
//! * for RoPE the norm of the rotated pair (a rotation preserves it; one output can be near zero);
//! * for element-wise ops (SwiGLU) the magnitude of the reference value itself.
//!
//! The error of a run is `max_i |got_i - ref_i| / scale_i`, and a NaN anywhere (the outputs are
//! poisoned with NaN before each run, so an element a kernel never wrote stays NaN) fails the check.
//!
//! For the Q8_0 kernels the truth is the product with the *dequantized* weights (`d * q`, exact in
//! f32: an f16 scale times an int8 needs 19 significant bits), so quantisation error does not
//! count, only the kernel's own arithmetic.

use serde::Serialize;

/// Elements per Q8_0 block.
pub const Q8_0_BLOCK: usize = 32;
/// Bytes per Q8_0 block: an f16 scale `d`, then 32 int8 quants `q`; weight = `d * q`.
pub const Q8_0_BLOCK_BYTES: usize = 34;

/// Bound on `max |got - ref| / scale` for every check.
///
/// The kernels accumulate in f32 (unit roundoff u = 2^-24, about 6e-8). A chain of L additions
/// errs by at most about L u of the sum of the absolute terms, so the deepest chain here, the
/// prefill matmul's one FMA per column (L = 8192), could in the worst case reach 5e-4 of `scale`;
/// but that needs every rounding to go the same way with partial sums as large as `scale`. With
/// random data the roundings are independent and the partial sums grow like a random walk, so
/// the expected error is about u of `scale`: measured on an H200, 2e-7 for the matmul, 1e-8 for
/// the matvec, 1e-7 for attention and 2e-7 for the element-wise kernels. 1e-5 is 50 times the
/// largest of those, and still catches structural mistakes: one wrong or missing term out of K is
/// on average 1/K of `scale` (1.2e-4 at K = 8192), a wrong block scale or a dropped block 32/K.
pub const ERROR_BOUND: f64 = 1e-5;

/// Llama-3.2-1B: the shapes the kernels are written and measured for.
pub mod llama_1b {
    pub const HIDDEN: usize = 2048;
    pub const INTERMEDIATE: usize = 8192;
    pub const HEADS: usize = 32;
    pub const KV_HEADS: usize = 8;
    pub const HEAD_DIM: usize = 64;
    pub const VOCAB: usize = 128256;
    pub const ROPE_THETA: f32 = 500000.0;
    pub const RMS_EPS: f32 = 1e-5;

    /// Decode matrix-vector products: (name, rows, cols), rows = outputs, as GGUF stores them.
    pub const MATVEC: [(&str, usize, usize); 8] = [
        ("q", HEADS * HEAD_DIM, HIDDEN),
        ("k", KV_HEADS * HEAD_DIM, HIDDEN),
        ("v", KV_HEADS * HEAD_DIM, HIDDEN),
        ("o", HIDDEN, HEADS * HEAD_DIM),
        ("gate", INTERMEDIATE, HIDDEN),
        ("up", INTERMEDIATE, HIDDEN),
        ("down", HIDDEN, INTERMEDIATE),
        ("lm_head", VOCAB, HIDDEN),
    ];

    /// The same decode products fused as engines built for speed lay them out at load time: q, k
    /// and v as one matrix, gate and up as one (4 launches per layer instead of 7, the same bytes).
    pub const FUSED_MATVEC: [(&str, usize, usize); 2] = [("qkv", (HEADS + 2 * KV_HEADS) * HEAD_DIM, HIDDEN), ("gate_up", 2 * INTERMEDIATE, HIDDEN)];

    /// One layer's decode products in launch order, unfused and fused: (name, rows, cols).
    pub fn layer_matvecs(fused: bool) -> Vec<(&'static str, usize, usize)> {
        if fused {
            vec![FUSED_MATVEC[0], MATVEC[3], FUSED_MATVEC[1], MATVEC[6]]
        } else {
            MATVEC[..7].to_vec()
        }
    }

    /// Prefill / batch matrix-matrix products: the q, gate and down shapes at these token counts.
    pub const MATMUL: [(&str, usize, usize); 3] = [("q", HEADS * HEAD_DIM, HIDDEN), ("gate", INTERMEDIATE, HIDDEN), ("down", HIDDEN, INTERMEDIATE)];
    pub const MATMUL_TOKENS: [usize; 2] = [128, 512];

    /// Cached positions for the decode-attention cases.
    pub const ATTENTION_SEQ: [usize; 3] = [1024, 4096, 8192];

    /// Bytes of Q8_0 weights one decode step reads through matrix-vector products: 16 layers of
    /// q, k, v, o, gate, up, down, then the classifier (tied to the embedding in Llama 3.2).
    pub fn decode_step_weight_bytes() -> f64 {
        let layer: usize = MATVEC[..7].iter().map(|&(_, r, c)| super::q8_0_bytes(r, c)).sum();
        (16 * layer + super::q8_0_bytes(VOCAB, HIDDEN)) as f64
    }
}

/// Bytes of a `rows x cols` Q8_0 matrix.
pub fn q8_0_bytes(rows: usize, cols: usize) -> usize {
    rows * (cols / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES
}

/// xorshift64*: small, fast, deterministic, no dependency. Not for anything but test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // A zero state would stay zero; mix the seed so nearby seeds give unrelated streams.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-1, 1), 24 random bits.
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// `n` values uniform in [-scale, scale).
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform() * scale).collect()
    }
}

/// Quantize a row-major `rows x cols` matrix to GGUF Q8_0 (what llama.cpp's reference quantizer
/// does: `d = max|x| / 127` stored as f16, `q = round(x / d)`), rows back to back.
pub fn quantize_q8_0(values: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    assert_eq!(cols % Q8_0_BLOCK, 0, "Q8_0 needs cols to be a multiple of 32, got {cols}");
    assert_eq!(values.len(), rows * cols, "a {rows}x{cols} matrix needs {} values", rows * cols);
    let mut out = vec![0u8; q8_0_bytes(rows, cols)];
    for (src, dst) in values.chunks_exact(Q8_0_BLOCK).zip(out.chunks_exact_mut(Q8_0_BLOCK_BYTES)) {
        quantize_block(src, dst);
    }
    out
}

/// One block: 32 values into 34 bytes. The quants are rounded against the f16-rounded scale that
/// is stored, so `|x - d q| <= d / 2` holds for the scale the kernels read.
pub fn quantize_block(src: &[f32], dst: &mut [u8]) {
    let amax = src.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = half::f16::from_f32(amax / 127.0);
    let df = d.to_f32();
    dst[..2].copy_from_slice(&d.to_bits().to_le_bytes());
    for (q, &v) in dst[2..].iter_mut().zip(src) {
        let qi = if df == 0.0 { 0 } else { (v / df).round().clamp(-127.0, 127.0) as i32 };
        *q = qi as i8 as u8;
    }
}

/// The values a Q8_0 matrix stands for, `d * q`, row-major `rows x cols`.
pub fn dequantize_q8_0(bytes: &[u8], rows: usize, cols: usize) -> Vec<f32> {
    assert_eq!(bytes.len(), q8_0_bytes(rows, cols), "not a {rows}x{cols} Q8_0 matrix");
    let mut out = Vec::with_capacity(rows * cols);
    for block in bytes.chunks_exact(Q8_0_BLOCK_BYTES) {
        let d = half::f16::from_bits(u16::from_le_bytes([block[0], block[1]])).to_f32();
        out.extend(block[2..].iter().map(|&q| d * (q as i8) as f32));
    }
    out
}

/// Reference values and the magnitude each one's error is measured against (module docs).
#[derive(Debug, Clone, Default)]
pub struct Reference {
    pub values: Vec<f64>,
    pub scale: Vec<f64>,
}

impl Reference {
    fn with_capacity(n: usize) -> Self {
        Self { values: Vec::with_capacity(n), scale: Vec::with_capacity(n) }
    }
    fn push(&mut self, value: f64, scale: f64) {
        self.values.push(value);
        self.scale.push(scale);
    }
}

/// `max_i |got_i - ref_i| / scale_i`; NaN when any output is NaN (an element never written keeps
/// its NaN poison) and infinite when the lengths differ.
pub fn max_scaled_error(got: &[f32], r: &Reference) -> f64 {
    if got.len() != r.values.len() {
        return f64::INFINITY;
    }
    let mut worst = 0f64;
    for ((&g, &v), &s) in got.iter().zip(&r.values).zip(&r.scale) {
        let e = (g as f64 - v).abs() / s.max(f64::MIN_POSITIVE);
        if e.is_nan() {
            return f64::NAN;
        }
        worst = worst.max(e);
    }
    worst
}

/// A check passes only with a finite error within the bound (`!(e <= b)` catches NaN).
pub fn within(error: f64, bound: f64) -> bool {
    error <= bound
}

/// y[rows] = W[rows, cols] . x, W given dequantized, row-major.
pub fn matvec_ref(w: &[f32], x: &[f32], rows: usize, cols: usize) -> Reference {
    assert_eq!(w.len(), rows * cols);
    assert_eq!(x.len(), cols);
    let mut r = Reference::with_capacity(rows);
    for row in w.chunks_exact(cols) {
        let (mut s, mut a) = (0f64, 0f64);
        for (&wv, &xv) in row.iter().zip(x) {
            let t = wv as f64 * xv as f64;
            s += t;
            a += t.abs();
        }
        r.push(s, a);
    }
    r
}

/// Y[n, rows] = X[n, cols] . W[rows, cols]^T, W dequantized, all row-major.
pub fn matmul_ref(w: &[f32], x: &[f32], rows: usize, cols: usize, n: usize) -> Reference {
    assert_eq!(w.len(), rows * cols);
    assert_eq!(x.len(), n * cols);
    let mut r = Reference::with_capacity(n * rows);
    for xt in x.chunks_exact(cols) {
        let part = matvec_ref(w, xt, rows, cols);
        r.values.extend(part.values);
        r.scale.extend(part.scale);
    }
    r
}

/// y[i, :] = x[i, :] / sqrt(mean(x[i, :]^2) + eps) * weight. The scale is |y|: the sum of squares
/// has no cancellation, so each output is accurate relative to itself.
pub fn rms_norm_ref(x: &[f32], weight: &[f32], n: usize, dim: usize, eps: f32) -> Reference {
    assert_eq!(x.len(), n * dim);
    assert_eq!(weight.len(), dim);
    let mut r = Reference::with_capacity(n * dim);
    for row in x.chunks_exact(dim) {
        let ss: f64 = row.iter().map(|&v| v as f64 * v as f64).sum();
        let inv = 1.0 / (ss / dim as f64 + eps as f64).sqrt();
        for (&v, &g) in row.iter().zip(weight) {
            let y = v as f64 * inv * g as f64;
            r.push(y, y.abs());
        }
    }
    r
}

/// RoPE on adjacent pairs (2i, 2i+1) of every head (the GGUF Llama layout), angle
/// `pos * theta^(-2i / head_dim)`. Output: q's values then k's, each pair scaled by its norm.
#[allow(clippy::too_many_arguments)]
pub fn rope_ref(
    q: &[f32],
    k: &[f32],
    positions: &[i32],
    n_tokens: usize,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
    theta: f32,
) -> Reference {
    assert_eq!(q.len(), n_tokens * n_heads * head_dim);
    assert_eq!(k.len(), n_tokens * n_kv_heads * head_dim);
    assert_eq!(positions.len(), n_tokens);
    let mut r = Reference::with_capacity(q.len() + k.len());
    for (data, heads) in [(q, n_heads), (k, n_kv_heads)] {
        for (t, &pos) in positions.iter().enumerate() {
            for h in 0..heads {
                let base = (t * heads + h) * head_dim;
                for i in 0..head_dim / 2 {
                    let freq = (theta as f64).powf(-2.0 * i as f64 / head_dim as f64);
                    let (s, c) = (pos as f64 * freq).sin_cos();
                    let (x0, x1) = (data[base + 2 * i] as f64, data[base + 2 * i + 1] as f64);
                    let norm = x0.hypot(x1);
                    r.push(x0 * c - x1 * s, norm);
                    r.push(x0 * s + x1 * c, norm);
                }
            }
        }
    }
    r
}

/// out = silu(gate) * up = gate / (1 + exp(-gate)) * up.
pub fn swiglu_ref(gate: &[f32], up: &[f32]) -> Reference {
    assert_eq!(gate.len(), up.len());
    let mut r = Reference::with_capacity(gate.len());
    for (&g, &u) in gate.iter().zip(up) {
        let g = g as f64;
        let y = g / (1.0 + (-g).exp()) * u as f64;
        r.push(y, y.abs());
    }
    r
}

/// One new token's attention over `seq_len` cached positions, grouped-query: query head h reads
/// KV head h / (n_heads / n_kv_heads). q: [n_heads, head_dim]; caches: [seq_len, n_kv_heads,
/// head_dim]. The scale of an output is `sum_t p_t |v_t|` (the terms of its weighted sum).
#[allow(clippy::too_many_arguments)]
pub fn attention_decode_ref(
    q: &[f32],
    k_cache: &[f32],
    v_cache: &[f32],
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
    seq_len: usize,
    scale: f32,
) -> Reference {
    assert_eq!(q.len(), n_heads * head_dim);
    assert!(k_cache.len() >= seq_len * n_kv_heads * head_dim && v_cache.len() >= seq_len * n_kv_heads * head_dim);
    let group = n_heads / n_kv_heads;
    let mut r = Reference::with_capacity(n_heads * head_dim);
    let mut p = vec![0f64; seq_len];
    for h in 0..n_heads {
        let kvh = h / group;
        let qh = &q[h * head_dim..(h + 1) * head_dim];
        let mut max = f64::NEG_INFINITY;
        for (t, pt) in p.iter_mut().enumerate() {
            let kt = &k_cache[(t * n_kv_heads + kvh) * head_dim..][..head_dim];
            let s: f64 = qh.iter().zip(kt).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() * scale as f64;
            *pt = s;
            max = max.max(s);
        }
        let mut total = 0f64;
        for pt in p.iter_mut() {
            *pt = (*pt - max).exp();
            total += *pt;
        }
        for d in 0..head_dim {
            let (mut y, mut a) = (0f64, 0f64);
            for (t, &pt) in p.iter().enumerate() {
                let v = v_cache[(t * n_kv_heads + kvh) * head_dim + d] as f64;
                y += pt * v;
                a += pt * v.abs();
            }
            r.push(y / total, a / total);
        }
    }
    r
}

/// One timed case of `cargo bench --bench kernels`: an operation at a 1B shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CaseSpec {
    /// Decode: y = W x with W in Q8_0.
    Matvec { name: &'static str, rows: usize, cols: usize },
    /// Prefill / batch: Y = X W^T with W in Q8_0, `n` tokens.
    Matmul { name: &'static str, rows: usize, cols: usize, n: usize },
    RmsNorm { n: usize, dim: usize },
    Rope { n_tokens: usize },
    Swiglu { n: usize },
    /// One new token over `seq_len` cached positions (32 query heads, 8 KV heads, head_dim 64).
    Attention { seq_len: usize },
    /// Every matrix-vector product of one decode step, back to back on one stream: 16 layers
    /// (each its own weights, 1.31 GB in all, so nothing is found in L2) and the classifier;
    /// `fused`: q/k/v and gate/up as one matrix each; `launch`: how the step's matvecs reach the GPU.
    DecodeStep { fused: bool, launch: StepLaunch },
}

/// How the matrix-vector products of a decode step are launched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepLaunch {
    /// One `q8_0_matvec` launch per matrix.
    Plain,
    /// One launch per matrix, each with programmatic dependent launch (the next kernel starts
    /// while the previous one drains).
    Pdl,
    /// One `q8_0_matvec_chain` launch for the whole step: a persistent kernel whose blocks wait
    /// for each other between matrices while their next weights are already being copied.
    Persistent,
}

impl CaseSpec {
    /// The kernel's name in `kernels/llama_ops.cu`, also the Criterion group `kernels/<op>`.
    pub fn op(&self) -> &'static str {
        match self {
            CaseSpec::Matvec { .. } => "q8_0_matvec",
            CaseSpec::Matmul { .. } => "q8_0_matmul",
            CaseSpec::RmsNorm { .. } => "rms_norm",
            CaseSpec::Rope { .. } => "rope",
            CaseSpec::Swiglu { .. } => "swiglu",
            CaseSpec::Attention { .. } => "attention_decode",
            CaseSpec::DecodeStep { .. } => "decode_step_matvecs",
        }
    }

    /// The shape part of the Criterion id (no `/`), e.g. `lm_head_128256x2048`.
    pub fn shape(&self) -> String {
        match *self {
            CaseSpec::Matvec { name, rows, cols } => format!("{name}_{rows}x{cols}"),
            CaseSpec::Matmul { name, rows, cols, n } => format!("{name}_{rows}x{cols}_n{n}"),
            CaseSpec::RmsNorm { n, dim } => format!("dim{dim}_n{n}"),
            CaseSpec::Rope { n_tokens } => format!(
                "tokens{n_tokens}_h{}_kv{}_hd{}",
                llama_1b::HEADS,
                llama_1b::KV_HEADS,
                llama_1b::HEAD_DIM
            ),
            CaseSpec::Swiglu { n } => format!("n{n}"),
            CaseSpec::Attention { seq_len } => format!(
                "seq{seq_len}_h{}_kv{}_hd{}",
                llama_1b::HEADS,
                llama_1b::KV_HEADS,
                llama_1b::HEAD_DIM
            ),
            CaseSpec::DecodeStep { fused, launch } => format!(
                "{}_plus_lm_head{}",
                if fused { "fused_16x4" } else { "16x7" },
                match launch {
                    StepLaunch::Plain => "",
                    StepLaunch::Pdl => "_pdl",
                    StepLaunch::Persistent => "_persistent",
                }
            ),
        }
    }

    /// The kernels whose checks a case depends on: a case is not timed when one of them failed.
    pub fn checked_by(&self) -> &'static [&'static str] {
        match self {
            CaseSpec::DecodeStep { launch: StepLaunch::Persistent, .. } => &["q8_0_matvec_chain"],
            CaseSpec::DecodeStep { .. } => &["q8_0_matvec"],
            CaseSpec::Matvec { .. } => &["q8_0_matvec"],
            CaseSpec::Matmul { .. } => &["q8_0_matmul"],
            CaseSpec::RmsNorm { .. } => &["rms_norm"],
            CaseSpec::Rope { .. } => &["rope"],
            CaseSpec::Swiglu { .. } => &["swiglu"],
            CaseSpec::Attention { .. } => &["attention_decode"],
        }
    }

    /// The weight matrix shape (rows, cols, tokens) of the matrix cases, which the engines'
    /// equivalents are timed at.
    pub fn matrix(&self) -> Option<(usize, usize, usize)> {
        match *self {
            CaseSpec::Matvec { rows, cols, .. } => Some((rows, cols, 1)),
            CaseSpec::Matmul { rows, cols, n, .. } => Some((rows, cols, n)),
            _ => None,
        }
    }
}

/// Every case of the kernels bench, in report order: the 8 decode matvec shapes and the 2 fused
/// ones, a whole decode step's matvecs (unfused and fused; plain launches, programmatic dependent
/// launch, one persistent kernel), the q/gate/down matmuls at 128 and 512 tokens, RMSNorm (dim 2048, one row), RoPE (one token), SwiGLU (8192),
/// decode attention at 1K/4K/8K cached positions.
pub fn case_specs() -> Vec<CaseSpec> {
    let mut v: Vec<CaseSpec> = llama_1b::MATVEC.iter().chain(&llama_1b::FUSED_MATVEC).map(|&(name, rows, cols)| CaseSpec::Matvec { name, rows, cols }).collect();
    for launch in [StepLaunch::Plain, StepLaunch::Pdl, StepLaunch::Persistent] {
        v.extend([CaseSpec::DecodeStep { fused: false, launch }, CaseSpec::DecodeStep { fused: true, launch }]);
    }
    for &n in &llama_1b::MATMUL_TOKENS {
        v.extend(llama_1b::MATMUL.iter().map(|&(name, rows, cols)| CaseSpec::Matmul { name, rows, cols, n }));
    }
    v.push(CaseSpec::RmsNorm { n: 1, dim: llama_1b::HIDDEN });
    v.push(CaseSpec::Rope { n_tokens: 1 });
    v.push(CaseSpec::Swiglu { n: llama_1b::INTERMEDIATE });
    v.extend(llama_1b::ATTENTION_SEQ.iter().map(|&seq_len| CaseSpec::Attention { seq_len }));
    v
}

/// The median (mean of the middle two for an even count); NaN for no values.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// The outcome of one kernel check, as printed and written to `kernels.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The kernel's name in `kernels/llama_ops.cu`.
    pub kernel: &'static str,
    /// Shape and which code path ran, e.g. `2048x8192 (fast path)`.
    pub shape: String,
    /// `max |got - ref| / scale` (module docs); NaN if an output was NaN.
    pub error: f64,
    pub bound: f64,
    pub passed: bool,
}

impl Check {
    pub fn new(kernel: &'static str, shape: impl Into<String>, error: f64) -> Self {
        Self { kernel, shape: shape.into(), error, bound: ERROR_BOUND, passed: within(error, ERROR_BOUND) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_round_trip_is_within_half_a_step() {
        let mut rng = Rng::new(1);
        let (rows, cols) = (7, 96);
        let mut w = rng.vec(rows * cols, 3.0);
        w[5] = 0.0;
        w[40..72].iter_mut().for_each(|v| *v = 0.0); // an all-zero block: d = 0
        let bytes = quantize_q8_0(&w, rows, cols);
        assert_eq!(bytes.len(), rows * 3 * 34);
        let back = dequantize_q8_0(&bytes, rows, cols);
        for (b, (src, deq)) in w.chunks(32).zip(back.chunks(32)).enumerate() {
            let block = &bytes[b * 34..(b + 1) * 34];
            let d = half::f16::from_bits(u16::from_le_bytes([block[0], block[1]])).to_f32();
            for (&x, &y) in src.iter().zip(deq) {
                assert!((x - y).abs() <= d / 2.0 * 1.0001 + f32::MIN_POSITIVE, "block {b}: {x} -> {y}, d {d}");
            }
        }
    }

    #[test]
    fn q8_0_layout_is_scale_then_quants() {
        let mut v = vec![0f32; 32];
        v[0] = 127.0;
        v[1] = -63.5;
        let b = quantize_q8_0(&v, 1, 32);
        assert_eq!(half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32(), 1.0);
        assert_eq!(b[2] as i8, 127);
        assert_eq!(b[3] as i8, -64); // -63.5 rounds away from zero
        assert!(b[4..].iter().all(|&q| q == 0));
    }

    #[test]
    fn matvec_reference_matches_a_loop_over_the_blocks() {
        // The reference works on dequantized f32 values; this loop reads the Q8_0 bytes directly,
        // block by block, as the kernels do. Both are f64, so they agree to rounding.
        let mut rng = Rng::new(2);
        let (rows, cols) = (5, 256);
        let w = rng.vec(rows * cols, 1.0);
        let x = rng.vec(cols, 1.0);
        let bytes = quantize_q8_0(&w, rows, cols);
        let r = matvec_ref(&dequantize_q8_0(&bytes, rows, cols), &x, rows, cols);
        for row in 0..rows {
            let mut y = 0f64;
            for b in 0..cols / 32 {
                let block = &bytes[(row * cols / 32 + b) * 34..][..34];
                let d = half::f16::from_bits(u16::from_le_bytes([block[0], block[1]])).to_f32() as f64;
                let s: f64 = (0..32).map(|i| (block[2 + i] as i8) as f64 * x[b * 32 + i] as f64).sum();
                y += d * s;
            }
            assert!((y - r.values[row]).abs() <= 1e-12 * r.scale[row], "row {row}: {y} vs {}", r.values[row]);
            assert!(r.scale[row] >= r.values[row].abs());
        }
        // f32 accumulation in the natural order is well within the bound the GPU checks use.
        let deq = dequantize_q8_0(&bytes, rows, cols);
        let got: Vec<f32> = deq.chunks(cols).map(|row| row.iter().zip(&x).map(|(a, b)| a * b).sum()).collect();
        assert!(within(max_scaled_error(&got, &r), ERROR_BOUND));
    }

    #[test]
    fn matmul_reference_is_one_matvec_per_token() {
        let mut rng = Rng::new(3);
        let (rows, cols, n) = (3, 64, 2);
        let w = rng.vec(rows * cols, 1.0);
        let x = rng.vec(n * cols, 1.0);
        let r = matmul_ref(&w, &x, rows, cols, n);
        let second = matvec_ref(&w, &x[cols..], rows, cols);
        assert_eq!(&r.values[rows..], &second.values[..]);
    }

    #[test]
    fn error_measure_fails_on_nan_and_wrong_length() {
        let r = Reference { values: vec![1.0, -2.0], scale: vec![1.0, 2.0] };
        assert_eq!(max_scaled_error(&[1.0, -2.0], &r), 0.0);
        assert!((max_scaled_error(&[1.0, -1.0], &r) - 0.5).abs() < 1e-12);
        let poisoned = f32::from_bits(0x7fc0_0000);
        assert!(!within(max_scaled_error(&[1.0, poisoned], &r), ERROR_BOUND));
        assert!(!within(max_scaled_error(&[1.0], &r), ERROR_BOUND));
    }

    #[test]
    fn rope_at_position_zero_is_the_identity() {
        let mut rng = Rng::new(4);
        let (q, k) = (rng.vec(2 * 64, 1.0), rng.vec(64, 1.0));
        let r = rope_ref(&q, &k, &[0], 1, 2, 1, 64, 500000.0);
        for (a, b) in q.iter().chain(&k).zip(&r.values) {
            assert!((*a as f64 - b).abs() < 1e-12);
        }
    }

    #[test]
    fn rope_rotates_the_first_pair_by_the_position() {
        let r = rope_ref(&[1.0, 0.0], &[0.0, 1.0], &[3], 1, 1, 1, 2, 10000.0);
        assert!((r.values[0] - 3f64.cos()).abs() < 1e-12 && (r.values[1] - 3f64.sin()).abs() < 1e-12);
        assert!((r.values[2] + 3f64.sin()).abs() < 1e-12 && (r.values[3] - 3f64.cos()).abs() < 1e-12);
    }

    #[test]
    fn attention_over_one_position_returns_its_value() {
        let mut rng = Rng::new(5);
        let (heads, kv, hd) = (4, 2, 8);
        let q = rng.vec(heads * hd, 1.0);
        let k = rng.vec(kv * hd, 1.0);
        let v = rng.vec(kv * hd, 1.0);
        let r = attention_decode_ref(&q, &k, &v, heads, kv, hd, 1, 0.125);
        for h in 0..heads {
            for d in 0..hd {
                assert!((r.values[h * hd + d] - v[(h / 2) * hd + d] as f64).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn swiglu_and_rms_norm_references() {
        let s = swiglu_ref(&[0.0, 2.0], &[5.0, 3.0]);
        assert_eq!(s.values[0], 0.0);
        assert!((s.values[1] - 2.0 / (1.0 + (-2f64).exp()) * 3.0).abs() < 1e-12);
        let n = rms_norm_ref(&[3.0, 4.0], &[1.0, 2.0], 1, 2, 0.0);
        let inv = 1.0 / 12.5f64.sqrt();
        assert!((n.values[0] - 3.0 * inv).abs() < 1e-12 && (n.values[1] - 8.0 * inv).abs() < 1e-12);
    }

    #[test]
    fn rng_is_deterministic_and_spread() {
        let a: Vec<f32> = Rng::new(7).vec(1000, 1.0);
        assert_eq!(a, Rng::new(7).vec(1000, 1.0));
        assert_ne!(a, Rng::new(8).vec(1000, 1.0));
        assert!(a.iter().all(|v| (-1.0..1.0).contains(v)));
        let mean = a.iter().sum::<f32>() / 1000.0;
        assert!(mean.abs() < 0.1);
    }

    #[test]
    fn case_ids_have_no_slash_and_are_unique() {
        let specs = case_specs();
        assert_eq!(specs.len(), 8 + 2 + 6 + 6 + 3 + 3);
        assert!(specs.iter().any(|s| s.shape() == "fused_16x4_plus_lm_head_pdl"));
        assert!(specs.iter().any(|s| s.shape() == "16x7_plus_lm_head_persistent"));
        let mut ids: Vec<String> = specs.iter().map(|s| format!("{}/{}", s.op(), s.shape())).collect();
        assert!(specs.iter().all(|s| !s.shape().contains('/')));
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), specs.len());
        assert_eq!(specs[7].shape(), "lm_head_128256x2048");
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn shapes_and_bytes() {
        assert_eq!(q8_0_bytes(2048, 2048), 2048 * 64 * 34);
        // 16 layers of 64.5 MB plus a 279 MB classifier: about 1.31 GB per decode step.
        let b = llama_1b::decode_step_weight_bytes();
        assert!((1.30e9..1.32e9).contains(&b), "{b}");
        // Fusing changes the launches, not the bytes.
        let layer = |fused| llama_1b::layer_matvecs(fused).iter().map(|&(_, r, c)| q8_0_bytes(r, c)).sum::<usize>();
        assert_eq!(layer(true), layer(false));
        assert_eq!(llama_1b::layer_matvecs(true).len(), 4);
    }
}
