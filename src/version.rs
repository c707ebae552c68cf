//! What this dropcast says it is: the package version and, when build.rs could tell, the
//! commit it was built from (`0.1.0 (abc123def456)`). `--version`, the agents table
//! (`status`, `/api/jobs`, the dashboard, `/metrics`) all show this one string.

/// `0.1.0 (abc123def456)`, `0.1.0 (abc123def456-dirty)`, or `0.1.0` when the commit is unknown.
pub const VERSION: &str = env!("DROPCAST_BUILD_VERSION");

/// The commit (12 hex digits, maybe `-dirty`, or `DROPCAST_COMMIT` as given), if known.
pub const COMMIT: Option<&str> = option_env!("DROPCAST_BUILD_COMMIT");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_starts_with_the_package_version_and_names_the_commit_it_knows() {
        assert!(VERSION.starts_with(env!("CARGO_PKG_VERSION")), "{VERSION}");
        match COMMIT {
            Some(commit) => assert!(VERSION.ends_with(&format!(" ({commit})")), "{VERSION}"),
            None => assert_eq!(VERSION, env!("CARGO_PKG_VERSION")),
        }
    }
}
