//! What a model is for, and what its weights are stored as, inferred from what the hub said (`pipeline_tag`,
//! tags) and from the files themselves (`config.json` architectures, `model_index.json`, sentence-transformers
//! modules, GGUF weights), unless the user chose.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ModelType {
    TextGeneration,
    TextToImage,
    ImageToText,
    AudioToText,
    TextToAudio,
    Embedding,
    Classification,
    Other,
}

impl ModelType {
    pub const ALL: [ModelType; 8] = [
        ModelType::TextGeneration,
        ModelType::TextToImage,
        ModelType::ImageToText,
        ModelType::AudioToText,
        ModelType::TextToAudio,
        ModelType::Embedding,
        ModelType::Classification,
        ModelType::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ModelType::TextGeneration => "text-generation",
            ModelType::TextToImage => "text-to-image",
            ModelType::ImageToText => "image-to-text",
            ModelType::AudioToText => "audio-to-text",
            ModelType::TextToAudio => "text-to-audio",
            ModelType::Embedding => "embedding",
            ModelType::Classification => "classification",
            ModelType::Other => "other",
        }
    }

    /// The type as people read it (the window's labels say the same).
    pub fn label(self) -> &'static str {
        match self {
            ModelType::TextGeneration => "Text generation",
            ModelType::TextToImage => "Text to image",
            ModelType::ImageToText => "Image to text",
            ModelType::AudioToText => "Speech to text",
            ModelType::TextToAudio => "Text to speech",
            ModelType::Embedding => "Embedding",
            ModelType::Classification => "Classification",
            ModelType::Other => "Other",
        }
    }

    /// The type a hub `pipeline_tag` (or a task tag) stands for.
    pub fn from_pipeline_tag(tag: &str) -> Option<ModelType> {
        Some(match tag {
            "text-generation" | "text2text-generation" | "conversational" | "summarization" | "translation" => {
                ModelType::TextGeneration
            }
            "text-to-image" | "image-to-image" | "unconditional-image-generation" => ModelType::TextToImage,
            "image-to-text" | "image-text-to-text" | "visual-question-answering" | "document-question-answering" => {
                ModelType::ImageToText
            }
            "automatic-speech-recognition" => ModelType::AudioToText,
            "text-to-speech" | "text-to-audio" => ModelType::TextToAudio,
            "feature-extraction" | "sentence-similarity" => ModelType::Embedding,
            "text-classification"
            | "token-classification"
            | "zero-shot-classification"
            | "image-classification"
            | "audio-classification"
            | "zero-shot-image-classification" => ModelType::Classification,
            _ => return None,
        })
    }

    /// The type a transformers architecture name suggests (`LlamaForCausalLM`, `WhisperForConditionalGeneration`).
    pub fn from_architecture(arch: &str) -> Option<ModelType> {
        let a = arch.to_ascii_lowercase();
        let has = |s: &str| a.contains(s);
        Some(if has("whisper") || has("ctc") || has("speechseq2seq") || has("forspeechseq2seq") {
            ModelType::AudioToText
        } else if has("texttospeech") || has("vits") || has("bark") || has("musicgen") || has("forspeech") {
            ModelType::TextToAudio
        } else if has("llava")
            || has("vl") && has("forconditionalgeneration")
            || has("blip")
            || has("visionencoderdecoder")
            || has("forimagetexttotext")
            || has("vision2seq")
        {
            ModelType::ImageToText
        } else if has("forcausallm") || has("forconditionalgeneration") || has("lmheadmodel") || has("forseq2seqlm") {
            ModelType::TextGeneration
        } else if has("forsequenceclassification")
            || has("fortokenclassification")
            || has("forimageclassification")
            || has("foraudioclassification")
        {
            ModelType::Classification
        } else if a.ends_with("model") && !a.contains("for") {
            // BertModel, XLMRobertaModel, CLIPModel, ...: bare encoders, used for embeddings.
            ModelType::Embedding
        } else {
            return None;
        })
    }
}

impl std::fmt::Display for ModelType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a model's type came from, from most to least trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TypeOrigin {
    User,
    Hub,
    Files,
    Config,
    Unknown,
}

/// What the type is inferred from.
#[derive(Debug, Default)]
pub struct TypeEvidence<'a> {
    pub pipeline_tag: Option<&'a str>,
    pub tags: &'a [String],
    pub library_name: Option<&'a str>,
    pub architectures: &'a [String],
    pub file_paths: &'a [&'a str],
}

/// The best guess, and where it came from.
pub fn infer_type(e: &TypeEvidence) -> (ModelType, TypeOrigin) {
    if let Some(t) = e.pipeline_tag.and_then(ModelType::from_pipeline_tag) {
        return (t, TypeOrigin::Hub);
    }
    if e.library_name == Some("sentence-transformers") || e.tags.iter().any(|t| t == "sentence-transformers") {
        return (ModelType::Embedding, TypeOrigin::Hub);
    }
    if let Some(t) = e.tags.iter().find_map(|t| ModelType::from_pipeline_tag(t)) {
        return (t, TypeOrigin::Hub);
    }
    let has = |name: &str| e.file_paths.contains(&name);
    if has("model_index.json") {
        return (ModelType::TextToImage, TypeOrigin::Files);
    }
    if has("modules.json") || has("config_sentence_transformers.json") {
        return (ModelType::Embedding, TypeOrigin::Files);
    }
    if let Some(t) = e.architectures.iter().find_map(|a| ModelType::from_architecture(a)) {
        return (t, TypeOrigin::Config);
    }
    if e.file_paths.iter().any(|p| p.ends_with(".gguf")) {
        return (ModelType::TextGeneration, TypeOrigin::Files);
    }
    (ModelType::Other, TypeOrigin::Unknown)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelFormat {
    Safetensors,
    Gguf,
    Onnx,
    /// PyTorch `.bin`, `.pt`, `.pth`.
    Pytorch,
    Other,
}

impl ModelFormat {
    /// The weight format a file name says, or `None` for files that are not weights (configs, tokenizers, ...).
    pub fn of_path(path: &str) -> Option<ModelFormat> {
        let lower = path.to_ascii_lowercase();
        let ext = lower.rsplit('.').next().unwrap_or("");
        Some(match ext {
            "safetensors" => ModelFormat::Safetensors,
            "gguf" => ModelFormat::Gguf,
            "onnx" => ModelFormat::Onnx,
            "bin" | "pt" | "pth" | "ckpt" if !lower.ends_with("training_args.bin") => ModelFormat::Pytorch,
            _ => return None,
        })
    }

    /// The format holding the most bytes among `(path, size)` files; `Other` when none are weights.
    pub fn dominant<'a>(files: impl IntoIterator<Item = (&'a str, u64)>) -> ModelFormat {
        let mut bytes: Vec<(ModelFormat, u64)> = Vec::new();
        for (path, size) in files {
            if let Some(format) = ModelFormat::of_path(path) {
                match bytes.iter_mut().find(|(f, _)| *f == format) {
                    Some((_, b)) => *b += size,
                    None => bytes.push((format, size)),
                }
            }
        }
        bytes.into_iter().max_by_key(|(_, b)| *b).map(|(f, _)| f).unwrap_or(ModelFormat::Other)
    }
}

/// A name that is no model type, said once for every face.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a model type: use one of {known}", known = ModelType::ALL.map(|t| t.as_str()).join(", "))]
pub struct UnknownType(pub String);

impl crate::error::Coded for UnknownType {
    fn code(&self) -> crate::error::ErrorCode {
        crate::error::ErrorCode::InvalidInput
    }
}

impl std::str::FromStr for ModelType {
    type Err = UnknownType;

    fn from_str(s: &str) -> Result<ModelType, UnknownType> {
        ModelType::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| UnknownType(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(pipeline: Option<&str>, tags: &[&str], arch: &[&str], files: &[&str]) -> (ModelType, TypeOrigin) {
        let tags: Vec<String> = tags.iter().map(|s| s.to_string()).collect();
        let arch: Vec<String> = arch.iter().map(|s| s.to_string()).collect();
        infer_type(&TypeEvidence {
            pipeline_tag: pipeline,
            tags: &tags,
            library_name: None,
            architectures: &arch,
            file_paths: files,
        })
    }

    #[test]
    fn the_hub_says_first_then_files_then_config() {
        assert_eq!(
            infer(Some("automatic-speech-recognition"), &[], &["LlamaForCausalLM"], &[]),
            (ModelType::AudioToText, TypeOrigin::Hub)
        );
        assert_eq!(
            infer(None, &["sentence-transformers"], &["BertModel"], &[]),
            (ModelType::Embedding, TypeOrigin::Hub)
        );
        assert_eq!(
            infer(None, &[], &[], &["model_index.json", "unet/x.safetensors"]),
            (ModelType::TextToImage, TypeOrigin::Files)
        );
        assert_eq!(infer(None, &[], &["BertModel"], &["modules.json"]), (ModelType::Embedding, TypeOrigin::Files));
        assert_eq!(
            infer(None, &[], &["Qwen2ForCausalLM"], &["config.json"]),
            (ModelType::TextGeneration, TypeOrigin::Config)
        );
        assert_eq!(infer(None, &[], &[], &["model-q4_k_m.gguf"]), (ModelType::TextGeneration, TypeOrigin::Files));
        assert_eq!(infer(None, &[], &[], &["README.md"]), (ModelType::Other, TypeOrigin::Unknown));
    }

    #[test]
    fn architectures_map_to_types() {
        for (arch, t) in [
            ("LlamaForCausalLM", ModelType::TextGeneration),
            ("T5ForConditionalGeneration", ModelType::TextGeneration),
            ("WhisperForConditionalGeneration", ModelType::AudioToText),
            ("Wav2Vec2ForCTC", ModelType::AudioToText),
            ("SpeechT5ForTextToSpeech", ModelType::TextToAudio),
            ("VitsModel", ModelType::TextToAudio),
            ("LlavaForConditionalGeneration", ModelType::ImageToText),
            ("Qwen2VLForConditionalGeneration", ModelType::ImageToText),
            ("BertForSequenceClassification", ModelType::Classification),
            ("XLMRobertaModel", ModelType::Embedding),
        ] {
            assert_eq!(ModelType::from_architecture(arch), Some(t), "{arch}");
        }
        assert_eq!(ModelType::from_architecture("Unknown"), None);
    }

    #[test]
    fn formats_by_extension_and_the_dominant_one_by_bytes() {
        assert_eq!(ModelFormat::of_path("a/model.SafeTensors"), Some(ModelFormat::Safetensors));
        assert_eq!(ModelFormat::of_path("pytorch_model.bin"), Some(ModelFormat::Pytorch));
        assert_eq!(ModelFormat::of_path("training_args.bin"), None);
        assert_eq!(ModelFormat::of_path("config.json"), None);
        let files = [("model.onnx", 10), ("model.safetensors", 500), ("config.json", 9000)];
        assert_eq!(ModelFormat::dominant(files), ModelFormat::Safetensors);
        assert_eq!(ModelFormat::dominant([("README.md", 5)]), ModelFormat::Other);
    }

    #[test]
    fn type_names_round_trip() {
        for t in ModelType::ALL {
            assert_eq!(t.as_str().parse::<ModelType>(), Ok(t));
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
        }
    }
}
