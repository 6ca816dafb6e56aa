//! The safetensors header: an 8-byte little-endian length N, then N bytes of JSON naming each tensor's dtype,
//! shape and byte range. Enough to count parameters and bytes per dtype without reading the weights.

use super::CompatError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ts_rs::TS;

/// The real format caps the header at 100 MB; anything larger is not a safetensors file.
pub const MAX_HEADER: u64 = 100_000_000;

/// What a safetensors header says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SafetensorsSummary {
    pub tensors: u64,
    pub parameters: u64,
    /// Bytes of tensor data.
    pub data_bytes: u64,
    /// Parameters per dtype, e.g. {"BF16": 494032768}.
    pub parameters_by_dtype: BTreeMap<String, u64>,
    /// The header's `__metadata__` strings.
    pub metadata: BTreeMap<String, String>,
}

/// Bytes per element of a safetensors dtype; `None` for one this parser does not know.
pub fn dtype_bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F64" | "I64" | "U64" => 64,
        "F32" | "I32" | "U32" => 32,
        "F16" | "BF16" | "I16" | "U16" => 16,
        "F8_E4M3" | "F8_E5M2" | "F8_E8M0" | "I8" | "U8" | "BOOL" => 8,
        "F6_E2M3" | "F6_E3M2" => 6,
        "F4" => 4,
        _ => return None,
    })
}

/// The header length from the first 8 bytes, checked against the file's size.
pub fn header_len(first8: &[u8], file_size: u64) -> Result<u64, CompatError> {
    let bytes: [u8; 8] = first8
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| CompatError::invalid("safetensors", "shorter than 8 bytes"))?;
    let n = u64::from_le_bytes(bytes);
    if !(2..=MAX_HEADER).contains(&n) || n > file_size.saturating_sub(8) {
        // The number is not said: for a file that is no model, it would be its first 8 bytes, echoed to whoever
        // asked (a client of `mm serve` naming any readable file).
        return Err(CompatError::invalid(
            "safetensors",
            format!("it does not start with a header length that fits its {file_size} bytes (not a safetensors file)"),
        ));
    }
    Ok(n)
}

#[derive(Deserialize)]
struct TensorInfo {
    dtype: String,
    shape: Shape,
    data_offsets: [u64; 2],
}

/// The most dimensions a tensor may have (real ones have at most 8).
const MAX_DIMS: usize = 64;
/// The most `__metadata__` entries kept, and the longest value kept (the rest are read past, never held).
const MAX_METADATA: usize = 64;
const MAX_METADATA_VALUE: usize = 1024;

/// A tensor's shape, read as its element count (`None` on overflow) without keeping the dimensions.
struct Shape(Option<u64>);

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Shape, D::Error> {
        struct Dims;
        impl<'de> serde::de::Visitor<'de> for Dims {
            type Value = Shape;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of dimensions")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
                let (mut count, mut dims) = (Some(1u64), 0usize);
                while let Some(d) = seq.next_element::<u64>()? {
                    dims += 1;
                    if dims > MAX_DIMS {
                        return Err(serde::de::Error::custom(format!("a shape of more than {MAX_DIMS} dimensions")));
                    }
                    count = count.and_then(|c| c.checked_mul(d));
                }
                Ok(Shape(count))
            }
        }
        deserializer.deserialize_seq(Dims)
    }
}

/// A metadata value: a string (cut to [`MAX_METADATA_VALUE`] characters), or anything else read past without
/// being built (an array of millions, say).
struct MaybeText(Option<String>);

impl<'de> Deserialize<'de> for MaybeText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<MaybeText, D::Error> {
        struct Value;
        impl<'de> serde::de::Visitor<'de> for Value {
            type Value = MaybeText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a metadata value")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MaybeText, E> {
                Ok(MaybeText(Some(v.chars().take(MAX_METADATA_VALUE).collect())))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeText, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(MaybeText(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<MaybeText, A::Error> {
                while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
                Ok(MaybeText(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<MaybeText, E> {
                Ok(MaybeText(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<MaybeText, E> {
                Ok(MaybeText(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<MaybeText, E> {
                Ok(MaybeText(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<MaybeText, E> {
                Ok(MaybeText(None))
            }
            fn visit_unit<E>(self) -> Result<MaybeText, E> {
                Ok(MaybeText(None))
            }
        }
        deserializer.deserialize_any(Value)
    }
}

/// `__metadata__`: the first [`MAX_METADATA`] string entries, values cut to [`MAX_METADATA_VALUE`] characters.
struct Metadata(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Metadata, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = Metadata;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Metadata, E> {
                Ok(Metadata(BTreeMap::new()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Metadata, A::Error> {
                let mut kept = BTreeMap::new();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if kept.len() >= MAX_METADATA {
                        map.next_value::<serde::de::IgnoredAny>()?;
                        continue;
                    }
                    if let MaybeText(Some(v)) = map.next_value::<MaybeText>()? {
                        kept.insert(key.into_owned(), v);
                    }
                }
                Ok(Metadata(kept))
            }
        }
        deserializer.deserialize_any(Entries)
    }
}

/// Parses the header JSON (the N bytes after the length). `file_size` bounds the data offsets. The JSON is read as
/// it streams past: a tensor's shape is multiplied out, never kept, so a crafted header costs no more memory than
/// its own bytes, whatever it holds.
pub fn parse_header(json: &[u8], file_size: u64) -> Result<SafetensorsSummary, CompatError> {
    struct Tensors {
        data_size: u64,
    }
    impl<'de> serde::de::DeserializeSeed<'de> for Tensors {
        type Value = SafetensorsSummary;
        fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_map(self)
        }
    }
    impl<'de> serde::de::Visitor<'de> for Tensors {
        type Value = SafetensorsSummary;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object of tensors")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let fail = |message: String| serde::de::Error::custom(message);
            let mut summary = SafetensorsSummary::default();
            while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if name == "__metadata__" {
                    summary.metadata = map.next_value::<Metadata>()?.0;
                    continue;
                }
                let info: TensorInfo = map.next_value().map_err(|e| fail(format!("tensor {name}: {e}")))?;
                let bits = dtype_bits(&info.dtype)
                    .ok_or_else(|| fail(format!("tensor {name} has the unknown dtype {}", info.dtype)))?;
                let count = info.shape.0.ok_or_else(|| fail(format!("tensor {name}'s shape overflows")))?;
                let [start, end] = info.data_offsets;
                let expected = count.checked_mul(bits).map(|b| b.div_ceil(8));
                if start > end || end > self.data_size || expected != Some(end - start) {
                    return Err(fail(format!(
                        "tensor {name}'s bytes [{start}, {end}) do not fit its shape or the file"
                    )));
                }
                summary.tensors = summary.tensors.saturating_add(1);
                summary.parameters = summary.parameters.saturating_add(count);
                summary.data_bytes = summary.data_bytes.saturating_add(end - start);
                let by_dtype = summary.parameters_by_dtype.entry(info.dtype).or_default();
                *by_dtype = by_dtype.saturating_add(count);
            }
            Ok(summary)
        }
    }
    let data_size = file_size.saturating_sub(8 + json.len() as u64);
    let mut de = serde_json::Deserializer::from_slice(json);
    let summary = serde::de::DeserializeSeed::deserialize(Tensors { data_size }, &mut de)
        .and_then(|s| de.end().map(|()| s))
        .map_err(|e| {
            let what = if e.is_syntax() || e.is_eof() { "the header is not a JSON object" } else { "the header" };
            CompatError::invalid("safetensors", format!("{what}: {e}"))
        })?;
    Ok(summary)
}

/// Parses a whole safetensors file's beginning (at least 8 + N bytes of it).
pub fn parse(prefix: &[u8], file_size: u64) -> Result<SafetensorsSummary, CompatError> {
    let n = header_len(prefix, file_size)? as usize;
    let json = prefix.get(8..8 + n).ok_or_else(|| CompatError::invalid("safetensors", "the header is cut short"))?;
    parse_header(json, file_size)
}

/// The shard files a `model.safetensors.index.json` names (its `weight_map` values), sorted and unique.
pub fn shards_of_index(index: &[u8]) -> Result<Vec<String>, CompatError> {
    #[derive(Deserialize)]
    struct Index {
        weight_map: BTreeMap<String, String>,
    }
    let index: Index =
        serde_json::from_slice(index).map_err(|e| CompatError::invalid("safetensors index", e.to_string()))?;
    let mut shards: Vec<String> = index.weight_map.into_values().collect();
    shards.sort();
    shards.dedup();
    Ok(shards)
}

/// Which safetensors files make up the model, among `paths`: the shards the index names when there is an index,
/// else every `.safetensors` file.
pub fn weight_files<'a>(paths: &[&'a str], index: Option<&[u8]>) -> Result<Vec<&'a str>, CompatError> {
    match index {
        Some(index) => {
            let shards = shards_of_index(index)?;
            let found: Vec<&str> = paths.iter().copied().filter(|p| shards.iter().any(|s| s == p)).collect();
            if found.len() != shards.len() {
                return Err(CompatError::invalid(
                    "safetensors index",
                    format!("it names {} shards but {} are present", shards.len(), found.len()),
                ));
            }
            Ok(found)
        }
        None => Ok(paths.iter().copied().filter(|p| p.ends_with(".safetensors")).collect()),
    }
}

/// Adds one shard's summary to another (sharded models).
pub fn merge(into: &mut SafetensorsSummary, other: SafetensorsSummary) {
    into.tensors = into.tensors.saturating_add(other.tensors);
    into.parameters = into.parameters.saturating_add(other.parameters);
    into.data_bytes = into.data_bytes.saturating_add(other.data_bytes);
    for (k, v) in other.parameters_by_dtype {
        let n = into.parameters_by_dtype.entry(k).or_default();
        *n = n.saturating_add(v);
    }
    into.metadata.extend(other.metadata);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: usize) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend(std::iter::repeat_n(0u8, data));
        out
    }

    #[test]
    fn counts_parameters_and_bytes_per_dtype() {
        let h = r#"{"a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[4],"data_offsets":[12,28]},"__metadata__":{"format":"pt"}}"#;
        let f = file(h, 28);
        let s = parse(&f, f.len() as u64).unwrap();
        assert_eq!((s.tensors, s.parameters, s.data_bytes), (2, 10, 28));
        assert_eq!(s.parameters_by_dtype["BF16"], 6);
        assert_eq!(s.metadata["format"], "pt");
    }

    #[test]
    fn the_index_picks_the_shards_and_a_consolidated_copy_is_not_counted_twice() {
        let index = br#"{"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors","c":"model-00001-of-00002.safetensors"}}"#;
        let paths = [
            "consolidated.safetensors",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "config.json",
        ];
        assert_eq!(
            weight_files(&paths, Some(index)).unwrap(),
            ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        );
        assert_eq!(weight_files(&paths, None).unwrap().len(), 3);
        assert!(weight_files(&paths[..2], Some(index))
            .unwrap_err()
            .to_string()
            .contains("names 2 shards but 1 are present"));
    }

    #[test]
    fn hostile_headers_are_errors() {
        let ok = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![1, 2, 3], "shorter than 8 bytes"),
            ((u64::MAX).to_le_bytes().to_vec(), "not a safetensors file"),
            (file("not json", 0), "not a JSON object"),
            (file(r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}"#, 4), "do not fit"),
            (file(r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}}"#, 4), "overflows"),
            (file(r#"{"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,4]}}"#, 4), "unknown dtype"),
            (file(r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, 4), "do not fit"),
            (file(ok, 4)[..20].to_vec(), "not a safetensors file"),
        ];
        for (bytes, message) in cases {
            let err = parse(&bytes, bytes.len() as u64).unwrap_err();
            assert!(err.to_string().contains(message), "{message}: {err}");
        }
        assert!(parse(&file(ok, 4), 4 + 8 + ok.len() as u64).is_ok());
    }
}
