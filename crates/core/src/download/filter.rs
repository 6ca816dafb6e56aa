//! Include and exclude globs over repo paths, with `huggingface_hub`'s `allow_patterns` semantics (Python's
//! `fnmatch`): `*` matches any run of characters, `/` included; `?` one character; `[abc]`, `[a-z]`, `[!x]` one of
//! a set; a pattern ending in `/` matches everything under that folder.

/// Keeps a path when it matches an include pattern (or there are none) and no exclude pattern.
pub fn selected(path: &str, include: &[String], exclude: &[String]) -> bool {
    (include.is_empty() || include.iter().any(|p| matches(p, path))) && !exclude.iter().any(|p| matches(p, path))
}

/// Whether `path` matches the glob `pattern`.
pub fn matches(pattern: &str, path: &str) -> bool {
    let pattern = if pattern.ends_with('/') { format!("{pattern}*") } else { pattern.to_string() };
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = path.chars().collect();
    // Iterative matching with one backtrack point for the last `*`: linear in practice, never exponential.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                '[' => {
                    if let Some((hit, next)) = class(&p, pi, s[si]) {
                        if hit {
                            pi = next;
                            si += 1;
                            continue;
                        }
                    } else if s[si] == '[' {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                }
                c if c == s[si] => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Matches `c` against the class starting at `p[start] == '['`: whether it matched and the index after `]`;
/// `None` when the class is not closed (then `[` is a literal).
fn class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = i < p.len() && (p[i] == '!' || p[i] == '^');
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            hit |= p[i] <= c && c <= p[i + 2];
            i += 3;
        } else {
            hit |= p[i] == c;
            i += 1;
        }
        first = false;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_follow_fnmatch() {
        assert!(matches("*.gguf", "model-q4.gguf"));
        assert!(matches("*.gguf", "sub/model.gguf"), "* crosses folders, as in fnmatch");
        assert!(!matches("*.gguf", "model.gguf.part"));
        assert!(matches("model-?.bin", "model-1.bin"));
        assert!(!matches("model-?.bin", "model-12.bin"));
        assert!(matches("*Q4_K_M*", "qwen2.5-0.5b-instruct-Q4_K_M.gguf"));
        assert!(matches("onnx/", "onnx/model.onnx"));
        assert!(!matches("onnx/", "model.onnx"));
        assert!(matches("[ab]*.json", "a.json") && !matches("[ab]*.json", "c.json"));
        assert!(matches("[!a]*.json", "c.json") && !matches("[!a]*.json", "a.json"));
        assert!(matches("v[0-9].txt", "v7.txt") && !matches("v[0-9].txt", "vx.txt"));
        assert!(matches("[.txt", "[.txt"), "an unclosed class is a literal");
        assert!(matches("*", "") && matches("", "") && !matches("", "a"));
        assert!(!matches(&"*a".repeat(30), &"a".repeat(29)), "no exponential blow-up, and the right answer");
    }

    #[test]
    fn include_then_exclude() {
        let inc = vec!["*.json".to_string(), "*.safetensors".to_string()];
        let exc = vec!["*training*".to_string()];
        assert!(selected("config.json", &inc, &exc));
        assert!(!selected("training_args.json", &inc, &exc));
        assert!(!selected("model.bin", &inc, &exc));
        assert!(selected("anything", &[], &[]));
        assert!(!selected("x.bin", &[], &["*.bin".into()]));
    }
}
