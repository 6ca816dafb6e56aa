//! Model cards (a repo's README.md) as HTML that is safe to put in the window.
//!
//! The Markdown is rendered by pulldown-cmark, and everything that could run or load something is taken out
//! before it becomes HTML: raw HTML is kept only as its text (`<script>` and `<style>` lose their content too),
//! links keep their target only when it is http(s) or mailto (relative ones are made absolute on the hub), and
//! images become links, so the card loads nothing from the network by itself. All text is escaped by the
//! renderer. The window opens links in the system browser.

use pulldown_cmark::{CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};

/// `markdown` as safe HTML. Relative links resolve against `link_base` (the repo's `blob/{rev}/`), relative
/// image targets against `file_base` (its `resolve/{rev}/`).
pub fn render(markdown: &str, link_base: &str, file_base: &str) -> String {
    let body = strip_front_matter(markdown);
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut events = Vec::new();
    // Whether each open link or image was kept (so that its end is kept or dropped alike).
    let mut open: Vec<bool> = Vec::new();
    let mut skipping_raw = None::<&'static str>;
    for event in Parser::new_ext(body, options) {
        match event {
            Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
                let safe = safe_url(&dest_url, link_base);
                open.push(safe.is_some());
                if let Some(url) = safe {
                    events.push(Event::Start(Tag::Link { link_type, dest_url: url.into(), title, id }));
                }
            }
            Event::Start(Tag::Image { dest_url, title, id, .. }) => {
                // An image is shown as a link to it, labelled with its alt text.
                let safe = safe_url(&dest_url, file_base);
                open.push(safe.is_some());
                if let Some(url) = safe {
                    events.push(Event::Start(Tag::Link {
                        link_type: LinkType::Inline,
                        dest_url: url.into(),
                        title,
                        id,
                    }));
                    events.push(Event::Text("[image: ".into()));
                }
            }
            Event::End(TagEnd::Link) => {
                if open.pop() == Some(true) {
                    events.push(Event::End(TagEnd::Link));
                }
            }
            Event::End(TagEnd::Image) => {
                if open.pop() == Some(true) {
                    events.push(Event::Text("]".into()));
                    events.push(Event::End(TagEnd::Link));
                }
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                let text = html_text(&html, &mut skipping_raw);
                if !text.trim().is_empty() {
                    events.push(Event::Text(text.into()));
                }
            }
            Event::Start(Tag::HtmlBlock) | Event::End(TagEnd::HtmlBlock) => {}
            Event::Text(_) | Event::Code(_) if skipping_raw.is_some() => {}
            other => events.push(other),
        }
    }
    let mut out = String::with_capacity(body.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut out, events.into_iter());
    out
}

/// The card without its YAML metadata block (`---` ... `---` at the very start).
fn strip_front_matter(text: &str) -> &str {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text.strip_prefix("---\n").or_else(|| text.strip_prefix("---\r\n")) else { return text };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        offset += line.len();
        if line.trim_end() == "---" {
            return &rest[offset..];
        }
    }
    text
}

/// The target to keep for a link, or `None` when it must not be followed (`javascript:`, `data:`, `file:`...).
fn safe_url(url: &CowStr, base: &str) -> Option<String> {
    // Browsers ignore control characters and spaces in a scheme ("java\tscript:"), so they are dropped first.
    let cleaned: String = url.chars().filter(|c| !c.is_control() && *c != ' ').collect();
    let lower = cleaned.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:") {
        return Some(cleaned);
    }
    if lower.starts_with('#') {
        // In-page anchors go nowhere useful in the window.
        return None;
    }
    let scheme_like = lower
        .find(':')
        .is_some_and(|colon| lower[..colon].chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)));
    if scheme_like || lower.starts_with("//") || lower.starts_with('\\') {
        return None;
    }
    if lower.is_empty() {
        return None;
    }
    let base = reqwest::Url::parse(base).ok()?;
    let joined = base.join(cleaned.trim_start_matches("./")).ok()?;
    matches!(joined.scheme(), "http" | "https").then(|| joined.to_string())
}

/// The text of a piece of raw HTML: tags dropped, entities left for the renderer to escape, and nothing from
/// inside `<script>` or `<style>` (which may span several pieces, so the state is carried in `skipping`).
fn html_text(html: &str, skipping: &mut Option<&'static str>) -> String {
    let mut out = String::new();
    let mut rest = html;
    loop {
        if let Some(end_tag) = *skipping {
            match find_ci(rest, end_tag) {
                Some(i) => {
                    rest = &rest[i + end_tag.len()..];
                    *skipping = None;
                }
                None => return out,
            }
        }
        let Some(open) = rest.find('<') else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let close = after.find('>').map(|i| i + 1).unwrap_or(after.len());
        let tag = after[..close].to_ascii_lowercase();
        if tag.starts_with("<script") {
            *skipping = Some("</script>");
        } else if tag.starts_with("<style") {
            *skipping = Some("</style>");
        }
        rest = &after[close..];
    }
}

fn find_ci(haystack: &str, needle: &str) -> Option<usize> {
    haystack.to_ascii_lowercase().find(needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "https://hub.test/acme/m/blob/abc/";
    const FILE: &str = "https://hub.test/acme/m/resolve/abc/";

    #[test]
    fn scripts_and_javascript_links_are_inert() {
        let card = "---\nlicense: mit\n---\n# Tiny\n\n<script>alert('x')</script>\n\n\
                    Click [here](javascript:alert(1)) or [there](JaVaScRiPt:alert(2)) <javascript:alert(6)> or [data](data:text/html,x).\n\n\
                    <img src=x onerror=\"alert(3)\"> <a href=\"javascript:alert(4)\">raw</a>\n\n\
                    Inline <span onclick=\"alert(5)\">text</span> and <style>body{display:none}</style> done.";
        let html = render(card, LINK, FILE);
        let lower = html.to_lowercase();
        for bad in ["<script", "onerror=", "onclick=", "<img", "<style", "alert('x')", "display:none"] {
            assert!(!lower.contains(bad), "{bad} in {html}");
        }
        // Unsafe targets stay as text at most: no element carries them.
        assert!(!lower.contains("href="), "{html}");
        assert!(html.contains("<h1>Tiny</h1>"), "{html}");
        assert!(html.contains("Click here or there javascript:alert(6) or data."), "{html}");
        assert!(html.contains("raw") && html.contains("text") && html.contains("done."), "{html}");
        assert!(!html.contains("license: mit"), "front matter is metadata, not card text");
    }

    #[test]
    fn links_are_absolute_on_the_hub_and_images_become_links() {
        let html = render(
            "[docs](docs/usage.md) [web](https://example.org/a?b=1&c=2) [mail](mailto:a@b.c) [top](#top) \
             [up](../../etc/passwd) ![logo](./logo.png) ![remote](https://cdn.test/x.png \"t\")",
            LINK,
            FILE,
        );
        assert!(html.contains("href=\"https://hub.test/acme/m/blob/abc/docs/usage.md\""), "{html}");
        assert!(html.contains("href=\"https://example.org/a?b=1&amp;c=2\""), "{html}");
        assert!(html.contains("href=\"mailto:a@b.c\""), "{html}");
        assert!(!html.contains("#top"), "{html}");
        assert!(html.contains("href=\"https://hub.test/acme/m/etc/passwd\""), "stays on the hub: {html}");
        assert!(html.contains("<a href=\"https://hub.test/acme/m/resolve/abc/logo.png\">[image: logo]</a>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
    }

    #[test]
    fn text_is_escaped_and_tables_render() {
        let html = render("a &lt;b&gt; `<i>` \n\n| x | y |\n|---|---|\n| 1 | 2 |\n", LINK, FILE);
        assert!(html.contains("<code>&lt;i&gt;</code>"), "{html}");
        assert!(html.contains("<table>") && html.contains("<td>2</td>"), "{html}");
    }
}
