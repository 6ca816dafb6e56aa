//! GGUF (v2 and v3, little-endian): magic, version, tensor and metadata counts, typed metadata, tensor infos.
//! Parsed from a prefix of the file: every count and length is checked against the bytes actually there, so a
//! hostile file cannot make the parser allocate or loop beyond its size. When the prefix ends before the header
//! does but the file goes on, [`CompatError::NeedMore`] says how much to read.

use super::CompatError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ts_rs::TS;

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
    /// The metadata the estimate reads (`general.*` names and the architecture's sizes), as text; every other
    /// key is read past without being kept, so a header of a million keys costs no memory.
    pub metadata: BTreeMap<String, String>,
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

/// Whether the estimate reads this key.
fn wanted(key: &[u8]) -> bool {
    matches!(key, b"general.architecture" | b"general.name" | b"general.file_type")
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
    let mut by_type: BTreeMap<&'static str, u64> = BTreeMap::new();
    for _ in 0..tensor_count {
        let name_len = r.u64()?;
        r.take(name_len)?;
        let dims = r.u32()?;
        if dims == 0 || dims > MAX_DIMS {
            return Err(CompatError::invalid("GGUF", format!("a tensor with {dims} dimensions")));
        }
        let mut count = 1u64;
        for _ in 0..dims {
            count = count
                .checked_mul(r.u64()?)
                .ok_or_else(|| CompatError::invalid("GGUF", "a tensor's shape overflows"))?;
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
    Ok(s)
}
