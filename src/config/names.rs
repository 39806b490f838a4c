//! Unknown setting names are errors, with the nearest known name: a misspelled
//! `REGAUTH_PUBLIC_ULR` or `listn = ...` must not be silently ignored.

/// `REGAUTH_*` variables that are not settings: the config file's name, and the variables
/// of the project's own scripts and compose file.
const NOT_SETTINGS: &[&str] = &[
    "REGAUTH_CONFIG",
    "REGAUTH_PORT",
    "REGAUTH_PROXY_PORT",
    "REGAUTH_REALM",
    "REGAUTH_REGISTRY3_BIN",
];
/// Prefixes of the test and benchmark scripts' variables (`REGAUTH_TEST_DATABASE`, …).
const NOT_SETTING_PREFIXES: &[&str] = &["REGAUTH_TEST_", "REGAUTH_BENCH_"];

/// An unknown name and the known one it most likely meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    pub name: String,
    pub did_you_mean: Option<String>,
}

/// The first `REGAUTH_*` variable among `variables` that names no setting (nor a setting's
/// `_FILE` variant).
pub fn unknown_variable<'a>(
    settings: &[String],
    variables: impl IntoIterator<Item = &'a str>,
) -> Option<UnknownName> {
    let known: Vec<String> = settings
        .iter()
        .flat_map(|name| {
            let variable = format!("REGAUTH_{}", name.to_ascii_uppercase());
            [format!("{variable}_FILE"), variable]
        })
        .collect();
    let mut unknown: Vec<&str> = variables
        .into_iter()
        .filter(|variable| variable.starts_with("REGAUTH_"))
        .filter(|variable| !NOT_SETTINGS.contains(variable))
        .filter(|variable| !NOT_SETTING_PREFIXES.iter().any(|p| variable.starts_with(p)))
        .filter(|variable| !known.iter().any(|k| k == variable))
        .collect();
    // The same answer whatever the environment's order.
    unknown.sort_unstable();
    unknown.first().map(|name| UnknownName {
        name: (*name).to_owned(),
        did_you_mean: nearest(name, &known),
    })
}

/// The first key of the config file that names no setting.
pub fn unknown_key<'a>(
    settings: &[String],
    keys: impl IntoIterator<Item = &'a str>,
) -> Option<UnknownName> {
    let mut unknown: Vec<&str> = keys
        .into_iter()
        .filter(|key| !settings.iter().any(|name| name == key))
        .collect();
    unknown.sort_unstable();
    unknown.first().map(|name| UnknownName {
        name: (*name).to_owned(),
        did_you_mean: nearest(name, settings),
    })
}

/// The known name closest to `name` by edit distance (case-insensitive), when it is close
/// enough to be a misspelling: at most a third of the name's length, and at most 4 edits.
fn nearest(name: &str, known: &[String]) -> Option<String> {
    let name = name.to_ascii_lowercase();
    let limit = (name.chars().count() / 3).clamp(1, 4);
    known
        .iter()
        .map(|candidate| {
            (
                edit_distance(&name, &candidate.to_ascii_lowercase()),
                candidate,
            )
        })
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, candidate)| (*distance, candidate.len()))
        .map(|(_, candidate)| candidate.clone())
}

/// Levenshtein distance (insertions, deletions, substitutions), over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Vec<String> {
        [
            "listen",
            "public_url",
            "database_url",
            "token_ttl",
            "issuer",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn edit_distances() {
        for (a, b, distance) in [
            ("", "", 0),
            ("listen", "listen", 0),
            ("listn", "listen", 1),
            ("isuer", "issuer", 1),
            ("public_ulr", "public_url", 2),
            ("kitten", "sitting", 3),
            ("", "abc", 3),
        ] {
            assert_eq!(edit_distance(a, b), distance, "{a} {b}");
        }
    }

    #[test]
    fn an_unknown_variable_is_named_with_the_nearest_setting() {
        let settings = settings();
        assert_eq!(
            unknown_variable(&settings, ["PATH", "REGAUTH_PUBLIC_ULR", "REGAUTH_LISTEN"]),
            Some(UnknownName {
                name: "REGAUTH_PUBLIC_ULR".into(),
                did_you_mean: Some("REGAUTH_PUBLIC_URL".into()),
            })
        );
        assert_eq!(
            unknown_variable(&settings, ["REGAUTH_DATABSE_URL_FILE"]).and_then(|u| u.did_you_mean),
            Some("REGAUTH_DATABASE_URL_FILE".into())
        );
        assert_eq!(
            unknown_variable(&settings, ["REGAUTH_SOMETHING_ELSE_ENTIRELY"]),
            Some(UnknownName {
                name: "REGAUTH_SOMETHING_ELSE_ENTIRELY".into(),
                did_you_mean: None,
            })
        );
    }

    #[test]
    fn settings_their_file_variants_and_the_scripts_variables_are_known() {
        let settings = settings();
        let fine = [
            "REGAUTH_LISTEN",
            "REGAUTH_TOKEN_TTL_FILE",
            "REGAUTH_CONFIG",
            "REGAUTH_TEST_DATABASE",
            "REGAUTH_BENCH_POSTGRES_URL",
            "REGAUTHX",
            "HOME",
        ];
        assert_eq!(unknown_variable(&settings, fine), None);
    }

    #[test]
    fn an_unknown_key_is_named_with_the_nearest_setting() {
        let settings = settings();
        assert_eq!(unknown_key(&settings, ["listen", "issuer"]), None);
        assert_eq!(
            unknown_key(&settings, ["listen", "isuer"]),
            Some(UnknownName {
                name: "isuer".into(),
                did_you_mean: Some("issuer".into()),
            })
        );
        assert_eq!(
            unknown_key(&settings, ["colour"]).map(|u| u.did_you_mean),
            Some(None)
        );
    }
}
