//! What a file or folder on disk is, told by its content rather than its name: GGUF (magic and header),
//! safetensors (header length and JSON), ONNX (protobuf model fields), PyTorch (zip with `data.pkl`, or a bare
//! pickle), or a Hugging Face snapshot folder (`config.json` with weights). Hostile input — a symlink loop, a
//! FIFO, a device, a truncated or lying header — gets a clear error and never blocks or allocates what a header
//! claims.

use super::LocalError;
use crate::compat::CompatError;
use crate::model::{ModelFormat, ModelType};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A safetensors header is JSON about the tensors; 100 MB is what the format's own reader allows.
const MAX_SAFETENSORS_HEADER: u64 = 100 << 20;
const SNIFF: usize = 64 << 10;

/// A model found on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    pub path: PathBuf,
    pub format: ModelFormat,
    /// For a folder, its weight files; for a file, itself.
    pub weights: Vec<PathBuf>,
    /// Bytes of every weight file.
    pub size: u64,
    /// GGUF `general.architecture`, when read.
    pub architecture: Option<String>,
    pub is_folder: bool,
}

impl Detected {
    /// The type its content suggests: embedding and speech architectures by name, else text generation for
    /// GGUF; other formats are typed from `config.json` by the library, `Other` here.
    pub fn guessed_type(&self) -> ModelType {
        let arch = self.architecture.as_deref().unwrap_or("").to_ascii_lowercase();
        if arch.contains("bert") || arch.contains("embed") || arch == "t5encoder" {
            ModelType::Embedding
        } else if arch.contains("whisper") {
            ModelType::AudioToText
        } else if arch.contains("clip") && !arch.contains("llava") {
            ModelType::ImageToText
        } else if self.format == ModelFormat::Gguf {
            ModelType::TextGeneration
        } else {
            ModelType::Other
        }
    }
}

/// What `path` holds. `deep` also parses a GGUF header in full (for import); listing only sniffs.
pub fn detect(path: &Path, deep: bool) -> Result<Detected, LocalError> {
    let meta = metadata(path)?;
    if meta.is_dir() {
        return detect_folder(path);
    }
    let (format, architecture) = sniff_file(path, meta.len(), deep)?;
    Ok(Detected {
        path: path.to_path_buf(),
        format,
        weights: vec![path.to_path_buf()],
        size: meta.len(),
        architecture,
        is_folder: false,
    })
}

/// The metadata of what `path` points to, refusing what is not a plain file or folder before anything opens it
/// (opening a FIFO would wait forever for a writer).
pub fn metadata(path: &Path) -> Result<fs::Metadata, LocalError> {
    let unreadable = |reason: String| LocalError::Unreadable { path: path.display().to_string(), reason };
    let meta = fs::metadata(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => unreadable("it is a symbolic link that loops back on itself".into()),
        _ if e.kind() == std::io::ErrorKind::NotFound => {
            if fs::symlink_metadata(path).is_ok() {
                unreadable("it is a symbolic link to nothing".into())
            } else {
                LocalError::NotFound(path.display().to_string())
            }
        }
        _ => unreadable(e.to_string()),
    })?;
    use std::os::unix::fs::FileTypeExt;
    let ft = meta.file_type();
    let what = if ft.is_fifo() {
        Some("a named pipe (FIFO)")
    } else if ft.is_socket() {
        Some("a socket")
    } else if ft.is_block_device() || ft.is_char_device() {
        Some("a device")
    } else {
        None
    };
    if let Some(what) = what {
        return Err(LocalError::NotAModel {
            path: path.display().to_string(),
            reason: format!("it is {what}, not a file"),
        });
    }
    Ok(meta)
}

fn not_a_model(path: &Path, reason: impl Into<String>) -> LocalError {
    LocalError::NotAModel { path: path.display().to_string(), reason: reason.into() }
}

fn invalid(path: &Path, err: CompatError) -> LocalError {
    LocalError::Invalid { path: path.display().to_string(), reason: err.to_string() }
}

fn io(path: &Path, e: std::io::Error) -> LocalError {
    LocalError::Unreadable { path: path.display().to_string(), reason: e.to_string() }
}

/// The format of one file, from its first bytes (and its header when `deep`).
pub fn sniff_file(path: &Path, size: u64, deep: bool) -> Result<(ModelFormat, Option<String>), LocalError> {
    if size == 0 {
        return Err(not_a_model(path, "it is empty"));
    }
    let mut file = File::open(path).map_err(|e| io(path, e))?;
    let mut head = vec![0u8; SNIFF.min(size as usize)];
    file.read_exact(&mut head).map_err(|e| io(path, e))?;

    if head.starts_with(b"GGUF") {
        let architecture = if deep {
            crate::compat::local::read_gguf(path).map_err(|e| invalid(path, e))?.architecture
        } else {
            first_architecture(&head)
        };
        return Ok((ModelFormat::Gguf, architecture));
    }
    if safetensors_len(&head, size).is_some() {
        if deep {
            crate::compat::local::read_safetensors(path).map_err(|e| invalid(path, e))?;
        }
        return Ok((ModelFormat::Safetensors, None));
    }
    if head.starts_with(b"PK\x03\x04") {
        return if zip_is_pytorch(&head) {
            Ok((ModelFormat::Pytorch, None))
        } else {
            Err(not_a_model(path, "it is a zip archive, not a PyTorch checkpoint"))
        };
    }
    if head.len() >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1]) {
        return Ok((ModelFormat::Pytorch, None));
    }
    if looks_like_onnx(&head) {
        return Ok((ModelFormat::Onnx, None));
    }
    Err(not_a_model(path, "it is not a model file this app knows (GGUF, safetensors, ONNX or PyTorch)"))
}

/// The safetensors header length, when the first bytes look like one: a length that fits the file, then `{`.
fn safetensors_len(head: &[u8], size: u64) -> Option<u64> {
    if head.len() < 9 || head[8] != b'{' {
        return None;
    }
    let n = u64::from_le_bytes(head[..8].try_into().ok()?);
    ((2..=MAX_SAFETENSORS_HEADER).contains(&n) && n <= size.saturating_sub(8)).then_some(n)
}

/// A zip whose first entry is a PyTorch archive member (`archive/data.pkl`, `*/version`, `*/data/0`).
fn zip_is_pytorch(head: &[u8]) -> bool {
    if head.len() < 30 {
        return false;
    }
    let len = u16::from_le_bytes([head[26], head[27]]) as usize;
    let Some(name) = head.get(30..30 + len) else { return false };
    let name = String::from_utf8_lossy(name);
    name.ends_with("data.pkl") || name.ends_with("/version") || name.contains("/data/") || name.ends_with(".pkl")
}

/// An ONNX `ModelProto` starts with `ir_version` (field 1, a small varint), followed by another of its fields.
fn looks_like_onnx(head: &[u8]) -> bool {
    if head.len() < 4 || head[0] != 0x08 || !(1..=30).contains(&head[1]) {
        return false;
    }
    // producer_name, producer_version, domain, model_version, doc_string, graph, opset_import
    matches!(head[2], 0x12 | 0x1a | 0x22 | 0x28 | 0x32 | 0x3a | 0x42)
}

/// `general.architecture` when it is the first key (as llama.cpp writes it), read from the first bytes only.
fn first_architecture(head: &[u8]) -> Option<String> {
    let u64_at = |at: usize| head.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()));
    let key_len = u64_at(24)? as usize;
    let key = head.get(32..32usize.checked_add(key_len)?)?;
    if key != b"general.architecture" {
        return None;
    }
    let at = 32 + key_len;
    if head.get(at..at + 4)? != 8u32.to_le_bytes() {
        return None;
    }
    let len = u64_at(at + 4)? as usize;
    let value = head.get(at + 12..(at + 12).checked_add(len)?)?;
    String::from_utf8(value.to_vec()).ok()
}

/// Files a folder's weights may be in.
fn is_weight_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [".safetensors", ".gguf", ".bin", ".onnx", ".pt", ".pth"].iter().any(|ext| n.ends_with(ext))
}

/// A Hugging Face snapshot folder: `config.json` (or `model_index.json`) and weights somewhere inside.
fn detect_folder(path: &Path) -> Result<Detected, LocalError> {
    let has_config = path.join("config.json").is_file() || path.join("model_index.json").is_file();
    if !has_config {
        return Err(not_a_model(path, "it is a folder without config.json: drop the model files, or a model folder"));
    }
    let mut weights = Vec::new();
    let mut formats = Vec::new();
    let mut stack = vec![(path.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| io(&dir, e))?;
        for entry in entries.flatten() {
            let p = entry.path();
            let Ok(meta) = fs::metadata(&p) else { continue };
            if meta.is_dir() && depth < 3 && !entry.file_name().to_string_lossy().starts_with('.') {
                stack.push((p, depth + 1));
            } else if meta.is_file() && is_weight_name(&entry.file_name().to_string_lossy()) {
                if let Ok((format, _)) = sniff_file(&p, meta.len(), false) {
                    formats.push((p.to_string_lossy().to_string(), meta.len(), format));
                    weights.push(p);
                }
            }
        }
    }
    if weights.is_empty() {
        return Err(not_a_model(path, "it has config.json but no weights (safetensors, GGUF, ONNX or PyTorch)"));
    }
    weights.sort();
    let format = ModelFormat::dominant(formats.iter().map(|(p, s, _)| (p.as_str(), *s)));
    let size = formats.iter().map(|(_, s, _)| s).sum();
    Ok(Detected { path: path.to_path_buf(), format, weights, size, architecture: None, is_folder: true })
}
