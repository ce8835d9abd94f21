//! GGUF files: read (memory-mapped), write, and the few ggml block formats the suite needs.
//!
//! The suite reads and writes GGUF itself instead of borrowing an engine's reader so that the
//! fixtures, the reference engine and the engines without a GGUF loader of their own (lm.rs design,
//! Burn, the PyTorch baseline) share one copy of the truth about the bytes on disk. Candle and
//! mistral.rs read the same files with their own loaders, as their users would.
//!
//! Layout (GGUF v3): magic, version, tensor count, metadata count, metadata key/values, tensor
//! infos (name, dims innermost first, ggml type, offset), padding to `general.alignment`, data.

use anyhow::{bail, ensure, Context, Result};
use half::f16;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: u32 = 0x4655_4747; // "GGUF" little-endian
const DEFAULT_ALIGNMENT: u64 = 32;

/// Block size shared by Q8_0 and Q4_1: 32 weights per block.
pub const QK: usize = 32;
/// Bytes of one Q8_0 block: an f16 scale and 32 signed bytes.
pub const Q8_0_BLOCK_BYTES: usize = 2 + QK;
/// Bytes of one Q4_1 block: f16 scale, f16 minimum, 32 nibbles.
pub const Q4_1_BLOCK_BYTES: usize = 4 + QK / 2;

/// The ggml tensor types this suite understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    Q4_1,
    Q8_0,
}

impl GgmlType {
    pub fn from_u32(v: u32) -> Result<Self> {
        Ok(match v {
            0 => Self::F32,
            1 => Self::F16,
            3 => Self::Q4_1,
            8 => Self::Q8_0,
            other => bail!(
                "ggml tensor type {other} is not supported by llm-bench (supported: F32, F16, Q4_1, Q8_0); \
                 re-quantize the model to Q8_0, e.g. with llama.cpp's llama-quantize"
            ),
        })
    }

    pub fn as_u32(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_1 => 3,
            Self::Q8_0 => 8,
        }
    }

    /// Bytes taken by `n` elements of this type (n must be a multiple of the block size).
    pub fn bytes_for(self, n: usize) -> usize {
        match self {
            Self::F32 => 4 * n,
            Self::F16 => 2 * n,
            Self::Q4_1 => n / QK * Q4_1_BLOCK_BYTES,
            Self::Q8_0 => n / QK * Q8_0_BLOCK_BYTES,
        }
    }

    pub fn block_len(self) -> usize {
        match self {
            Self::F32 | Self::F16 => 1,
            Self::Q4_1 | Self::Q8_0 => QK,
        }
    }
}

/// A metadata value. Arrays keep their element values.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    fn type_id(&self) -> u32 {
        match self {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(_) => 9,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }

    /// Any integer value as u64 (GGUF writers disagree on the integer width of counts and ids).
    pub fn as_u64(&self) -> Option<u64> {
        Some(match *self {
            Value::U8(v) => v as u64,
            Value::I8(v) => v as u64,
            Value::U16(v) => v as u64,
            Value::I16(v) => v as u64,
            Value::U32(v) => v as u64,
            Value::I32(v) => v as u64,
            Value::U64(v) => v,
            Value::I64(v) => v as u64,
            _ => return None,
        })
    }

    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Value::F32(v) => Some(v),
            Value::F64(v) => Some(v as f32),
            _ => self.as_u64().map(|v| v as f32),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// Where a tensor lives in the file and what it is.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions innermost first, as GGUF stores them: a weight `[out, in]` is `dims = [in, out]`.
    pub dims: Vec<usize>,
    pub ggml_type: GgmlType,
    /// Absolute byte offset in the file.
    pub offset: usize,
}

impl TensorInfo {
    pub fn elements(&self) -> usize {
        self.dims.iter().product()
    }
    pub fn byte_len(&self) -> usize {
        self.ggml_type.bytes_for(self.elements())
    }
}

/// A GGUF file opened read-only and memory-mapped.
pub struct GgufFile {
    pub path: PathBuf,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: BTreeMap<String, TensorInfo>,
    map: memmap2::Mmap,
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).with_context(|| {
            format!(
                "model file {} cannot be opened; make the fixtures with `cargo run --release --bin llm-bench -- fixtures` \
                 or point LLM_BENCH_MODEL at an existing .gguf file",
                path.display()
            )
        })?;
        // SAFETY: the file is opened read-only and the suite never writes to a model while reading it.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("cannot memory-map {}", path.display()))?;
        Self::parse(path, map)
    }

    fn parse(path: &Path, map: memmap2::Mmap) -> Result<Self> {
        let bad = |what: &str| {
            format!(
                "{} is not a valid GGUF file ({what}); it may be truncated or not a model: \
                 delete it and make it again (fixtures are re-made on first use) or check the path",
                path.display()
            )
        };
        let mut r = Cursor { buf: &map, pos: 0 };
        let magic = r.u32().with_context(|| bad("shorter than a header"))?;
        ensure!(magic == MAGIC, bad("wrong magic bytes"));
        let version = r.u32().with_context(|| bad("no version"))?;
        ensure!(version == 2 || version == 3, bad(&format!("unsupported GGUF version {version}")));
        let n_tensors = r.u64().with_context(|| bad("no tensor count"))? as usize;
        let n_kv = r.u64().with_context(|| bad("no metadata count"))? as usize;
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = r.string().with_context(|| bad("metadata cut short"))?;
            let ty = r.u32().with_context(|| bad("metadata cut short"))?;
            let value = r.value(ty).with_context(|| bad(&format!("metadata value of {key} cut short")))?;
            metadata.insert(key, value);
        }
        let mut infos = Vec::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let name = r.string().with_context(|| bad("tensor table cut short"))?;
            let n_dims = r.u32().with_context(|| bad("tensor table cut short"))? as usize;
            ensure!(n_dims <= 4, bad(&format!("tensor {name} has {n_dims} dimensions")));
            let mut dims = Vec::with_capacity(n_dims);
            for _ in 0..n_dims {
                dims.push(r.u64().with_context(|| bad("tensor table cut short"))? as usize);
            }
            let ty = GgmlType::from_u32(r.u32().with_context(|| bad("tensor table cut short"))?)
                .with_context(|| format!("tensor {name} in {}", path.display()))?;
            let offset = r.u64().with_context(|| bad("tensor table cut short"))? as usize;
            infos.push((name, dims, ty, offset));
        }
        let alignment = metadata
            .get("general.alignment")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_ALIGNMENT) as usize;
        let data_start = r.pos.div_ceil(alignment) * alignment;
        let mut tensors = BTreeMap::new();
        for (name, dims, ggml_type, rel) in infos {
            let info = TensorInfo { name: name.clone(), dims, ggml_type, offset: data_start + rel };
            ensure!(
                info.elements() % ggml_type.block_len() == 0,
                bad(&format!("tensor {name} is not a whole number of blocks"))
            );
            ensure!(
                info.offset + info.byte_len() <= map.len(),
                bad(&format!(
                    "tensor {name} ends at byte {} but the file has {} bytes",
                    info.offset + info.byte_len(),
                    map.len()
                ))
            );
            tensors.insert(name, info);
        }
        Ok(Self { path: path.to_path_buf(), metadata, tensors, map })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.tensors
            .get(name)
            .with_context(|| format!("tensor {name} is missing from {}", self.path.display()))
    }

    /// The raw bytes of a tensor, in its on-disk ggml format.
    pub fn bytes(&self, info: &TensorInfo) -> &[u8] {
        &self.map[info.offset..info.offset + info.byte_len()]
    }

    /// A tensor dequantized to f32, row-major with the innermost GGUF dimension contiguous.
    pub fn f32_tensor(&self, name: &str) -> Result<Vec<f32>> {
        let info = self.tensor(name)?;
        Ok(dequantize(info.ggml_type, self.bytes(info)))
    }
}

/// Dequantize a whole buffer of `ty` to f32, in parallel over blocks.
pub fn dequantize(ty: GgmlType, bytes: &[u8]) -> Vec<f32> {
    use rayon::prelude::*;
    let block_bytes = ty.bytes_for(ty.block_len());
    let n = bytes.len() / block_bytes * ty.block_len();
    let mut out = vec![0f32; n];
    const CHUNK_BLOCKS: usize = 1024;
    out.par_chunks_mut(CHUNK_BLOCKS * ty.block_len())
        .zip(bytes.par_chunks(CHUNK_BLOCKS * block_bytes))
        .for_each(|(dst, src)| dequantize_into(ty, src, dst));
    out
}

/// Dequantize `src` (whole blocks of `ty`) into `dst`.
pub fn dequantize_into(ty: GgmlType, src: &[u8], dst: &mut [f32]) {
    match ty {
        GgmlType::F32 => {
            for (d, s) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *d = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            }
        }
        GgmlType::F16 => {
            for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *d = f16::from_le_bytes([s[0], s[1]]).to_f32();
            }
        }
        GgmlType::Q8_0 => {
            for (d, b) in dst.chunks_exact_mut(QK).zip(src.chunks_exact(Q8_0_BLOCK_BYTES)) {
                let scale = f16::from_le_bytes([b[0], b[1]]).to_f32();
                for (x, &q) in d.iter_mut().zip(&b[2..]) {
                    *x = scale * (q as i8) as f32;
                }
            }
        }
        GgmlType::Q4_1 => {
            for (d, b) in dst.chunks_exact_mut(QK).zip(src.chunks_exact(Q4_1_BLOCK_BYTES)) {
                let scale = f16::from_le_bytes([b[0], b[1]]).to_f32();
                let min = f16::from_le_bytes([b[2], b[3]]).to_f32();
                for j in 0..QK / 2 {
                    let q = b[4 + j];
                    d[j] = scale * (q & 0x0f) as f32 + min;
                    d[j + QK / 2] = scale * (q >> 4) as f32 + min;
                }
            }
        }
    }
}

/// Quantize f32 values (a multiple of 32) to Q8_0 blocks, the way ggml does: per block,
/// scale = max|x| / 127 stored as f16, q = round(x / scale).
pub fn quantize_q8_0(src: &[f32], dst: &mut Vec<u8>) {
    assert!(src.len() % QK == 0, "Q8_0 needs a multiple of {QK} values, got {}", src.len());
    dst.reserve(src.len() / QK * Q8_0_BLOCK_BYTES);
    for block in src.chunks_exact(QK) {
        let amax = block.iter().fold(0f32, |m, x| m.max(x.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        dst.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        dst.extend(block.iter().map(|x| (x * id).round() as i8 as u8));
    }
}

/// Tensors to write: name, dims (innermost first), type, and the encoded bytes.
pub struct TensorData {
    pub name: String,
    pub dims: Vec<usize>,
    pub ggml_type: GgmlType,
    pub data: Vec<u8>,
}

/// Write a GGUF v3 file. The file is written to a temporary name and renamed into place, so a
/// crash never leaves a truncated file under the final name.
pub fn write(path: &Path, metadata: &[(String, Value)], tensors: &[TensorData]) -> Result<()> {
    let tmp = path.with_extension(format!("gguf.partial.{}", std::process::id()));
    let mut head = Vec::new();
    head.extend_from_slice(&MAGIC.to_le_bytes());
    head.extend_from_slice(&3u32.to_le_bytes());
    head.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    head.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (key, value) in metadata {
        encode_string(&mut head, key);
        head.extend_from_slice(&value.type_id().to_le_bytes());
        encode_value(&mut head, value);
    }
    let align = |n: usize| n.div_ceil(DEFAULT_ALIGNMENT as usize) * DEFAULT_ALIGNMENT as usize;
    let mut offset = 0usize;
    for t in tensors {
        let want = t.ggml_type.bytes_for(t.dims.iter().product());
        ensure!(t.data.len() == want, "tensor {} has {} bytes, its shape needs {want}", t.name, t.data.len());
        encode_string(&mut head, &t.name);
        head.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
        for &d in &t.dims {
            head.extend_from_slice(&(d as u64).to_le_bytes());
        }
        head.extend_from_slice(&t.ggml_type.as_u32().to_le_bytes());
        head.extend_from_slice(&(offset as u64).to_le_bytes());
        offset = align(offset + t.data.len());
    }
    head.resize(align(head.len()), 0);
    let file = std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 22, file);
    let written = (|| -> std::io::Result<()> {
        w.write_all(&head)?;
        let zeros = [0u8; DEFAULT_ALIGNMENT as usize];
        for t in tensors {
            w.write_all(&t.data)?;
            w.write_all(&zeros[..align(t.data.len()) - t.data.len()])?;
        }
        w.flush()
    })();
    if let Err(e) = written {
        std::fs::remove_file(&tmp).ok();
        return Err(e).with_context(|| format!("cannot write {} (disk full?)", tmp.display()));
    }
    drop(w);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", tmp.display()))?;
    Ok(())
}

fn encode_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn encode_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(*x as u8),
        Value::String(s) => encode_string(out, s),
        Value::Array(items) => {
            let ty = items.first().map(Value::type_id).unwrap_or(4);
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                encode_value(out, item);
            }
        }
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        ensure!(self.pos + n <= self.buf.len(), "unexpected end of file at byte {}", self.pos);
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into()?))
    }
    fn string(&mut self) -> Result<String> {
        let n = self.u64()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
    fn value(&mut self, ty: u32) -> Result<Value> {
        Ok(match ty {
            0 => Value::U8(self.take(1)?[0]),
            1 => Value::I8(self.take(1)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.take(2)?.try_into()?)),
            3 => Value::I16(i16::from_le_bytes(self.take(2)?.try_into()?)),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(self.u32()? as i32),
            6 => Value::F32(f32::from_le_bytes(self.take(4)?.try_into()?)),
            7 => Value::Bool(self.take(1)?[0] != 0),
            8 => Value::String(self.string()?),
            9 => {
                let ty = self.u32()?;
                let n = self.u64()? as usize;
                let mut items = Vec::with_capacity(n.min(1 << 20));
                for _ in 0..n {
                    items.push(self.value(ty)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(self.u64()? as i64),
            12 => Value::F64(f64::from_le_bytes(self.take(8)?.try_into()?)),
            other => bail!("unknown metadata value type {other}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_round_trip_is_within_half_a_step() {
        let xs: Vec<f32> = (0..64).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        let mut q = Vec::new();
        quantize_q8_0(&xs, &mut q);
        assert_eq!(q.len(), 2 * Q8_0_BLOCK_BYTES);
        let back = dequantize(GgmlType::Q8_0, &q);
        for (blk_x, blk_y) in xs.chunks(QK).zip(back.chunks(QK)) {
            let step = blk_x.iter().fold(0f32, |m, x| m.max(x.abs())) / 127.0;
            for (x, y) in blk_x.iter().zip(blk_y) {
                // half a quantization step plus the f16 rounding of the scale
                assert!((x - y).abs() <= 0.5 * step + 127.0 * step * 1e-3, "{x} vs {y}");
            }
        }
    }

    #[test]
    fn write_then_read_keeps_metadata_and_tensors() {
        let dir = std::env::temp_dir().join(format!("llm-bench-gguf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.gguf");
        let w: Vec<f32> = (0..96).map(|i| i as f32 * 0.25 - 3.0).collect();
        let mut q = Vec::new();
        quantize_q8_0(&w, &mut q);
        let meta = vec![
            ("general.architecture".to_string(), Value::String("llama".into())),
            ("llama.block_count".to_string(), Value::U32(2)),
            ("tokenizer.ggml.tokens".to_string(), Value::Array(vec![Value::String("a".into()), Value::String("b".into())])),
        ];
        let tensors = vec![
            TensorData { name: "w".into(), dims: vec![32, 3], ggml_type: GgmlType::Q8_0, data: q },
            TensorData {
                name: "n".into(),
                dims: vec![3],
                ggml_type: GgmlType::F32,
                data: [1f32, 2., 3.].iter().flat_map(|x| x.to_le_bytes()).collect(),
            },
        ];
        write(&path, &meta, &tensors).unwrap();
        let g = GgufFile::open(&path).unwrap();
        assert_eq!(g.get("llama.block_count").and_then(Value::as_u64), Some(2));
        assert_eq!(g.get("tokenizer.ggml.tokens").and_then(Value::as_array).map(|a| a.len()), Some(2));
        assert_eq!(g.tensor("w").unwrap().dims, vec![32, 3]);
        assert_eq!(g.f32_tensor("n").unwrap(), vec![1., 2., 3.]);
        let back = g.f32_tensor("w").unwrap();
        // within half a Q8_0 step of the largest block (20.75 / 127 / 2 = 0.082) plus the f16 scale rounding
        let worst = back.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 0.09, "worst {worst}: {back:?}");

        // A truncated copy is refused with a message that names the file and the fix.
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.join("cut.gguf");
        std::fs::write(&cut, &bytes[..bytes.len() - 40]).unwrap();
        let err = format!("{:#}", GgufFile::open(&cut).err().unwrap());
        assert!(err.contains("cut.gguf") && err.contains("truncated"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
