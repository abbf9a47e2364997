//! The documentation as files: the README stays a short front door, every relative link in it
//! and in `docs/` leads somewhere, and the pages that restate the code's tables stay complete.

use std::path::{Path, PathBuf};

const README_MAX_LINES: usize = 300;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown file under `docs/`.
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "md") {
                out.push(path);
            }
        }
    }
    let mut files = vec![root().join("README.md")];
    walk(&root().join("docs"), &mut files);
    files
}

/// Markdown text with fenced code blocks and inline code spans blanked out, so that a shell
/// example such as `a[0](x)` is not taken for a link. Line breaks are kept.
fn prose(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut fence: Option<&str> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        match fence {
            Some(f) => {
                if trimmed.starts_with(f) {
                    fence = None;
                }
            }
            None if trimmed.starts_with("```") => fence = Some("```"),
            None if trimmed.starts_with("~~~") => fence = Some("~~~"),
            None => {
                // Drop inline code: the text between pairs of backtick runs of equal length.
                let mut rest = line;
                while let Some(start) = rest.find('`') {
                    out.push_str(&rest[..start]);
                    let ticks = rest[start..].chars().take_while(|c| *c == '`').count();
                    let after = &rest[start + ticks..];
                    match after.find(&"`".repeat(ticks)) {
                        Some(end) => rest = &after[end + ticks..],
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
                out.push_str(rest);
            }
        }
        out.push('\n');
    }
    out
}

/// The targets of inline Markdown links and images (`[text](target)`, `![alt](target "title")`)
/// and of HTML `src`/`href` attributes, with the line each is on.
fn link_targets(text: &str) -> Vec<(usize, String)> {
    let mut targets = Vec::new();
    for (n, line) in prose(text).lines().enumerate() {
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let end = after.find(')').unwrap_or(after.len());
            let raw = after[..end].trim();
            // `(<a b.md>)` may hold spaces; otherwise a title may follow the target.
            let target = match raw.strip_prefix('<') {
                Some(inner) => inner.split('>').next().unwrap_or(""),
                None => raw.split_whitespace().next().unwrap_or(""),
            };
            targets.push((n + 1, target.to_string()));
            rest = &after[end..];
        }
        for attr in ["src=\"", "href=\""] {
            let mut rest = line;
            while let Some(i) = rest.find(attr) {
                let after = &rest[i + attr.len()..];
                let end = after.find('"').unwrap_or(after.len());
                targets.push((n + 1, after[..end].to_string()));
                rest = &after[end..];
            }
        }
    }
    targets
}

/// Whether a link target names a file of this repository (rather than a web page, a mail
/// address or a place on the same page).
fn is_relative(target: &str) -> bool {
    let lower = target.to_ascii_lowercase();
    !(target.is_empty()
        || target.starts_with('#')
        || lower.starts_with("http:")
        || lower.starts_with("https:")
        || lower.starts_with("mailto:")
        || target.starts_with('/'))
}

#[test]
fn every_relative_link_in_the_docs_points_at_a_file() {
    let files = markdown_files();
    assert!(
        files.len() > 1,
        "docs/ holds the manual's pages; found only {files:?}"
    );
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let dir = file.parent().unwrap();
        for (line, target) in link_targets(&text) {
            if !is_relative(&target) {
                continue;
            }
            let path = target.split(['#', '?']).next().unwrap();
            checked += 1;
            if !dir.join(path).exists() {
                broken.push(format!(
                    "{}:{line}: {target}",
                    file.strip_prefix(root()).unwrap().display()
                ));
            }
        }
    }
    assert!(
        checked > 0,
        "no relative link was found: is the parser broken?"
    );
    assert!(
        broken.is_empty(),
        "links to files that do not exist:\n  {}",
        broken.join("\n  ")
    );
}

#[test]
fn the_readme_is_at_most_three_hundred_lines() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines; it is the front door (at most {README_MAX_LINES}): \
         move detail into a page under docs/ and link it"
    );
}

#[test]
fn the_readme_gives_the_command_that_serves_and_the_one_ci_tests_with() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    for command in ["cargo run --release", "cargo test --locked"] {
        assert!(readme.contains(command), "README.md lost `{command}`");
    }
    assert!(
        ci.lines()
            .any(|l| !l.starts_with('#') && l.contains("cargo test --locked")),
        ".ci/run no longer runs the README's test command `cargo test --locked`"
    );
}

#[test]
fn every_error_code_is_listed_in_the_errors_page() {
    let page = std::fs::read_to_string(root().join("docs/errors.md")).unwrap();
    let missing: Vec<_> = kb::http::error::ErrorCode::ALL
        .iter()
        .filter(|code| {
            let row = format!("| {} |", code.status().as_u16());
            !page
                .lines()
                .any(|l| l.starts_with(&row) && l.contains(&format!("`{}`", code.as_str())))
        })
        .map(|code| format!("{} {}", code.status().as_u16(), code.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/errors.md has no row with this status and code: {missing:?}"
    );
}

#[test]
fn links_are_found_in_prose_but_not_in_code() {
    let text = "See [a](a.md) and ![b](img/b.png \"B\").\n\
                `[not](code.md)` and <img src=\"c.png\" width=\"3\">\n\
                ```sh\nx[0](y)\n```\n[d](<d e.md>) [e](https://x.example) [f](#top)";
    let targets: Vec<_> = link_targets(text).into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        targets,
        [
            "a.md",
            "img/b.png",
            "c.png",
            "d e.md",
            "https://x.example",
            "#top"
        ]
    );
    assert!(is_relative("a.md#part") && !is_relative("#top") && !is_relative("mailto:x@y"));
}
