//! GGUF (v2 and v3, little-endian): magic, version, tensor and metadata counts, typed metadata, tensor infos.
//! Parsed from a prefix of the file: every count and length is checked against the bytes actually there, so a
//! hostile file cannot make the parser allocate or loop beyond its size. When the prefix ends before the header
//! does but the file goes on, [`CompatError::NeedMore`] says how much to read.

use super::CompatError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::path::Path;
use ts_rs::TS;

/// A tensor's name and shape in ggml's order (`ne`: the fastest-varying dimension first, so a weight matrix is
/// `[inputs, outputs]`).
pub type TensorShape = (String, Vec<u64>);

/// What a GGUF header says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct GgufSummary {
    pub version: u32,
    pub architecture: Option<String>,
    pub name: Option<String>,
    pub tensors: u64,
    pub parameters: u64,
    /// Bytes of tensor data, from the tensor types and shapes.
    pub data_bytes: u64,
    /// The most common weight type, e.g. "Q4_K".
    pub quantization: Option<String>,
    /// `general.file_type` as llama.cpp names it, e.g. "MOSTLY_Q4_K_M".
    pub file_type: Option<String>,
    pub block_count: Option<u64>,
    pub context_length: Option<u64>,
    pub embedding_length: Option<u64>,
    pub head_count: Option<u64>,
    pub head_count_kv: Option<u64>,
    /// How an embedding model pools its tokens (llama.cpp's numbers: 0 none, 1 mean, 2 cls, 3 last, 4 rank).
    pub pooling_type: Option<u64>,
    /// The metadata the estimate and the adapter checks read (`general.*` names, the architecture's sizes,
    /// `adapter.*`), as text; every other key is read past without being kept, so a header of a million keys costs no memory.
    pub metadata: BTreeMap<String, String>,
    /// `general.type`: "model", "adapter" (a LoRA or a control vector), "mmproj", "vocab"...; absent in many
    /// models.
    #[serde(default)]
    pub general_type: Option<String>,
    /// `adapter.type` of an adapter: "lora" or "control_vector".
    #[serde(default)]
    pub adapter_type: Option<String>,
    /// `adapter.lora.alpha` of a LoRA adapter: llama.cpp scales its product by alpha / rank.
    #[serde(default)]
    pub lora_alpha: Option<f64>,
    /// The models this one was made from (`general.base_model.{i}.*`): an adapter's base, a fine-tune's parent.
    #[serde(default)]
    pub base_models: Vec<BaseModelRef>,
    /// The tensors of an adapter, by name and shape: every tensor when `general.type` is "adapter", else only
    /// those named `*.lora_a` / `*.lora_b` (none in a model). At most [`MAX_ADAPTER_TENSORS`].
    #[serde(default)]
    pub adapter_tensors: Vec<TensorShape>,
}

/// A model another names as its base, from `general.base_model.{i}.name`, `.organization` and `.repo_url`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct BaseModelRef {
    pub name: Option<String>,
    pub organization: Option<String>,
    /// E.g. "https://huggingface.co/meta-llama/Llama-3.1-8B".
    pub repo_url: Option<String>,
}

impl GgufSummary {
    /// A LoRA adapter: `general.type` "adapter" and `adapter.type` "lora", or, without a `general.type`, a file
    /// whose every tensor is named `*.lora_a` or `*.lora_b`.
    pub fn is_lora_adapter(&self) -> bool {
        match self.general_type.as_deref() {
            Some("adapter") => self.adapter_type.as_deref() == Some("lora"),
            Some(_) => false,
            None => {
                self.tensors > 0
                    && self.adapter_tensors.len() as u64 == self.tensors
                    && self.adapter_tensors.iter().all(|(name, _)| lora_part(name).is_some())
            }
        }
    }
}

const MAX_DEPTH: u32 = 4;
const MAX_DIMS: u32 = 8;
/// The longest metadata text kept (a model's name, say); longer values are cut.
const MAX_VALUE: usize = 1024;
/// The keys after `{architecture}.` that the estimate reads.
const ARCH_KEYS: [&str; 8] = [
    "block_count",
    "context_length",
    "embedding_length",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.value_length",
    "pooling_type",
];
/// The most keys kept: the architecture is not known until its key is read, so every `*.{ARCH_KEY}` is a
/// candidate, and a hostile file could name many.
const MAX_KEPT: usize = 64;
/// The most `general.base_model.{i}` entries read.
const MAX_BASE_MODELS: usize = 8;
/// The most tensors of an adapter kept in [`GgufSummary::adapter_tensors`] (a LoRA of every matrix of a
/// 128-layer model has under 2,000).
pub const MAX_ADAPTER_TENSORS: usize = 1 << 16;
/// The most tensors [`read_tensor_shapes`] reads (the largest models have tens of thousands).
const MAX_SHAPES: u64 = 1 << 20;

/// `general.base_model.{i}.{field}` with i below [`MAX_BASE_MODELS`] and one of the fields kept.
fn is_base_model_key(key: &[u8]) -> bool {
    let Some(rest) = key.strip_prefix(b"general.base_model.") else { return false };
    let Some(dot) = rest.iter().position(|b| *b == b'.') else { return false };
    let ([digit], field) = (&rest[..dot], &rest[dot + 1..]) else { return false };
    digit.is_ascii_digit()
        && ((digit - b'0') as usize) < MAX_BASE_MODELS
        && matches!(field, b"name" | b"organization" | b"repo_url")
}

/// Whether the estimate (or the adapter checks) reads this key.
fn wanted(key: &[u8]) -> bool {
    matches!(
        key,
        b"general.architecture"
            | b"general.name"
            | b"general.file_type"
            | b"general.type"
            | b"adapter.type"
            | b"adapter.lora.alpha"
            | b"general.base_model.count"
    ) || is_base_model_key(key)
        || key
            .iter()
            .position(|b| *b == b'.')
            .is_some_and(|dot| ARCH_KEYS.iter().any(|k| &key[dot + 1..] == k.as_bytes()))
}

/// (block size in elements, bytes per block) of a ggml type, and its name.
pub fn ggml_type(t: u32) -> Option<(&'static str, u64, u64)> {
    Some(match t {
        0 => ("F32", 1, 4),
        1 => ("F16", 1, 2),
        2 => ("Q4_0", 32, 18),
        3 => ("Q4_1", 32, 20),
        6 => ("Q5_0", 32, 22),
        7 => ("Q5_1", 32, 24),
        8 => ("Q8_0", 32, 34),
        9 => ("Q8_1", 32, 36),
        10 => ("Q2_K", 256, 84),
        11 => ("Q3_K", 256, 110),
        12 => ("Q4_K", 256, 144),
        13 => ("Q5_K", 256, 176),
        14 => ("Q6_K", 256, 210),
        15 => ("Q8_K", 256, 292),
        16 => ("IQ2_XXS", 256, 66),
        17 => ("IQ2_XS", 256, 74),
        18 => ("IQ3_XXS", 256, 98),
        19 => ("IQ1_S", 256, 50),
        20 => ("IQ4_NL", 32, 18),
        21 => ("IQ3_S", 256, 110),
        22 => ("IQ2_S", 256, 82),
        23 => ("IQ4_XS", 256, 136),
        24 => ("I8", 1, 1),
        25 => ("I16", 1, 2),
        26 => ("I32", 1, 4),
        27 => ("I64", 1, 8),
        28 => ("F64", 1, 8),
        29 => ("IQ1_M", 256, 56),
        30 => ("BF16", 1, 2),
        34 => ("TQ1_0", 256, 54),
        35 => ("TQ2_0", 256, 66),
        39 => ("MXFP4", 32, 17),
        _ => return None,
    })
}

/// llama.cpp's `general.file_type` names.
fn file_type_name(n: u64) -> Option<&'static str> {
    Some(match n {
        0 => "ALL_F32",
        1 => "MOSTLY_F16",
        2 => "MOSTLY_Q4_0",
        3 => "MOSTLY_Q4_1",
        7 => "MOSTLY_Q8_0",
        8 => "MOSTLY_Q5_0",
        9 => "MOSTLY_Q5_1",
        10 => "MOSTLY_Q2_K",
        11 => "MOSTLY_Q3_K_S",
        12 => "MOSTLY_Q3_K_M",
        13 => "MOSTLY_Q3_K_L",
        14 => "MOSTLY_Q4_K_S",
        15 => "MOSTLY_Q4_K_M",
        16 => "MOSTLY_Q5_K_S",
        17 => "MOSTLY_Q5_K_M",
        18 => "MOSTLY_Q6_K",
        32 => "MOSTLY_BF16",
        _ => return None,
    })
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    file_size: u64,
}

impl<'a> Reader<'a> {
    /// Takes `n` bytes, or says why not: the prefix ended (read more) or the file itself is too short.
    fn take(&mut self, n: u64) -> Result<&'a [u8], CompatError> {
        let end = (self.pos as u64).checked_add(n).ok_or_else(|| CompatError::invalid("GGUF", "a length overflows"))?;
        if end > self.file_size {
            return Err(CompatError::invalid(
                "GGUF",
                format!("a field runs past the end of the file ({end} > {} bytes)", self.file_size),
            ));
        }
        if end > self.buf.len() as u64 {
            // The file has the bytes; the prefix we were given does not.
            return Err(CompatError::NeedMore { at_least: end.max(self.buf.len() as u64 * 2).min(self.file_size) });
        }
        let out = &self.buf[self.pos..end as usize];
        self.pos = end as usize;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, CompatError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, CompatError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, CompatError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    /// A string's bytes, borrowed from the prefix.
    fn str_bytes(&mut self) -> Result<&'a [u8], CompatError> {
        let n = self.u64()?;
        self.take(n)
    }

    /// A metadata value: scalars as text when `keep`, else only read past; arrays are always read past, element by
    /// element (their count bounded by the file).
    fn value(&mut self, t: u32, depth: u32, keep: bool) -> Result<Option<String>, CompatError> {
        if !keep && t != 9 {
            let width = match t {
                0 | 1 | 7 => 1,
                2 | 3 => 2,
                4..=6 => 4,
                10..=12 => 8,
                8 => {
                    self.str_bytes()?;
                    return Ok(None);
                }
                other => return Err(CompatError::invalid("GGUF", format!("unknown metadata type {other}"))),
            };
            self.take(width)?;
            return Ok(None);
        }
        Ok(Some(match t {
            0 => self.u8()?.to_string(),
            1 => (self.u8()? as i8).to_string(),
            2 => u16::from_le_bytes(self.take(2)?.try_into().unwrap()).to_string(),
            3 => i16::from_le_bytes(self.take(2)?.try_into().unwrap()).to_string(),
            4 => self.u32()?.to_string(),
            5 => (self.u32()? as i32).to_string(),
            6 => f32::from_le_bytes(self.take(4)?.try_into().unwrap()).to_string(),
            7 => (self.u8()? != 0).to_string(),
            8 => {
                let bytes = self.str_bytes()?;
                String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_VALUE)]).into_owned()
            }
            9 => {
                if depth >= MAX_DEPTH {
                    return Err(CompatError::invalid("GGUF", format!("arrays nest deeper than {MAX_DEPTH}")));
                }
                let item = self.u32()?;
                let count = self.u64()?;
                // Each element takes at least one byte: a count beyond the file is a lie.
                if count > self.file_size {
                    return Err(CompatError::invalid(
                        "GGUF",
                        format!("an array claims {count} elements in a file of {} bytes", self.file_size),
                    ));
                }
                for _ in 0..count {
                    self.value(item, depth + 1, false)?;
                }
                return Ok(None);
            }
            10 => self.u64()?.to_string(),
            11 => (self.u64()? as i64).to_string(),
            12 => f64::from_le_bytes(self.take(8)?.try_into().unwrap()).to_string(),
            other => return Err(CompatError::invalid("GGUF", format!("unknown metadata type {other}"))),
        }))
    }
}

/// GGUF headers (vocabularies included) are a few MB; a header claiming more than this is refused, not read.
pub const MAX_HEADER: u64 = 128 << 20;

/// Parses a GGUF header from the beginning of a file of `file_size` bytes.
pub fn parse(prefix: &[u8], file_size: u64) -> Result<GgufSummary, CompatError> {
    parse_impl(prefix, file_size, None)
}

/// [`parse`], and when `shapes` is given, every tensor's name and shape pushed onto it.
fn parse_impl(
    prefix: &[u8],
    file_size: u64,
    mut shapes: Option<&mut Vec<TensorShape>>,
) -> Result<GgufSummary, CompatError> {
    let mut r = Reader { buf: prefix, pos: 0, file_size };
    if r.take(4)? != b"GGUF" {
        return Err(CompatError::invalid("GGUF", "the file does not start with the GGUF magic"));
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(CompatError::invalid("GGUF", format!("version {version} is not supported (2 and 3 are)")));
    }
    let tensor_count = r.u64()?;
    let kv_count = r.u64()?;
    if tensor_count > file_size || kv_count > file_size {
        return Err(CompatError::invalid(
            "GGUF",
            format!("{tensor_count} tensors and {kv_count} metadata entries cannot fit in {file_size} bytes"),
        ));
    }
    let mut s = GgufSummary { version, tensors: tensor_count, ..Default::default() };
    for _ in 0..kv_count {
        let key = r.str_bytes()?;
        let t = r.u32()?;
        let keep = s.metadata.len() < MAX_KEPT && wanted(key);
        if let Some(value) = r.value(t, 0, keep)? {
            s.metadata.insert(String::from_utf8_lossy(key).into_owned(), value);
        }
    }
    if shapes.is_some() && tensor_count > MAX_SHAPES {
        return Err(CompatError::invalid("GGUF", format!("{tensor_count} tensors (more than {MAX_SHAPES})")));
    }
    // The metadata comes before the tensors: an adapter is known as one before its tensors are read.
    let adapter = s.metadata.get("general.type").is_some_and(|t| t == "adapter");
    let mut by_type: BTreeMap<&'static str, u64> = BTreeMap::new();
    for _ in 0..tensor_count {
        let name = r.str_bytes()?;
        let dims = r.u32()?;
        if dims == 0 || dims > MAX_DIMS {
            return Err(CompatError::invalid("GGUF", format!("a tensor with {dims} dimensions")));
        }
        let keep_adapter = s.adapter_tensors.len() < MAX_ADAPTER_TENSORS
            && (adapter || name.ends_with(b".lora_a") || name.ends_with(b".lora_b"));
        let keep = keep_adapter || shapes.is_some();
        let mut ne = Vec::new();
        let mut count = 1u64;
        for _ in 0..dims {
            let n = r.u64()?;
            if keep {
                ne.push(n);
            }
            count = count.checked_mul(n).ok_or_else(|| CompatError::invalid("GGUF", "a tensor's shape overflows"))?;
        }
        if keep {
            let name = String::from_utf8_lossy(name).into_owned();
            match shapes.as_deref_mut() {
                Some(all) if keep_adapter => {
                    all.push((name.clone(), ne.clone()));
                    s.adapter_tensors.push((name, ne));
                }
                Some(all) => all.push((name, ne)),
                None => s.adapter_tensors.push((name, ne)),
            }
        }
        let t = r.u32()?;
        let _offset = r.u64()?;
        let (name, block, bytes) =
            ggml_type(t).ok_or_else(|| CompatError::invalid("GGUF", format!("unknown tensor type {t}")))?;
        let size = count
            .div_ceil(block)
            .checked_mul(bytes)
            .ok_or_else(|| CompatError::invalid("GGUF", "a tensor's size overflows"))?;
        s.parameters = s.parameters.saturating_add(count);
        s.data_bytes = s.data_bytes.saturating_add(size);
        let n = by_type.entry(name).or_default();
        *n = n.saturating_add(count);
    }
    if s.data_bytes > file_size {
        return Err(CompatError::invalid(
            "GGUF",
            format!("its tensors need {} bytes but the file has {file_size}", s.data_bytes),
        ));
    }
    s.quantization = by_type.iter().max_by_key(|(_, n)| **n).map(|(t, _)| t.to_string());
    let get = |k: &str| s.metadata.get(k).cloned();
    s.architecture = get("general.architecture");
    s.name = get("general.name");
    s.file_type = get("general.file_type").and_then(|v| v.parse().ok()).and_then(file_type_name).map(str::to_owned);
    if let Some(arch) = s.architecture.clone() {
        let n = |k: &str| s.metadata.get(&format!("{arch}.{k}")).and_then(|v| v.parse::<u64>().ok());
        s.block_count = n("block_count");
        s.context_length = n("context_length");
        s.embedding_length = n("embedding_length");
        s.head_count = n("attention.head_count");
        s.head_count_kv = n("attention.head_count_kv").or(s.head_count);
        s.pooling_type = n("pooling_type");
    }
    s.general_type = get("general.type");
    s.adapter_type = get("adapter.type");
    s.lora_alpha = get("adapter.lora.alpha").and_then(|v| v.parse::<f64>().ok());
    let bases = get("general.base_model.count").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
    s.base_models = (0..bases.min(MAX_BASE_MODELS))
        .map(|i| {
            let field = |f: &str| get(&format!("general.base_model.{i}.{f}"));
            BaseModelRef { name: field("name"), organization: field("organization"), repo_url: field("repo_url") }
        })
        .collect();
    Ok(s)
}

/// Every tensor's name and shape (ggml order) in a GGUF file, reading as much of its header as that takes. A
/// model split in parts (`-00001-of-00003.gguf`) has each part's tensors in that part.
pub fn read_tensor_shapes(path: &Path) -> io::Result<Vec<TensorShape>> {
    let size = std::fs::metadata(path)?.len();
    let mut want = (1u64 << 20).min(size);
    loop {
        let mut prefix = Vec::new();
        std::fs::File::open(path)?.take(want).read_to_end(&mut prefix)?;
        let mut shapes = Vec::new();
        match parse_impl(&prefix, size, Some(&mut shapes)) {
            Ok(_) => return Ok(shapes),
            Err(CompatError::NeedMore { at_least }) if at_least > want && at_least <= size.min(MAX_HEADER) => {
                want = at_least
            }
            Err(CompatError::NeedMore { .. }) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "not a valid GGUF file: its header runs past the end of the file or beyond {} MB",
                        MAX_HEADER >> 20
                    ),
                ))
            }
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        }
    }
}

/// `X` and whether it is the `a` half, of a tensor named `X.lora_a` or `X.lora_b`.
fn lora_part(name: &str) -> Option<(&str, bool)> {
    name.strip_suffix(".lora_a").map(|x| (x, true)).or_else(|| name.strip_suffix(".lora_b").map(|x| (x, false)))
}

/// `ne[i]`, 1 past the tensor's dimensions (as ggml pads them).
fn ne(shape: &[u64], i: usize) -> u64 {
    shape.get(i).copied().unwrap_or(1)
}

/// Whether llama.cpp would apply this LoRA adapter to this base model, whose tensors are `base_tensors` (from
/// [`read_tensor_shapes`], all parts of a split model together): the checks of llama.cpp's adapter loader, in its
/// order. The adapter must say it is one (`general.type` "adapter", `adapter.type` "lora", as llama.cpp requires),
/// be for the base's architecture, and for every `X.lora_a` / `X.lora_b` pair the base must have `X`, with
/// `lora_a`'s ne\[0\] its inputs, `lora_b`'s ne\[1\] its outputs, and the two of one rank (`token_embd.weight`'s
/// pair is the other way round). The error names the first misfit, pairs in name order as llama.cpp reads them.
pub fn adapter_fits(adapter: &GgufSummary, base: &GgufSummary, base_tensors: &[TensorShape]) -> Result<(), String> {
    if !adapter.is_lora_adapter() {
        return Err(match (adapter.general_type.as_deref(), adapter.adapter_type.as_deref()) {
            (Some("adapter"), Some(t)) => format!("it is a {t} adapter, not a LoRA"),
            (Some("adapter"), None) => "it is an adapter without an adapter.type".to_owned(),
            (Some(t), _) => format!("it is not an adapter (general.type is {t:?})"),
            (None, _) => "it is not a LoRA adapter".to_owned(),
        });
    }
    if adapter.general_type.is_none() {
        return Err(
            "its tensors are a LoRA's, but llama.cpp needs general.type = adapter and adapter.type = lora".to_owned()
        );
    }
    match (adapter.architecture.as_deref(), base.architecture.as_deref()) {
        (Some(a), Some(b)) if a == b => {}
        (a, b) => {
            return Err(format!(
                "the adapter is for {} models, the base is {}",
                a.unwrap_or("(no architecture)"),
                b.map_or("of no known architecture".to_owned(), |b| format!("a {b} model"))
            ))
        }
    }
    if adapter.adapter_tensors.len() as u64 != adapter.tensors {
        return Err(format!("it has {} tensors, more than the {MAX_ADAPTER_TENSORS} this app reads", adapter.tensors));
    }
    // X -> the shapes of X.lora_a and X.lora_b.
    type Pair<'a> = (Option<&'a [u64]>, Option<&'a [u64]>);
    let mut pairs: BTreeMap<&str, Pair> = BTreeMap::new();
    for (name, shape) in &adapter.adapter_tensors {
        match lora_part(name) {
            Some((x, true)) => pairs.entry(x).or_default().0 = Some(shape),
            Some((x, false)) => pairs.entry(x).or_default().1 = Some(shape),
            // llama.cpp skips norms (it does not apply them yet) and refuses anything else.
            None if name.ends_with("_norm.weight") => {}
            None => return Err(format!("{name} is not a LoRA tensor (it should end in .lora_a or .lora_b)")),
        }
    }
    let base_shapes: HashMap<&str, &[u64]> = base_tensors.iter().map(|(n, s)| (n.as_str(), s.as_slice())).collect();
    for (x, pair) in pairs {
        let (a, b) = match pair {
            (Some(a), Some(b)) => (a, b),
            (Some(_), None) => return Err(format!("{x} has a lora_a but no lora_b")),
            _ => return Err(format!("{x} has a lora_b but no lora_a")),
        };
        let Some(w) = base_shapes.get(x) else {
            return Err(format!("{x} is not in the base: the adapter was made for another model"));
        };
        // The embedding's rows of A are looked up by token, so its pair is the other way round: A is
        // [r, n_vocab] and B [r, n_embd] (llama.cpp's llm_build_inp_embd).
        let embd = x.ends_with("token_embd.weight");
        let (expects_in, expects_out) = if embd { (ne(b, 1), ne(a, 1)) } else { (ne(a, 0), ne(b, 1)) };
        if (ne(w, 0), ne(w, 1)) != (expects_in, expects_out) {
            return Err(format!(
                "{x} is {}×{} in the base, the adapter expects {expects_in}×{expects_out}",
                ne(w, 0),
                ne(w, 1)
            ));
        }
        let (rank_a, rank_b) = if embd { (ne(a, 0), ne(b, 0)) } else { (ne(a, 1), ne(b, 0)) };
        if rank_a != rank_b {
            return Err(format!("{x}: lora_a has rank {rank_a} but lora_b has rank {rank_b}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF v3 file built by hand: metadata entries, then F32 tensors (their data zeros).
    #[derive(Default)]
    struct Gguf {
        kv: Vec<u8>,
        kv_count: u64,
        tensors: Vec<(String, Vec<u64>)>,
    }

    fn string(b: &mut Vec<u8>, s: &str) {
        b.extend((s.len() as u64).to_le_bytes());
        b.extend(s.as_bytes());
    }

    impl Gguf {
        fn kv(mut self, key: &str, t: u32, value: &[u8]) -> Self {
            string(&mut self.kv, key);
            self.kv.extend(t.to_le_bytes());
            self.kv.extend(value);
            self.kv_count += 1;
            self
        }
        fn str(self, key: &str, value: &str) -> Self {
            let mut v = Vec::new();
            string(&mut v, value);
            self.kv(key, 8, &v)
        }
        fn u32(self, key: &str, value: u32) -> Self {
            self.kv(key, 4, &value.to_le_bytes())
        }
        fn f32(self, key: &str, value: f32) -> Self {
            self.kv(key, 6, &value.to_le_bytes())
        }
        fn tensor(mut self, name: &str, ne: &[u64]) -> Self {
            self.tensors.push((name.to_owned(), ne.to_vec()));
            self
        }
        /// A pair `X.lora_a` (ne [n_in, r]) and `X.lora_b` (ne [r, n_out]).
        fn lora(self, x: &str, n_in: u64, n_out: u64, r: u64) -> Self {
            self.tensor(&format!("{x}.lora_a"), &[n_in, r]).tensor(&format!("{x}.lora_b"), &[r, n_out])
        }
        fn bytes(&self) -> Vec<u8> {
            let mut b = b"GGUF".to_vec();
            b.extend(3u32.to_le_bytes());
            b.extend((self.tensors.len() as u64).to_le_bytes());
            b.extend(self.kv_count.to_le_bytes());
            b.extend(&self.kv);
            let mut offset = 0u64;
            for (name, ne) in &self.tensors {
                string(&mut b, name);
                b.extend((ne.len() as u32).to_le_bytes());
                ne.iter().for_each(|n| b.extend(n.to_le_bytes()));
                b.extend(0u32.to_le_bytes());
                b.extend(offset.to_le_bytes());
                offset += 4 * ne.iter().product::<u64>();
            }
            b.resize(b.len() + offset as usize, 0);
            b
        }
        fn parse(&self) -> GgufSummary {
            let b = self.bytes();
            parse(&b, b.len() as u64).unwrap()
        }
    }

    fn lora_adapter() -> Gguf {
        Gguf::default()
            .str("general.architecture", "llama")
            .str("general.type", "adapter")
            .str("adapter.type", "lora")
            .f32("adapter.lora.alpha", 8.0)
    }

    /// The tensors of a 2-layer llama base `n_embd` wide (kv half as wide, ffn twice), as tiny_llama.py makes them.
    fn base_tensors(n_embd: u64) -> Vec<TensorShape> {
        let mut t = vec![("token_embd.weight".to_owned(), vec![n_embd, 267])];
        for b in 0..2 {
            let w = |n: &str, ne: [u64; 2]| (format!("blk.{b}.{n}.weight"), ne.to_vec());
            t.extend([
                w("attn_norm", [n_embd, 1]),
                w("attn_q", [n_embd, n_embd]),
                w("attn_k", [n_embd, n_embd / 2]),
                w("attn_v", [n_embd, n_embd / 2]),
                w("ffn_up", [n_embd, 2 * n_embd]),
                w("ffn_down", [2 * n_embd, n_embd]),
            ]);
        }
        t
    }

    fn base() -> GgufSummary {
        GgufSummary { architecture: Some("llama".into()), ..Default::default() }
    }

    #[test]
    fn an_adapters_metadata_is_read() {
        let s = lora_adapter()
            .u32("general.base_model.count", 2)
            .str("general.base_model.0.name", "Llama 3.1 8B")
            .str("general.base_model.0.organization", "Meta Llama")
            .str("general.base_model.0.repo_url", "https://huggingface.co/meta-llama/Llama-3.1-8B")
            .str("general.base_model.1.name", "Other")
            .str("general.base_model.9.name", "past the bound, not kept")
            .str("general.base_model.0.description", "not kept")
            .lora("blk.0.attn_q.weight", 64, 64, 4)
            .parse();
        assert_eq!(s.general_type.as_deref(), Some("adapter"));
        assert_eq!(s.adapter_type.as_deref(), Some("lora"));
        assert_eq!(s.lora_alpha, Some(8.0));
        assert_eq!(
            s.base_models,
            [
                BaseModelRef {
                    name: Some("Llama 3.1 8B".into()),
                    organization: Some("Meta Llama".into()),
                    repo_url: Some("https://huggingface.co/meta-llama/Llama-3.1-8B".into()),
                },
                BaseModelRef { name: Some("Other".into()), ..Default::default() },
            ]
        );
        assert!(!s.metadata.contains_key("general.base_model.9.name"));
        assert!(!s.metadata.contains_key("general.base_model.0.description"));
        assert_eq!(
            s.adapter_tensors,
            [
                ("blk.0.attn_q.weight.lora_a".to_owned(), vec![64, 4]),
                ("blk.0.attn_q.weight.lora_b".to_owned(), vec![4, 64])
            ]
        );
        assert!(s.is_lora_adapter());
        // An alpha of another number type is read as well; one of another kind is not.
        let s = Gguf::default().kv("adapter.lora.alpha", 10, &16u64.to_le_bytes()).parse();
        assert_eq!(s.lora_alpha, Some(16.0));
        let s = Gguf::default().f32("adapter.lora.alpha", 0.1).parse();
        assert_eq!(s.lora_alpha, Some(0.1));
        let s = Gguf::default().str("adapter.lora.alpha", "sixteen").parse();
        assert_eq!(s.lora_alpha, None);
    }

    #[test]
    fn a_model_keeps_no_tensor_names() {
        let s = Gguf::default()
            .str("general.architecture", "llama")
            .tensor("token_embd.weight", &[64, 267])
            .tensor("blk.0.attn_q.weight", &[64, 64])
            .parse();
        assert!(s.adapter_tensors.is_empty() && s.base_models.is_empty());
        assert_eq!((s.general_type.as_deref(), s.adapter_type.as_deref(), s.lora_alpha), (None, None, None));
        assert!(!s.is_lora_adapter());
    }

    #[test]
    fn what_is_a_lora_adapter() {
        assert!(lora_adapter().lora("w", 8, 8, 2).parse().is_lora_adapter());
        // No general.type: the tensor names decide.
        let untyped = Gguf::default().str("general.architecture", "llama").lora("w", 8, 8, 2);
        assert!(untyped.parse().is_lora_adapter());
        assert!(!untyped.tensor("output.weight", &[8, 8]).parse().is_lora_adapter());
        assert!(!Gguf::default().parse().is_lora_adapter(), "no tensors at all");
        // A type says otherwise.
        let model = Gguf::default().str("general.type", "model").lora("w", 8, 8, 2);
        assert!(!model.parse().is_lora_adapter());
        let vector = Gguf::default().str("general.type", "adapter").str("adapter.type", "control_vector");
        assert!(!vector.tensor("direction.1", &[64]).parse().is_lora_adapter());
        // An adapter keeps all its tensors, norms included, which llama.cpp reads past.
        let s = lora_adapter().lora("w", 8, 8, 2).tensor("blk.0.attn_norm.weight", &[8]).parse();
        assert!(s.is_lora_adapter());
        assert_eq!(s.adapter_tensors.len(), 3);
    }

    #[test]
    fn an_adapter_fits_the_base_it_was_made_for() {
        let mut a = lora_adapter();
        for b in 0..2 {
            a = a
                .lora(&format!("blk.{b}.attn_q.weight"), 64, 64, 4)
                .lora(&format!("blk.{b}.attn_k.weight"), 64, 32, 4)
                .lora(&format!("blk.{b}.ffn_down.weight"), 128, 64, 4);
        }
        // token_embd's pair is the other way round: A is [r, n_vocab] (rows looked up by token), B [r, n_embd].
        let a = a.tensor("token_embd.weight.lora_a", &[4, 267]).tensor("token_embd.weight.lora_b", &[4, 64]);
        assert_eq!(adapter_fits(&a.parse(), &base(), &base_tensors(64)), Ok(()));
    }

    #[test]
    fn an_adapter_that_does_not_fit_says_where() {
        let fits = |a: Gguf, base_summary: &GgufSummary| adapter_fits(&a.parse(), base_summary, &base_tensors(64));
        // Made for a base twice as wide: the first pair in name order, as llama.cpp reads them.
        let wide = lora_adapter().lora("blk.0.attn_q.weight", 128, 128, 4).lora("blk.0.attn_k.weight", 128, 64, 4);
        assert_eq!(
            fits(wide, &base()).unwrap_err(),
            "blk.0.attn_k.weight is 64×32 in the base, the adapter expects 128×64"
        );
        let rank = lora_adapter()
            .tensor("blk.0.attn_q.weight.lora_a", &[64, 4])
            .tensor("blk.0.attn_q.weight.lora_b", &[8, 64]);
        assert_eq!(fits(rank, &base()).unwrap_err(), "blk.0.attn_q.weight: lora_a has rank 4 but lora_b has rank 8");
        let missing = lora_adapter().lora("blk.5.attn_q.weight", 64, 64, 4);
        assert!(fits(missing, &base()).unwrap_err().starts_with("blk.5.attn_q.weight is not in the base"));
        let half = lora_adapter().tensor("blk.0.attn_q.weight.lora_a", &[64, 4]);
        assert_eq!(fits(half, &base()).unwrap_err(), "blk.0.attn_q.weight has a lora_a but no lora_b");
        let odd = lora_adapter().lora("blk.0.attn_q.weight", 64, 64, 4).tensor("blk.0.attn_q.weight", &[64, 64]);
        assert!(fits(odd, &base()).unwrap_err().contains("is not a LoRA tensor"));
        let qwen = GgufSummary { architecture: Some("qwen2".into()), ..Default::default() };
        let ok = || lora_adapter().lora("blk.0.attn_q.weight", 64, 64, 4);
        assert_eq!(fits(ok(), &qwen).unwrap_err(), "the adapter is for llama models, the base is a qwen2 model");
        let model = Gguf::default().str("general.architecture", "llama").tensor("blk.0.attn_q.weight", &[64, 64]);
        assert_eq!(fits(model, &base()).unwrap_err(), "it is not a LoRA adapter");
        let untyped = Gguf::default().str("general.architecture", "llama").lora("blk.0.attn_q.weight", 64, 64, 4);
        assert!(fits(untyped, &base()).unwrap_err().contains("llama.cpp needs general.type = adapter"));
    }

    #[test]
    fn tensor_shapes_are_read_from_a_file_whatever_its_header_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        // A header past the first read (1 MB), so it is read again, longer.
        let big = "x".repeat(1 << 20);
        let g = Gguf::default()
            .str("general.architecture", "llama")
            .str("general.description", &big)
            .tensor("token_embd.weight", &[64, 267])
            .tensor("blk.0.attn_q.weight", &[64, 64]);
        std::fs::write(&path, g.bytes()).unwrap();
        assert_eq!(
            read_tensor_shapes(&path).unwrap(),
            [("token_embd.weight".to_owned(), vec![64, 267]), ("blk.0.attn_q.weight".to_owned(), vec![64, 64])]
        );
        std::fs::write(&path, b"GGUF\x03\0\0\0").unwrap();
        assert_eq!(read_tensor_shapes(&path).unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert_eq!(read_tensor_shapes(&dir.path().join("none")).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    /// The fixtures tests/fixtures/tiny_llama.py and tiny_lora.py write, when target/py-venv has `gguf`: the
    /// adapter llama-server applies fits its base, the one written for a base twice as wide does not.
    #[test]
    fn the_tiny_lora_fixture_fits_the_tiny_llama_one() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = std::env::var_os("MM_TEST_PYTHON")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| root.join("target/py-venv/bin/python"));
        if !python.exists() {
            eprintln!("skipped: {} is missing (scripts/setup test installs it)", python.display());
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let run = |script: &str, args: &[&str]| {
            let out = std::process::Command::new(&python)
                .arg(root.join("tests/fixtures").join(script))
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        };
        run("tiny_llama.py", &["base.gguf"]);
        run("tiny_lora.py", &["lora.gguf", "1", "--base-name", "tiny-llama-1", "--base-repo", "acme/tiny-llama"]);
        run("tiny_lora.py", &["wide.gguf", "--embd", "128"]);
        let read = |name: &str| {
            let bytes = std::fs::read(dir.path().join(name)).unwrap();
            parse(&bytes, bytes.len() as u64).unwrap()
        };
        let (base, lora, wide) = (read("base.gguf"), read("lora.gguf"), read("wide.gguf"));
        assert!(!base.is_lora_adapter() && base.adapter_tensors.is_empty());
        assert!(lora.is_lora_adapter(), "{lora:?}");
        assert_eq!((lora.lora_alpha, lora.tensors, lora.adapter_tensors.len()), (Some(8.0), 28, 28));
        assert_eq!(
            lora.base_models,
            [BaseModelRef {
                name: Some("tiny-llama-1".into()),
                organization: Some("acme".into()),
                repo_url: Some("https://huggingface.co/acme/tiny-llama".into()),
            }]
        );
        let shapes = read_tensor_shapes(&dir.path().join("base.gguf")).unwrap();
        assert_eq!(shapes.len() as u64, base.tensors);
        assert_eq!(adapter_fits(&lora, &base, &shapes), Ok(()));
        assert_eq!(
            adapter_fits(&wide, &base, &shapes).unwrap_err(),
            "blk.0.attn_k.weight is 64×32 in the base, the adapter expects 128×64"
        );
    }
}
