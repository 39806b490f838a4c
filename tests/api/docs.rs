//! The README and the book in `docs/` stay true: every relative link and anchor resolves,
//! every `regauth` command line in a shell block parses (commands and flags exist), every
//! `REGAUTH_*` name and `regauth.toml` key is a setting, and the configuration reference is
//! generated from the settings' own definitions (the doc comments of `RawSettings`' fields
//! and the built-in defaults). `UPDATE_DOCS=1` rewrites the reference instead of comparing.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every page of docs/.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    pages.sort();
    files.extend(pages);
    files
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a markdown text's headings (outside code blocks).
fn anchors(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            found.push(slug(line.trim_start_matches('#')));
        }
    }
    found
}

/// `(line number, target)` of every inline link `[text](target)` outside code blocks.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut fenced = false;
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        for (at, _) in line.match_indices("](") {
            let rest = &line[at + 2..];
            if let Some(end) = rest.find(')') {
                found.push((number + 1, rest[..end].to_owned()));
            }
        }
    }
    found
}

#[test]
fn every_link_of_the_readme_and_the_docs_resolves() {
    let mut broken = Vec::new();
    for document in documents() {
        let text = std::fs::read_to_string(&document).unwrap();
        for (line, target) in links(&text) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((file, anchor)) => (file, Some(anchor)),
                None => (target.as_str(), None),
            };
            let path = if file.is_empty() {
                document.clone()
            } else {
                document.parent().unwrap().join(file)
            };
            let place = format!("{}:{line}: {target}", document.display());
            if !path.exists() {
                broken.push(format!("{place} (no such file)"));
                continue;
            }
            if let Some(anchor) = anchor {
                let target_text = std::fs::read_to_string(&path).unwrap_or_default();
                if !anchors(&target_text).iter().any(|a| a == anchor) {
                    broken.push(format!("{place} (no such heading)"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// Lines of shell code blocks, and inline code naming a `regauth` command: `(file, line,
/// text)`.
fn shell_lines() -> Vec<(PathBuf, usize, String)> {
    let mut found = Vec::new();
    for document in documents() {
        let text = std::fs::read_to_string(&document).unwrap();
        let mut language: Option<String> = None;
        let mut continued = String::new();
        for (number, line) in text.lines().enumerate() {
            if let Some(rest) = line.strip_prefix("```") {
                language = match language {
                    Some(_) => None,
                    None => Some(rest.trim().to_owned()),
                };
                continue;
            }
            let shell = matches!(language.as_deref(), Some("" | "sh" | "bash" | "console"));
            if language.is_none() {
                // Inline code naming a command (`regauth keys generate [--alg es256|rs256]`),
                // its placeholders and optional marks dropped.
                for (i, span) in line.split('`').enumerate() {
                    if i % 2 == 1 && span.starts_with("regauth ") {
                        let words: Vec<&str> = span
                            .split(|c: char| c.is_whitespace() || "[]()|\\".contains(c))
                            .filter(|word| !word.is_empty() && !word.starts_with('<'))
                            .filter(|word| *word != "..")
                            .collect();
                        found.push((document.clone(), number + 1, words.join(" ")));
                    }
                }
                continue;
            }
            if !shell {
                continue;
            }
            // A line ending in `\` continues on the next.
            if let Some(head) = line.strip_suffix('\\') {
                continued.push_str(head);
                continued.push(' ');
                continue;
            }
            let whole = format!("{continued}{line}");
            continued.clear();
            found.push((document.clone(), number + 1, whole));
        }
    }
    found
}

/// The words of a shell line, up to a comment.
fn words(line: &str) -> Vec<String> {
    let code = match line.find(" #") {
        Some(at) => &line[..at],
        None if line.trim_start().starts_with('#') => "",
        None => line,
    };
    code.split_whitespace()
        .map(|word| word.trim_matches(|c| c == '"' || c == '\'').to_owned())
        .collect()
}

/// The `regauth` invocations of a line: the words after each `regauth` that runs the binary.
fn invocations(line: &str) -> Vec<Vec<String>> {
    let words = words(line);
    let mut found = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let runs_regauth = word == "regauth"
            || word.ends_with("/regauth")
            || (word == "--"
                && words[..i].iter().any(|w| w == "run")
                && words[..i].contains(&"cargo".to_owned()));
        // `docker compose exec regauth regauth …`: the service, then the binary.
        if !runs_regauth || words.get(i + 1).is_some_and(|next| next == "regauth") {
            continue;
        }
        let at_command_position = i == 0
            || words[..i]
                .iter()
                .all(|w| w.contains('=') && !w.starts_with('-'))
            || matches!(
                words[i - 1].as_str(),
                "regauth" | "exec" | "sudo" | "&&" | "|" | ";" | "$" | "time" | "--" | "$("
            )
            || word == "--";
        if !at_command_position {
            continue;
        }
        let rest: Vec<String> = words[i + 1..]
            .iter()
            .take_while(|w| !matches!(w.as_str(), "|" | "&&" | ";" | ">" | "2>" | ">>" | "<" | ")"))
            .map(|w| w.trim_end_matches(')').to_owned())
            .collect();
        found.push(rest);
    }
    found
}

struct Help {
    cache: HashMap<Vec<String>, Option<String>>,
}

impl Help {
    /// `regauth <path> --help`, when that command exists.
    fn of(&mut self, path: &[String]) -> Option<String> {
        self.cache
            .entry(path.to_vec())
            .or_insert_with(|| {
                let output = Command::new(env!("CARGO_BIN_EXE_regauth"))
                    .args(path)
                    .arg("--help")
                    .env_remove("REGAUTH_CONFIG")
                    .output()
                    .unwrap();
                output
                    .status
                    .success()
                    .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
            })
            .clone()
    }
}

#[test]
fn every_regauth_command_in_the_docs_exists_with_its_flags() {
    let mut help = Help {
        cache: HashMap::new(),
    };
    let top = help.of(&[]).unwrap();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (file, line, text) in shell_lines() {
        for args in invocations(&text) {
            let Some(first) = args.first() else {
                continue;
            };
            let place = format!("{}:{line}: {text}", file.display());
            if !first.starts_with('-') && help.of(std::slice::from_ref(first)).is_none() {
                wrong.push(format!("{place}\n  no command {first:?}"));
                continue;
            }
            let mut path: Vec<String> = Vec::new();
            for arg in &args {
                if arg.starts_with('-') {
                    let flag = arg.split('=').next().unwrap();
                    let text = help.of(&path).unwrap_or_else(|| top.clone());
                    let known = text
                        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
                        .any(|word| word == flag || word.split('=').next() == Some(flag));
                    if !known {
                        wrong.push(format!(
                            "{place}\n  regauth {} has no {flag}",
                            path.join(" ")
                        ));
                    }
                    continue;
                }
                let mut deeper = path.clone();
                deeper.push(arg.clone());
                if !arg.contains(['/', '.', '<', '$', '@']) && help.of(&deeper).is_some() {
                    path = deeper;
                }
            }
            checked += 1;
        }
    }
    assert!(
        checked > 20,
        "only {checked} command lines found: is the parser broken?"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_setting_named_in_the_docs_exists() {
    let mut wrong = Vec::new();
    for document in documents() {
        let text = std::fs::read_to_string(&document).unwrap();
        for (number, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(at) = rest.find("REGAUTH_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                // `REGAUTH_<NAME>` and the like describe a pattern.
                if name.ends_with('_') {
                    continue;
                }
                if let Err(error) = regauth::config::check_variable_name(&name) {
                    wrong.push(format!("{}:{}: {error}", document.display(), number + 1));
                }
            }
        }
        // Keys of `regauth.toml` blocks (up to a table header) are settings.
        let defaults: BTreeMap<String, String> =
            regauth::config::setting_defaults().into_iter().collect();
        let mut in_toml = false;
        for (number, line) in text.lines().enumerate() {
            if line.starts_with("```") {
                in_toml = line.trim() == "```toml";
                continue;
            }
            if !in_toml {
                continue;
            }
            if line.starts_with('[') {
                in_toml = false;
                continue;
            }
            if let Some((key, _)) = line.split_once('=') {
                let key = key.trim();
                if !key.starts_with('#') && !defaults.contains_key(key) {
                    wrong.push(format!(
                        "{}:{}: {key} is not a setting",
                        document.display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `(name, doc comment)` of every setting, in declaration order: the groups as
/// `RawSettings` in src/config.rs lists them, each group's `Raw` fields in its file
/// (`src/config/<group>.rs`).
fn setting_definitions() -> Vec<(String, String)> {
    struct_fields("src/config.rs", "struct RawSettings {")
        .into_iter()
        .flat_map(|(group, _)| struct_fields(&format!("src/config/{group}.rs"), "struct Raw {"))
        .collect()
}

/// `(name, doc comment)` of each field of the struct that `declaration` opens in `file`.
fn struct_fields(file: &str, declaration: &str) -> Vec<(String, String)> {
    let source = std::fs::read_to_string(root().join(file)).unwrap();
    let start = source
        .find(declaration)
        .unwrap_or_else(|| panic!("no `{declaration}` in {file}"));
    let end = start + source[start..].find("\n}\n").unwrap();
    let mut found = Vec::new();
    let mut doc = Vec::new();
    for line in source[start..end].lines().skip(1) {
        let line = line.trim();
        if let Some(text) = line.strip_prefix("///") {
            doc.push(text.trim().to_owned());
        } else if line.starts_with("#[") || line.is_empty() {
            continue;
        } else if let Some((name, _)) = line.split_once(':') {
            found.push((name.trim().to_owned(), doc.join(" ")));
            doc.clear();
        }
    }
    found
}

const BEGIN: &str = "<!-- generated from src/config.rs: begin -->";
const END: &str = "<!-- generated from src/config.rs: end -->";

fn reference_table() -> String {
    let defaults: BTreeMap<String, String> =
        regauth::config::setting_defaults().into_iter().collect();
    let mut table = String::from(
        "| setting (`regauth.toml`) | environment | default | meaning |\n|---|---|---|---|\n",
    );
    for (name, doc) in setting_definitions() {
        assert!(
            !doc.is_empty(),
            "the setting {name} has no doc comment in src/config/"
        );
        let default = defaults
            .get(&name)
            .unwrap_or_else(|| panic!("no default for {name}"));
        let default = if default == "not set" {
            "not set".to_owned()
        } else {
            format!("`{default}`")
        };
        table.push_str(&format!(
            "| `{name}` | `REGAUTH_{}` | {default} | {} |\n",
            name.to_uppercase(),
            doc.replace('|', "\\|")
        ));
    }
    table
}

#[test]
fn the_configuration_reference_is_generated_from_the_settings_definitions() {
    let path = root().join("docs/configuration.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let (head, rest) = text.split_once(BEGIN).expect("the begin marker");
    let (_, tail) = rest.split_once(END).expect("the end marker");
    let expected = format!("{head}{BEGIN}\n{}{END}{tail}", reference_table());
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).unwrap();
        return;
    }
    assert!(
        text == expected,
        "docs/configuration.md is not generated from src/config.rs: run \
         `UPDATE_DOCS=1 cargo nextest run --test api -E 'test(the_configuration_reference)'`"
    );
    let names = setting_definitions().len();
    assert_eq!(names, regauth::config::setting_defaults().len());
}
