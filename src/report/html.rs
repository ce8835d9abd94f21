//! `summary.html`: the Markdown summary as one self-contained page (opens from disk, no
//! scripts, no external files) with the charts embedded as SVG. The page is printed from the
//! same text as `summary.md`, so the two never disagree; only the subset of Markdown the
//! summary uses is understood (headings, tables, lists, paragraphs, `code`, **bold**, links).

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Inline Markdown: `code`, **bold** and [text](link); everything else escaped.
fn inline(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('`') {
            if let Some(end) = r.find('`') {
                out.push_str(&format!("<code>{}</code>", escape(&r[..end])));
                rest = &r[end + 1..];
                continue;
            }
        }
        if let Some(r) = rest.strip_prefix("**") {
            if let Some(end) = r.find("**") {
                out.push_str(&format!("<b>{}</b>", inline(&r[..end])));
                rest = &r[end + 2..];
                continue;
            }
        }
        if let Some(r) = rest.strip_prefix('[') {
            // The link text may hold one level of brackets (a confidence interval).
            let mut depth = 1;
            let close = r.char_indices().find(|&(_, c)| {
                depth += (c == '[') as i32 - (c == ']') as i32;
                depth == 0
            });
            if let Some((end, _)) = close {
                if let Some(after) = r[end + 1..].strip_prefix('(') {
                    if let Some(url_end) = after.find(')') {
                        out.push_str(&format!("<a href=\"{}\">{}</a>", escape(&after[..url_end]), inline(&r[..end])));
                        rest = &after[url_end + 1..];
                        continue;
                    }
                }
            }
        }
        let c = rest.chars().next().unwrap();
        out.push_str(&escape(&c.to_string()));
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn cells(line: &str) -> Vec<&str> {
    let t = line.trim().trim_start_matches('|').trim_end_matches('|');
    t.split(" | ").map(str::trim).collect()
}

/// Markdown (the summary's subset) to HTML body text.
pub fn markdown(md: &str) -> String {
    let mut out = String::new();
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if let Some(h) = l.strip_prefix("### ") {
            out.push_str(&format!("<h3>{}</h3>\n", inline(h)));
        } else if let Some(h) = l.strip_prefix("## ") {
            out.push_str(&format!("<h2>{}</h2>\n", inline(h)));
        } else if let Some(h) = l.strip_prefix("# ") {
            out.push_str(&format!("<h1>{}</h1>\n", inline(h)));
        } else if l.starts_with('|') {
            let head = cells(l);
            // The second line aligns columns: `---:` right.
            // It has no spaces around its bars (`|---|---:|`), so it is split on the bars alone.
            let align: Vec<bool> = lines
                .get(i + 1)
                .map(|a| a.trim().trim_matches('|').split('|').map(|c| c.trim().ends_with(':')).collect())
                .unwrap_or_default();
            out.push_str("<table>\n<tr>");
            for h in &head {
                out.push_str(&format!("<th>{}</th>", inline(h)));
            }
            out.push_str("</tr>\n");
            i += 2;
            while i < lines.len() && lines[i].starts_with('|') {
                out.push_str("<tr>");
                for (k, c) in cells(lines[i]).iter().enumerate() {
                    let cls = if align.get(k).copied().unwrap_or(false) { " class=\"n\"" } else { "" };
                    out.push_str(&format!("<td{cls}>{}</td>", inline(c)));
                }
                out.push_str("</tr>\n");
                i += 1;
            }
            out.push_str("</table>\n");
            continue;
        } else if l.starts_with("- ") {
            out.push_str("<ul>\n");
            while i < lines.len() && lines[i].starts_with("- ") {
                out.push_str(&format!("<li>{}</li>\n", inline(&lines[i][2..])));
                i += 1;
            }
            out.push_str("</ul>\n");
            continue;
        } else if !l.trim().is_empty() {
            out.push_str(&format!("<p>{}</p>\n", inline(l)));
        }
        i += 1;
    }
    out
}

/// The whole page: the charts first (after the run's header), then every section of the summary.
pub fn page(md: &str, charts: &[(String, String)]) -> String {
    let body = markdown(md);
    // Charts go before the first section heading after the header list.
    let split = body.find("<h2>").unwrap_or(body.len());
    let mut figs = String::from("<h2>Charts</h2>\n<div class=\"charts\">\n");
    for (title, svg) in charts {
        figs.push_str(&format!("<figure>{svg}<figcaption>{}</figcaption></figure>\n", escape(title)));
    }
    figs.push_str("</div>\n");
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>llm-bench summary</title>\n<style>\n\
         body{{font-family:sans-serif;margin:2em;max-width:1400px;color:#222}}\n\
         table{{border-collapse:collapse;margin:1em 0;font-size:13px}}\n\
         th,td{{border:1px solid #ccc;padding:3px 6px;text-align:left}} td.n{{text-align:right}}\n\
         th{{background:#f0f0f0}} code{{background:#f4f4f4;padding:0 3px}}\n\
         .charts{{display:flex;flex-wrap:wrap;gap:12px}} figure{{margin:0;border:1px solid #ddd}}\n\
         figcaption{{text-align:center;font-size:13px;padding:4px}}\n\
         </style></head><body>\n{}{figs}{}</body></html>\n",
        &body[..split],
        &body[split..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_links_and_escaping() {
        let html = markdown("# run `x`\n\n| a | b |\n|---|---:|\n| <1> | [2.0 [1 – 3]](c/report/index.html) |\n\n- **e**: ok\n");
        assert!(html.contains("<h1>run <code>x</code></h1>"), "{html}");
        assert!(html.contains("<td>&lt;1&gt;</td>"), "{html}");
        assert!(html.contains("<td class=\"n\"><a href=\"c/report/index.html\">2.0 [1 – 3]</a></td>"), "{html}");
        assert!(html.contains("<li><b>e</b>: ok</li>"), "{html}");
    }
}
