//! `routes:` in the config: an inbox subfolder → the accounts its videos go to
//! (design.md §8), read and checked against the configured accounts.

use std::path::{Component, Path, PathBuf};

use serde_yaml::Value;

use crate::yaml::{Node, Problems};

/// One route: videos under `folder` (relative to the inbox) go to `accounts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// A relative path of plain folder names, never empty.
    pub folder: PathBuf,
    /// In order, each once, never empty; every one configured.
    pub accounts: Vec<String>,
}

/// The accounts of the route whose folder holds `relative` (a path relative to the inbox);
/// the deepest folder wins.
pub(crate) fn route_for<'a>(routes: &'a [Route], relative: &Path) -> Option<&'a [String]> {
    let dir = relative.parent()?;
    routes
        .iter()
        .filter(|r| dir.starts_with(&r.folder))
        .max_by_key(|r| r.folder.components().count())
        .map(|r| r.accounts.as_slice())
}

/// Reads `routes:`, a mapping of folder → account name or list of names.
pub(crate) fn read_routes(n: &Node<'_>, accounts: &[&str], problems: &mut Problems) -> Vec<Route> {
    let Some(entries) = n.entries(problems) else {
        return Vec::new();
    };
    let mut routes: Vec<Route> = Vec::new();
    for (key, node) in entries {
        let Some(folder) = folder(&key) else {
            problems.push(node.key_problem(format!(
                "`{key}` is not a folder inside the inbox (plain names separated by /)"
            )));
            continue;
        };
        if routes.iter().any(|r| r.folder == folder) {
            problems.push(node.key_problem(format!("`{key}` is routed twice")));
            continue;
        }
        if let Some(names) = names(&node, accounts, problems) {
            routes.push(Route {
                folder,
                accounts: names,
            });
        }
    }
    routes
}

/// A route's folder: relative, plain names only.
fn folder(key: &str) -> Option<PathBuf> {
    let path = PathBuf::from(key.trim_end_matches('/'));
    let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
    (plain && path.components().next().is_some()).then_some(path)
}

/// One name or a list of them, each configured and listed once.
fn names(node: &Node<'_>, accounts: &[&str], problems: &mut Problems) -> Option<Vec<String>> {
    let items = match node.value() {
        Value::Sequence(_) => node.items(problems)?,
        _ => vec![node.clone()],
    };
    if items.is_empty() {
        problems.push(node.problem("a route needs at least one account"));
        return None;
    }
    let mut names: Vec<String> = Vec::new();
    for item in items {
        let name = item.str(problems)?;
        if !accounts.contains(&name) {
            problems.push(item.problem(format!(
                "no account named `{name}`; configured: {}",
                accounts.join(", ")
            )));
        } else if names.iter().any(|n| n == name) {
            problems.push(item.problem(format!("`{name}` is listed twice")));
        } else {
            names.push(name.to_owned());
        }
    }
    (!names.is_empty()).then_some(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::Document;

    fn read(yaml: &str) -> (Vec<Route>, Vec<String>) {
        let doc = Document::parse(yaml, Some(Path::new("dropcast.yaml"))).unwrap();
        let mut problems = Problems::new();
        let routes = read_routes(&doc.root(), &["studio", "global"], &mut problems);
        let problems = problems.iter().map(ToString::to_string).collect();
        (routes, problems)
    }

    #[test]
    fn a_folder_takes_one_name_or_a_list() {
        let (routes, problems) = read("both: [studio, global]\nworld/tiktok: global\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(routes[0].folder, Path::new("both"));
        assert_eq!(routes[0].accounts, ["studio", "global"]);
        assert_eq!(routes[1].folder, Path::new("world/tiktok"));
        assert_eq!(routes[1].accounts, ["global"]);
    }

    #[test]
    fn unknown_accounts_bad_folders_and_repeats_are_named_with_their_line() {
        let (_, problems) =
            read("a: [studio, studoi]\n../up: studio\nb: [global, global]\nc: []\n");
        let all = problems.join("\n");
        assert!(
            all.contains("dropcast.yaml:1:") && all.contains("`studoi`"),
            "{all}"
        );
        assert!(
            all.contains("dropcast.yaml:2:1") && all.contains("`../up`"),
            "{all}"
        );
        assert!(
            all.contains("dropcast.yaml:3:") && all.contains("listed twice"),
            "{all}"
        );
        assert!(all.contains("at least one account"), "{all}");
    }

    #[test]
    fn the_deepest_folder_holding_the_video_wins() {
        let routes = vec![
            Route {
                folder: "world".into(),
                accounts: vec!["studio".into()],
            },
            Route {
                folder: "world/tiktok".into(),
                accounts: vec!["global".into()],
            },
        ];
        let at = |p: &str| route_for(&routes, Path::new(p)).map(<[String]>::to_vec);
        assert_eq!(
            at("world/tiktok/a/clip.mp4"),
            Some(vec!["global".to_owned()])
        );
        assert_eq!(at("world/clip.mp4"), Some(vec!["studio".to_owned()]));
        assert_eq!(at("worldwide/clip.mp4"), None);
        assert_eq!(at("clip.mp4"), None);
    }
}
