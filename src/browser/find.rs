//! Which browser runs the sessions: `platform.browser: PATH`, or the first Chromium, Google
//! Chrome or Microsoft Edge found on `PATH` or in its usual place on Linux, macOS and
//! Windows. None found is an error that says what to install.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::Browser;

/// Names looked up on `PATH`, best first.
const PATH_NAMES: &[&str] = if cfg!(windows) {
    &["chromium.exe", "chrome.exe", "msedge.exe"]
} else {
    &[
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
        "chrome",
        "microsoft-edge",
        "microsoft-edge-stable",
    ]
};

/// Where the browsers install themselves, best first (after `PATH`).
fn well_known() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    if cfg!(target_os = "macos") {
        let apps = [
            "Chromium.app/Contents/MacOS/Chromium",
            "Google Chrome.app/Contents/MacOS/Google Chrome",
            "Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
        ];
        let mut roots = vec![PathBuf::from("/Applications")];
        if let Some(home) = std::env::var_os("HOME") {
            roots.push(PathBuf::from(home).join("Applications"));
        }
        for app in apps {
            out.extend(roots.iter().map(|r| r.join(app)));
        }
    } else if cfg!(windows) {
        let apps = [
            r"Chromium\Application\chrome.exe",
            r"Google\Chrome\Application\chrome.exe",
            r"Microsoft\Edge\Application\msedge.exe",
        ];
        let roots: Vec<PathBuf> = ["LOCALAPPDATA", "ProgramFiles", "ProgramFiles(x86)"]
            .iter()
            .filter_map(std::env::var_os)
            .map(PathBuf::from)
            .collect();
        for app in apps {
            out.extend(roots.iter().map(|r| r.join(app)));
        }
    } else {
        out.extend(
            [
                "/usr/bin/chromium",
                "/usr/bin/chromium-browser",
                "/snap/bin/chromium",
                "/usr/bin/google-chrome",
                "/opt/google/chrome/chrome",
                "/usr/bin/microsoft-edge",
                "/opt/microsoft/msedge/msedge",
            ]
            .map(PathBuf::from),
        );
    }
    out
}

/// Where to look: the machine's own (`Search::system()`), or a given `PATH` and list of
/// usual places (tests).
#[derive(Clone, Debug)]
pub struct Search {
    /// A `PATH`-like list of folders.
    pub path: Option<OsString>,
    pub well_known: Vec<PathBuf>,
}

impl Search {
    pub fn system() -> Search {
        Search {
            path: std::env::var_os("PATH"),
            well_known: well_known(),
        }
    }
}

/// No browser to run.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoBrowser {
    #[error(
        "no Chromium, Google Chrome or Microsoft Edge found (looked on PATH for {} and in {} usual places). \
         Install one (Debian/Ubuntu: `sudo apt-get install chromium`; Fedora: `sudo dnf install chromium`; \
         macOS and Windows: Google Chrome or Microsoft Edge), or set `platform.browser: /path/to/browser` in the config",
        PATH_NAMES.join(", "),
        looked_in
    )]
    NotFound { looked_in: usize },
    #[error(
        "`platform.browser` is {}, which {reason}: set it to a Chromium, Chrome or Edge executable, or to `auto`",
        path.display()
    )]
    Unusable { path: PathBuf, reason: String },
}

impl fmt::Debug for NoBrowser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The browser to run for `setting`.
pub fn find_browser(setting: &Browser, search: &Search) -> Result<PathBuf, NoBrowser> {
    match setting {
        Browser::Path(path) => match executable(path) {
            Ok(()) => Ok(path.clone()),
            Err(reason) => Err(NoBrowser::Unusable {
                path: path.clone(),
                reason,
            }),
        },
        Browser::Auto => {
            let on_path = search
                .path
                .iter()
                .flat_map(std::env::split_paths)
                .filter(|dir| dir.is_absolute())
                .flat_map(|dir| PATH_NAMES.iter().map(move |n| dir.join(n)));
            on_path
                .chain(search.well_known.iter().cloned())
                .find(|p| executable(p).is_ok())
                .ok_or(NoBrowser::NotFound {
                    looked_in: search.well_known.len(),
                })
        }
    }
}

/// `Ok` when `path` is a file this user may run; else why not.
fn executable(path: &Path) -> Result<(), String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("does not exist".into()),
        Err(e) => return Err(format!("cannot be read ({e})")),
    };
    if !meta.is_file() {
        return Err("is not a file".into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err("is not executable".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exe(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        p
    }

    #[test]
    fn path_names_come_first_in_order_then_usual_places() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let usual = exe(tmp.path(), "usual-chrome");
        let search = Search {
            path: Some(std::env::join_paths([&bin]).unwrap()),
            well_known: vec![tmp.path().join("missing"), usual.clone()],
        };
        assert_eq!(find_browser(&Browser::Auto, &search), Ok(usual));
        let edge = exe(&bin, PATH_NAMES[PATH_NAMES.len() - 1]);
        assert_eq!(find_browser(&Browser::Auto, &search), Ok(edge));
        let chromium = exe(&bin, PATH_NAMES[0]);
        assert_eq!(find_browser(&Browser::Auto, &search), Ok(chromium));
    }

    #[cfg(unix)]
    #[test]
    fn a_configured_path_must_be_an_executable_file() {
        let tmp = tempfile::tempdir().unwrap();
        let plain = tmp.path().join("chromium");
        std::fs::write(&plain, "").unwrap();
        let err = find_browser(&Browser::Path(plain.clone()), &Search::system()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "`platform.browser` is {}, which is not executable: set it to a Chromium, Chrome or Edge executable, or to `auto`",
                plain.display()
            )
        );
        let dir = Browser::Path(tmp.path().to_path_buf());
        assert!(
            find_browser(&dir, &Search::system())
                .unwrap_err()
                .to_string()
                .contains("which is not a file")
        );
    }
}
