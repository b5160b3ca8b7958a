//! Every internal link in `README.md` and `docs/*.md` — `[text](path)`, `[text](path#anchor)`
//! and `[text](#anchor)` — reaches a file or folder of the repository, and a heading of that
//! file where it names one (GitHub's anchors: lower case, punctuation but `-` and `_` dropped,
//! spaces as `-`). Links out (`http…`, `mailto:`) are not followed. And every section a comment
//! or a document names beside its document — `docs/design.md, *Cluster*`, `README "Two
//! commands"`, `docs/operations.md, "Managed gateways"` — is a heading of that document. A
//! moved section or file fails here, not in a reader's browser.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The documents whose links are checked.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![root().join("README.md")];
    let mut more: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

/// Text outside fenced code blocks and inline code spans.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut code = false;
        for ch in line.chars() {
            if ch == '`' {
                code = !code;
            } else if !code {
                out.push(ch);
            }
        }
        out.push('\n');
    }
    out
}

/// GitHub's anchor for a heading's text.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every heading's anchor in `text` (a repeated heading's `-1`, `-2` too).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let a = anchor(line.trim_start_matches('#').replace('`', "").as_str());
        let mut name = a.clone();
        let mut n = 0;
        while !seen.insert(name.clone()) {
            n += 1;
            name = format!("{a}-{n}");
        }
    }
    seen
}

/// Every `](target)` in `text`'s prose.
fn targets(text: &str) -> Vec<String> {
    let prose = prose(text);
    let mut out = Vec::new();
    let mut rest = prose.as_str();
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].trim().to_owned());
            rest = &rest[end..];
        }
    }
    out
}

/// What is wrong with link `target` of document `doc`, if anything.
fn dead(doc: &Path, target: &str) -> Option<String> {
    if target.starts_with("http://")
        || target.starts_with("https://")
        || target.starts_with("mailto:")
    {
        return None;
    }
    let (path, fragment) = match target.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (target, None),
    };
    let file = if path.is_empty() {
        doc.to_path_buf()
    } else {
        doc.parent().unwrap_or(Path::new(".")).join(path)
    };
    if !file.exists() {
        return Some(format!("{target}: no such file ({})", file.display()));
    }
    let fragment = fragment?;
    if file.extension().is_none_or(|x| x != "md") {
        return None;
    }
    let text = std::fs::read_to_string(&file).ok()?;
    (!anchors(&text).contains(fragment)).then(|| format!("{target}: no heading `#{fragment}`"))
}

#[test]
fn every_internal_link_in_the_docs_reaches_its_file_and_heading() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("a document");
        for target in targets(&text) {
            checked += 1;
            if let Some(why) = dead(&doc, &target) {
                broken.push(format!(
                    "{}: {why}",
                    doc.strip_prefix(root()).unwrap().display()
                ));
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} links were found: the reader is wrong"
    );
    assert!(broken.is_empty(), "dead links:\n{}", broken.join("\n"));
}

#[test]
fn a_heading_s_anchor_is_github_s() {
    assert_eq!(
        anchor("Two machines: a cluster on PostgreSQL"),
        "two-machines-a-cluster-on-postgresql"
    );
    assert_eq!(
        anchor("`ctl`: the API from a terminal"),
        "ctl-the-api-from-a-terminal"
    );
    let twice = anchors("# A\n## A\n```\n# not a heading\n```\n");
    assert!(twice.contains("a") && twice.contains("a-1") && !twice.contains("not-a-heading"));
}

#[test]
fn a_missing_file_or_heading_is_named_and_a_link_out_is_not_followed() {
    let readme = root().join("README.md");
    assert!(dead(&readme, "docs/no-such-file.md").is_some());
    assert!(dead(&readme, "#no-such-heading-anywhere").is_some());
    assert!(dead(&readme, "https://example.com/x#y").is_none());
    assert!(dead(&readme, "docs/design.md").is_none());
}

/// The repository's text that names sections: sources, tests, scripts, docs, packaging.
fn naming_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if !matches!(
                    name.as_str(),
                    "node_modules" | "target" | ".git" | "fixtures"
                ) {
                    walk(&p, out);
                }
            } else if [
                ".rs", ".md", ".sh", ".py", ".toml", ".yml", ".service", ".rules", ".js",
            ]
            .iter()
            .any(|x| name.ends_with(x))
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    for dir in [
        "src",
        "actors/src",
        "fake-gateway/src",
        "test-support/src",
        "bench/src",
        "tests",
        "scripts",
        "docs",
        "mixin",
        "systemd",
        "packaging",
        "console",
    ] {
        walk(&root().join(dir), &mut out);
    }
    out.push(root().join("README.md"));
    out.push(root().join("gateway-supervisor.example.toml"));
    out.push(root().join("Cargo.toml"));
    out.push(root().join("Containerfile"));
    out
}

/// `text` with line breaks and the comment markers after them as one space, so a reference
/// broken over two comment lines reads whole.
fn joined(text: &str) -> String {
    text.lines()
        .map(|l| {
            l.trim_start()
                .trim_start_matches("//!")
                .trim_start_matches("///")
                .trim_start_matches("//")
                .trim_start_matches('#')
                .trim()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every (document, section) `text` names: `docs/X.md, *S*`, `docs/X.md, "S"`, `README "S"`,
/// `README, "S"`.
fn named_sections(text: &str) -> Vec<(String, String)> {
    let text = joined(text);
    let mut out = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let doc_start = [rest.find("docs/"), rest.find("README")]
            .into_iter()
            .flatten()
            .min();
        let Some(i) = doc_start else { break };
        let here = &rest[i..];
        // A path inside another (`/README.md`, `src/docs/`) or a word is no reference.
        let glued = rest[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '/' || c == '_');
        if glued {
            at += i + 1;
            continue;
        }
        let doc_len = if here.starts_with("README") {
            Some("README".len())
        } else {
            here.find(".md")
                .filter(|n| {
                    here[5..*n]
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '-' || c == '_')
                })
                .map(|n| n + 3)
        };
        at += i + 1;
        let Some(doc_len) = doc_len else { continue };
        let doc = match &here[..doc_len] {
            "README" | "README.md" => "README.md".to_owned(),
            d => d.to_owned(),
        };
        let after = here[doc_len..].trim_start_matches(".md");
        let after = after
            .strip_prefix(',')
            .unwrap_or(after)
            .trim_start_matches(' ');
        let (open, close) = match after.chars().next() {
            Some('*') if !after.starts_with("**") => ('*', '*'),
            Some('"') => ('"', '"'),
            _ => continue,
        };
        let inner = &after[open.len_utf8()..];
        if let Some(end) = inner.find(close)
            && end > 0
            && end <= 80
            && is_section_name(&inner[..end])
        {
            out.push((doc, inner[..end].to_owned()));
        }
    }
    out
}

/// Whether `s` reads as a section's name (a capital or a code span first, words after), not
/// code that happens to follow a path.
fn is_section_name(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_uppercase() || c == '`')
        && s.chars()
            .all(|c| c.is_alphanumeric() || " -'`:,/.".contains(c))
}

/// Whether `wanted` names heading `heading`: the whole of it, or its lead before a colon
/// (`Two machines` for "Two machines: a cluster on PostgreSQL").
fn names(wanted: &str, heading: &str) -> bool {
    heading == wanted
        || heading
            .split_once(':')
            .is_some_and(|(lead, _)| lead.trim() == wanted)
}

/// The headings of document `doc`, as text (backticks dropped, lower case).
fn headings(doc: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(doc).unwrap_or_default();
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && line.starts_with('#') {
            out.insert(
                line.trim_start_matches('#')
                    .replace('`', "")
                    .trim()
                    .to_lowercase(),
            );
        }
    }
    out
}

#[test]
fn every_section_named_beside_its_document_is_a_heading_of_it() {
    let mut dead = Vec::new();
    let mut checked = 0;
    for file in naming_files() {
        if file.ends_with("tests/doc_links.rs") {
            continue; // its own examples
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (doc, section) in named_sections(&text) {
            let path = root().join(&doc);
            checked += 1;
            let wanted = section.replace('`', "").trim().to_lowercase();
            if !path.exists() || !headings(&path).iter().any(|h| names(&wanted, h)) {
                dead.push(format!(
                    "{}: {doc}, \"{section}\"",
                    file.strip_prefix(root()).unwrap().display()
                ));
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} section references were found: the reader is wrong"
    );
    assert!(
        dead.is_empty(),
        "sections named that are no heading of their document:\n{}",
        dead.join("\n")
    );
}

#[test]
fn a_section_reference_broken_over_comment_lines_is_read_whole() {
    let named = named_sections(
        "//! carried out (docs/design.md,\n//! *Fleet operations*); README \"Two commands\"",
    );
    assert_eq!(
        named,
        vec![
            ("docs/design.md".to_owned(), "Fleet operations".to_owned()),
            ("README.md".to_owned(), "Two commands".to_owned())
        ]
    );
}

/// The folders directly under `dir` (hidden ones and the build's `target/` left out).
fn folders(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .expect("a folder")
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && n != "target")
        .collect();
    out.sort();
    out
}

/// The README's map of the code names every folder of the repository's top and of `src/`, and
/// no folder that is not there: a newcomer's map that matches the tree.
#[test]
fn the_readme_s_map_names_every_folder_of_the_tree_and_only_those() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let from = readme.find("## The map of the code").expect("the map");
    let map = &readme[from..];
    let map = &map[..map[3..].find("\n## ").map_or(map.len(), |n| n + 3)];
    let mut missing = Vec::new();
    for (under, folders) in [
        ("", folders(&root())),
        ("src/", folders(&root().join("src"))),
    ] {
        for f in folders {
            if !map.contains(&format!("`{f}/`")) && !map.contains(&format!("`{under}{f}/`")) {
                missing.push(format!("{under}{f}/"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "folders the map does not name: {missing:?}"
    );
    let named_top: Vec<&str> = map
        .split("[`")
        .skip(1)
        .filter_map(|s| s.split_once("/`]").map(|(name, _)| name))
        .collect();
    assert!(named_top.len() > 10, "{named_top:?}");
    for name in named_top {
        assert!(
            root().join(name).is_dir(),
            "the map names `{name}/`, which is no folder"
        );
    }
    assert!(readme.lines().count() <= 300, "README.md is over 300 lines");
}
