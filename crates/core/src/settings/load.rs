//! How one model is run, as its owner wants it: its load settings, each declared once in the table at the bottom
//! of this file (its field, key, kind with bounds, the `llama-server` flag it becomes, label and help). From the
//! row come the field of [`LoadSettings`], its check ([`LoadSettings::check`]), `mm load-settings get` and `set`
//! ([`LoadSettings::get`], [`LoadSettings::set`]), the flags a load passes ([`LoadSettings::args`]), and the bounds
//! the window checks ([`load_table`]). They are kept in the settings file under the model's id
//! ([`super::Settings::load_settings`]); unset fields leave the choice to the app (the context and GPU layers
//! from the estimate, llama-server's own defaults for the rest).
//!
//! `extraArgs` are more `llama-server` flags, checked before use: flags this app owns (the address, the model,
//! the key, adapters, the role) and flags a row declares are refused with the reason. They can name files and
//! programs, so they are the machine's to change: `mm serve`'s API refuses a change of them
//! (`crates/server/src/machine_only.rs`), and `mm load-settings set` and the window change them on the machine.

use super::SettingsError;
use crate::compat::estimate::{KvCacheType, Sizing};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What a load setting holds, with its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, TS)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum LoadKind {
    /// A whole number from `min` to `max`, or unset.
    Count { min: u64, max: u64 },
    /// A number from `min` to `max`, or unset.
    Number { min: f64, max: f64 },
    /// One of `choices`, or unset.
    Choice {
        #[ts(type = "string[]")]
        choices: &'static [&'static str],
    },
    /// On or off.
    Switch,
    /// More `llama-server` arguments.
    Args,
}

/// How a row becomes `llama-server` arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// The launch plan uses it (the context, the GPU layers, the parallel requests).
    Plan,
    /// The flag, then the value.
    Valued(&'static str),
    /// The flag, then the value, for each of these flags (the K and V caches).
    ValuedEach(&'static [&'static str]),
    /// The flag alone, when on.
    Switch(&'static str),
    /// The values themselves.
    Extra,
}

/// One load setting as `mm load-settings`, the window and the README describe it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LoadSettingInfo {
    #[ts(type = "string")]
    pub key: &'static str,
    pub kind: LoadKind,
    /// The `llama-server` flag it sets, if one.
    #[ts(type = "string | null")]
    pub flag: Option<&'static str>,
    #[ts(type = "string")]
    pub label: &'static str,
    #[ts(type = "string")]
    pub help: &'static str,
}

fn invalid(key: &'static str, problem: impl Into<String>) -> SettingsError {
    SettingsError::Invalid { key, problem: problem.into() }
}

/// How a load setting's value is checked, shown and parsed (empty text: unset).
trait Knob: Sized {
    fn check(&self, key: &'static str, kind: LoadKind) -> Result<(), SettingsError>;
    fn text(&self) -> String;
    fn parse(key: &'static str, text: &str) -> Result<Self, SettingsError>;
    /// Its value as a flag's argument (none: unset, or off).
    fn value(&self) -> Vec<String>;
}

impl Knob for Option<u64> {
    fn check(&self, key: &'static str, kind: LoadKind) -> Result<(), SettingsError> {
        match (self, kind) {
            (Some(n), LoadKind::Count { min, max }) if !(min..=max).contains(n) => {
                Err(invalid(key, format!("must be from {min} to {max}, not {n}")))
            }
            _ => Ok(()),
        }
    }
    fn text(&self) -> String {
        self.map(|n| n.to_string()).unwrap_or_default()
    }
    fn parse(key: &'static str, text: &str) -> Result<Self, SettingsError> {
        let text = text.trim();
        if text.is_empty() || text == "auto" {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|_| invalid(key, format!("must be a whole number, or empty for auto, not \"{text}\"")))
    }
    fn value(&self) -> Vec<String> {
        self.iter().map(u64::to_string).collect()
    }
}

impl Knob for Option<f64> {
    fn check(&self, key: &'static str, kind: LoadKind) -> Result<(), SettingsError> {
        match (self, kind) {
            (Some(x), _) if !x.is_finite() => Err(invalid(key, "must be a number")),
            (Some(x), LoadKind::Number { min, max }) if !(min..=max).contains(x) => {
                Err(invalid(key, format!("must be from {min} to {max}, not {x}")))
            }
            _ => Ok(()),
        }
    }
    fn text(&self) -> String {
        self.map(|x| x.to_string()).unwrap_or_default()
    }
    fn parse(key: &'static str, text: &str) -> Result<Self, SettingsError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|_| invalid(key, format!("must be a number, or empty for the default, not \"{text}\"")))
    }
    fn value(&self) -> Vec<String> {
        // `{:?}` writes 1e-320 as such, where `{}` writes 320 digits that llama.cpp cannot read.
        self.iter().map(|x| format!("{x:?}")).collect()
    }
}

impl Knob for bool {
    fn check(&self, _: &'static str, _: LoadKind) -> Result<(), SettingsError> {
        Ok(())
    }
    fn text(&self) -> String {
        self.to_string()
    }
    fn parse(key: &'static str, text: &str) -> Result<Self, SettingsError> {
        match text.trim() {
            "true" | "on" | "yes" | "1" => Ok(true),
            "false" | "off" | "no" | "0" | "" => Ok(false),
            other => Err(invalid(key, format!("must be true or false, not \"{other}\""))),
        }
    }
    fn value(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A value of a closed set, kept as its name (`q8_0`, `on`).
pub trait Named: Copy + Serialize + for<'de> Deserialize<'de> {
    fn name(&self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    }
}

impl Named for FlashAttention {}
impl Named for KvCacheType {}

impl<T: Named> Knob for Option<T> {
    fn check(&self, _: &'static str, _: LoadKind) -> Result<(), SettingsError> {
        Ok(())
    }
    fn text(&self) -> String {
        self.map(|c| c.name()).unwrap_or_default()
    }
    fn parse(key: &'static str, text: &str) -> Result<Self, SettingsError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        serde_json::from_value(serde_json::Value::String(text.to_string()))
            .map(Some)
            .map_err(|_| invalid(key, format!("\"{text}\" is not one of its choices (mm load-settings keys)")))
    }
    fn value(&self) -> Vec<String> {
        self.iter().map(|c| c.name()).collect()
    }
}

/// More arguments: flags and their values, as one string each.
impl Knob for Vec<String> {
    fn check(&self, key: &'static str, _: LoadKind) -> Result<(), SettingsError> {
        check_extra(self).map_err(|problem| invalid(key, problem))
    }
    fn text(&self) -> String {
        self.iter()
            .map(|a| if a.contains(' ') || a.is_empty() { format!("'{a}'") } else { a.clone() })
            .collect::<Vec<_>>()
            .join(" ")
    }
    fn parse(key: &'static str, text: &str) -> Result<Self, SettingsError> {
        split_args(text).map_err(|problem| invalid(key, problem))
    }
    fn value(&self) -> Vec<String> {
        self.clone()
    }
}

/// Whether Flash Attention is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FlashAttention {
    On,
    Off,
    Auto,
}

/// The flags of `llama-server` this app sets itself, with why a user cannot.
const OWNED: &[(&[&str], &str)] = &[
    (
        &[
            "-m",
            "--model",
            "-mu",
            "--model-url",
            "-hf",
            "-hfr",
            "--hf-repo",
            "-hff",
            "--hf-file",
            "-hft",
            "--hf-token",
            "--models-dir",
            "--models-preset",
            "-dr",
            "--docker-repo",
            "-hfd",
            "-hfrd",
            "--hf-repo-draft",
            "-hfv",
            "-hfrv",
            "--hf-repo-v",
            "-hffv",
            "--hf-file-v",
        ],
        "the app names the model file",
    ),
    (
        &["--host", "--port", "--path", "--api-prefix", "--ssl-key-file", "--ssl-cert-file", "--reuse-port"],
        "the app chooses where the runtime listens",
    ),
    (&["--api-key", "--api-key-file"], "the app gives each runtime its own key"),
    (&["-a", "--alias"], "the app names the model by its id"),
    (&["--lora", "--lora-scaled", "--lora-init-without-apply"], "adapters are linked to their base in the library"),
    (&["--embedding", "--embeddings", "--reranking", "--rerank", "--pooling"], "the model's type decides its role"),
    (&["--slots", "--no-slots", "--log-file"], "the app reads the runtime's log and state itself"),
];

/// Why `flag` cannot be among the extra arguments, if it cannot.
fn refused(flag: &str) -> Option<String> {
    // llama.cpp reads `_` as `-` in a long flag.
    let spelled = flag.split('=').next().unwrap_or(flag);
    let normal = if spelled.starts_with("--") { spelled.replace('_', "-") } else { spelled.to_string() };
    let name = normal.as_str();
    if let Some((_, why)) = OWNED.iter().find(|(flags, _)| flags.contains(&name)) {
        return Some(format!("{name} is set by the app ({why})"));
    }
    for row in load_table() {
        let aliases = declared_aliases(row.key);
        if row.flag == Some(name) || aliases.contains(&name) {
            return Some(format!("{name} is the load setting `{}`: set that instead", row.key));
        }
    }
    None
}

/// The short and other spellings of the flags the rows declare.
fn declared_aliases(key: &str) -> &'static [&'static str] {
    match key {
        "context" => &["-c", "--ctx-size"],
        "gpuLayers" => &["-ngl", "--n-gpu-layers", "--gpu-layers"],
        "threads" => &["-t", "--threads"],
        "batchSize" => &["-b", "--batch-size"],
        "parallel" => &["-np", "--parallel"],
        "flashAttention" => &["-fa", "--flash-attn"],
        "kvCacheType" => &["-ctk", "-ctv", "--cache-type-k", "--cache-type-v"],
        "mlock" => &["--mlock", "--load-mode", "-lm"],
        "temperature" => &["--temp", "--temperature"],
        _ => &[],
    }
}

/// Extra arguments: flags (each `-x` or `--name`, `--name=value` too) and their values; no flag the app owns or a
/// row declares, no control characters.
fn check_extra(args: &[String]) -> Result<(), String> {
    if let Some(first) = args.first().filter(|a| !a.starts_with('-')) {
        return Err(format!("must start with a flag (such as --rope-scaling), not \"{first}\""));
    }
    for arg in args {
        if arg.chars().any(char::is_control) {
            return Err(format!("\"{}\" holds a control character", arg.escape_default()));
        }
        if arg.starts_with('-') && arg.len() > 1 && !arg.chars().nth(1).is_some_and(|c| c.is_ascii_digit()) {
            if let Some(why) = refused(arg) {
                return Err(why);
            }
        }
    }
    Ok(())
}

/// The flags of `args` (what a runtime's `--help` must know).
pub fn extra_flags(args: &[String]) -> impl Iterator<Item = &str> {
    args.iter()
        .filter(|a| a.starts_with('-') && a.len() > 1 && !a.chars().nth(1).is_some_and(|c| c.is_ascii_digit()))
        .map(|a| a.split('=').next().unwrap_or(a))
}

/// Splits a command line as a shell would for words: spaces separate, single or double quotes keep spaces.
fn split_args(text: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => args.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    if quote.is_some() {
        return Err("has a quote that is not closed".into());
    }
    args.extend(word);
    Ok(args)
}

macro_rules! load_settings {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident: $ty:ty; $key:literal, $kind:expr, $flag:expr, $label:literal, $help:literal;
    )*) => {
        /// How a model is run, as its owner set it; what is unset the app chooses.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
        #[serde(rename_all = "camelCase", default)]
        pub struct LoadSettings {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        /// Every load setting, in the table's order.
        pub fn load_table() -> Vec<LoadSettingInfo> {
            vec![$( LoadSettingInfo {
                key: $key,
                kind: $kind,
                flag: match $flag {
                    Flag::Valued(f) | Flag::Switch(f) => Some(f),
                    Flag::ValuedEach(f) => f.first().copied(),
                    Flag::Plan | Flag::Extra => None,
                },
                label: $label,
                help: $help,
            }, )*]
        }

        impl LoadSettings {
            /// Checks every field against its row.
            pub fn check(&self) -> Result<(), SettingsError> {
                $( Knob::check(&self.$field, $key, $kind)?; )*
                Ok(())
            }

            /// One setting as text (empty: unset).
            pub fn get(&self, key: &str) -> Result<String, SettingsError> {
                Ok(match key {
                    $( $key => Knob::text(&self.$field), )*
                    other => return Err(unknown(other)),
                })
            }

            /// Sets one setting from text (empty: unset), checked.
            pub fn set(&mut self, key: &str, text: &str) -> Result<(), SettingsError> {
                let mut next = self.clone();
                match key {
                    $( $key => next.$field = Knob::parse($key, text)?, )*
                    other => return Err(unknown(other)),
                }
                next.check()?;
                *self = next;
                Ok(())
            }

            /// The `llama-server` arguments of what is set, but the plan's own (context, GPU layers, parallel) and mlock
            /// (its flag depends on the runtime: [`LoadSettings::mlock_args`]).
            pub fn args(&self) -> Vec<String> {
                let mut args = Vec::new();
                $(
                    match $flag {
                        Flag::Valued(flag) => {
                            for v in Knob::value(&self.$field) {
                                args.extend([flag.to_string(), v]);
                            }
                        }
                        Flag::ValuedEach(flags) => {
                            for v in Knob::value(&self.$field) {
                                for flag in flags {
                                    args.extend([flag.to_string(), v.clone()]);
                                }
                            }
                        }
                        Flag::Extra => args.extend(Knob::value(&self.$field)),
                        Flag::Plan | Flag::Switch(_) => {}
                    }
                )*
                args
            }
        }
    };
}

fn unknown(key: &str) -> SettingsError {
    SettingsError::Invalid {
        key: "load settings",
        problem: format!(
            "have no \"{key}\": known are {}",
            load_table().iter().map(|s| s.key).collect::<Vec<_>>().join(", ")
        ),
    }
}

impl LoadSettings {
    /// Whether nothing is set (the model is run as the app chooses).
    pub fn is_empty(&self) -> bool {
        *self == LoadSettings::default()
    }

    /// The flags that keep the model's weights in RAM: `--mlock`, or `--load-mode mmap+mlock` for a runtime that
    /// has only that (`knows`: whether the runtime's `--help` lists a flag).
    pub fn mlock_args(&self, knows: impl Fn(&str) -> bool) -> Vec<String> {
        match (self.mlock, knows("--mlock")) {
            (false, _) => vec![],
            (true, true) => vec!["--mlock".into()],
            (true, false) => vec!["--load-mode".into(), "mmap+mlock".into()],
        }
    }

    /// The KV cache's type (f16 unless set).
    pub fn kv_cache(&self) -> KvCacheType {
        self.kv_cache_type.unwrap_or(KvCacheType::F16)
    }

    /// What the estimate takes from these settings.
    pub fn sizing(&self) -> Sizing {
        Sizing {
            context: self.context,
            kv_cache_type: self.kv_cache(),
            cpu_only: self.gpu_layers == Some(0),
            extra_weights: 0,
        }
    }
}

load_settings! {
    /// The context in tokens; unset: the largest that fits the free memory, up to `maxContext`.
    context: Option<u64>;
        "context", LoadKind::Count { min: 64, max: 1 << 24 }, Flag::Plan, "Context (tokens)", "the context it is started with (default: the largest that fits)";
    /// Layers on the GPU; unset: as many as fit.
    gpu_layers: Option<u64>;
        "gpuLayers", LoadKind::Count { min: 0, max: 999 }, Flag::Plan, "GPU layers", "layers on the GPU, 0 for the CPU only (default: as many as fit)";
    /// CPU threads for generation.
    threads: Option<u64>;
        "threads", LoadKind::Count { min: 1, max: 1024 }, Flag::Valued("--threads"), "Threads", "CPU threads for generation";
    /// The logical batch size.
    batch_size: Option<u64>;
        "batchSize", LoadKind::Count { min: 32, max: 1 << 16 }, Flag::Valued("--batch-size"), "Batch size", "tokens the prompt is read in at once";
    /// Requests answered at once (the context is shared among them); unset: 1.
    parallel: Option<u64>;
        "parallel", LoadKind::Count { min: 1, max: 64 }, Flag::Plan, "Parallel requests", "requests answered at once, sharing the context (default: 1)";
    /// Flash Attention: on, off or auto.
    flash_attention: Option<FlashAttention>;
        "flashAttention", LoadKind::Choice { choices: &["on", "off", "auto"] }, Flag::Valued("--flash-attn"), "Flash Attention", "on, off or auto";
    /// The KV cache's type: f16, q8_0 (about half the memory) or q4_0 (about a quarter).
    kv_cache_type: Option<KvCacheType>;
        "kvCacheType", LoadKind::Choice { choices: &["f16", "q8_0", "q4_0"] }, Flag::ValuedEach(&["--cache-type-k", "--cache-type-v"]), "KV cache type", "f16, q8_0 (half the memory) or q4_0 (a quarter)";
    /// Keep the weights in RAM (never swapped out).
    mlock: bool;
        "mlock", LoadKind::Switch, Flag::Switch("--mlock"), "Lock in memory", "keep the weights in RAM, never swapped";
    /// The sampling temperature a request that names none gets.
    temperature: Option<f64>;
        "temperature", LoadKind::Number { min: 0.0, max: 5.0 }, Flag::Valued("--temp"), "Temperature", "default sampling temperature";
    /// The default nucleus sampling threshold.
    top_p: Option<f64>;
        "topP", LoadKind::Number { min: 0.0, max: 1.0 }, Flag::Valued("--top-p"), "Top P", "default top-p";
    /// The default number of candidates sampled from.
    top_k: Option<u64>;
        "topK", LoadKind::Count { min: 0, max: 1000 }, Flag::Valued("--top-k"), "Top K", "default top-k (0: all)";
    /// The default minimum probability, relative to the likeliest token.
    min_p: Option<f64>;
        "minP", LoadKind::Number { min: 0.0, max: 1.0 }, Flag::Valued("--min-p"), "Min P", "default min-p";
    /// The default penalty for repeated tokens (1: none).
    repeat_penalty: Option<f64>;
        "repeatPenalty", LoadKind::Number { min: 0.0, max: 10.0 }, Flag::Valued("--repeat-penalty"), "Repeat penalty", "default repeat penalty (1: none)";
    /// More `llama-server` arguments, checked (changed on the machine only).
    extra_args: Vec<String>;
        "extraArgs", LoadKind::Args, Flag::Extra, "More runtime arguments", "more llama-server flags, such as --rope-scaling linear (on the machine only)";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_set_as_text_is_checked_and_becomes_its_flags() {
        let mut s = LoadSettings::default();
        s.set("kvCacheType", "q8_0").unwrap();
        s.set("threads", "4").unwrap();
        s.set("temperature", "0.2").unwrap();
        s.set("context", "2048").unwrap();
        assert_eq!(s.kv_cache(), KvCacheType::Q8_0);
        assert_eq!(
            s.args(),
            ["--threads", "4", "--cache-type-k", "q8_0", "--cache-type-v", "q8_0", "--temp", "0.2"],
            "the context is the plan's"
        );
        assert_eq!(s.get("kvCacheType").unwrap(), "q8_0");
        let err = s.set("kvCacheType", "q2").unwrap_err().to_string();
        assert!(err.contains("\"q2\" is not one of its choices"), "{err}");
        let err = s.set("parallel", "0").unwrap_err().to_string();
        assert_eq!(err, "parallel must be from 1 to 64, not 0");
        assert!(s.set("nope", "1").unwrap_err().to_string().contains("known are context, gpuLayers"));
        s.set("context", "").unwrap();
        assert_eq!(s.context, None, "empty text unsets");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["kvCacheType"], "q8_0");
        assert_eq!(serde_json::from_value::<LoadSettings>(json).unwrap(), s);
    }

    #[test]
    fn extra_arguments_are_split_and_the_apps_own_flags_refused_with_why() {
        let mut s = LoadSettings::default();
        s.set("extraArgs", "--rope-scaling linear --override-kv 'a=str:b c'").unwrap();
        assert_eq!(s.extra_args, ["--rope-scaling", "linear", "--override-kv", "a=str:b c"]);
        assert_eq!(s.get("extraArgs").unwrap(), "--rope-scaling linear --override-kv 'a=str:b c'");
        assert_eq!(extra_flags(&s.extra_args).collect::<Vec<_>>(), ["--rope-scaling", "--override-kv"]);
        for (args, why) in [
            ("--port 9", "--port is set by the app (the app chooses where the runtime listens)"),
            ("--api_key_file /k", "--api-key-file is set by the app"),
            ("-dr org/x", "-dr is set by the app"),
            ("--api-key-file=/x", "--api-key-file is set by the app"),
            ("-m /etc/passwd", "-m is set by the app (the app names the model file)"),
            ("--lora a.gguf", "adapters are linked to their base"),
            ("-c 4096", "-c is the load setting `context`: set that instead"),
            ("--cache-type-v q4_0", "the load setting `kvCacheType`"),
            ("linear", "must start with a flag"),
            ("--x 'open", "a quote that is not closed"),
        ] {
            let err = s.clone().set("extraArgs", args).unwrap_err().to_string();
            assert!(err.contains(why), "{args}: {err}");
        }
        assert!(s.clone().set("extraArgs", "--rope-freq-scale -1").is_ok(), "a negative number is a value");
    }

    #[test]
    fn mlock_uses_the_flag_the_runtime_has() {
        let s = LoadSettings { mlock: true, ..Default::default() };
        assert_eq!(s.mlock_args(|f| f == "--mlock"), ["--mlock"]);
        assert_eq!(s.mlock_args(|_| false), ["--load-mode", "mmap+mlock"]);
        assert!(LoadSettings::default().mlock_args(|_| true).is_empty());
    }
}
