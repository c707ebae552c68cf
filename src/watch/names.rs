//! Which file names are input: videos, captions, and the temp names tools use while a
//! file is still being written (README "Folder rules").

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Suffixes of files that are still being written (matched case-insensitively). Where
/// each comes from: docs/finished-files.md.
const TEMP_SUFFIXES: &[&str] = &[
    ".part",
    ".tmp",
    ".crdownload",
    ".partial~",
    // WinSCP's transfer to a temporary file name.
    ".filepart",
    // qBittorrent's "Append .!qB extension to incomplete files".
    ".!qb",
];

/// Suffixes of folders whose files are still downloading: Safari writes `clip.mp4` inside
/// `clip.mp4.download/` and moves it out when done (matched case-insensitively).
const TEMP_FOLDER_SUFFIXES: &[&str] = &[".download"];

/// Files a downloader keeps beside `NAME` while `NAME` is not complete: aria2's control
/// file `NAME.aria2`, and Firefox's `NAME.part` (Firefox creates an empty `NAME` at once
/// and renames `NAME.part` over it when done).
const MARKER_SUFFIXES: &[&str] = &[".aria2", ".part"];

/// Caption file extensions (matched case-insensitively).
const CAPTION_EXTENSIONS: &[&str] = &["yaml", "yml"];

/// Decides from a name alone whether a file is a video, a caption, or to be left alone.
///
/// Temp names are: `*.part`, `*.tmp`, `*.crdownload`, `*.partial~`, `*.filepart`, `*.!qB`
/// (any case), `.syncthing.*`, `~*`, every dot-file, files directly inside a `*.download`
/// folder, and whatever matches one of the `ignore` globs. An ignore glob is
/// tried against the file name and against the whole path as given, so both `*.bak` and
/// `*/drafts/*` work.
#[derive(Clone, Debug)]
pub struct NameFilter {
    /// Lower-case, without the dot.
    extensions: Vec<String>,
    ignore: Vec<glob::Pattern>,
}

impl NameFilter {
    /// `extensions` are the video extensions, lower-case, without the dot (`mp4`). They are
    /// lower-cased again here, so a stray upper-case entry still works.
    pub fn new(extensions: &[String], ignore: Vec<glob::Pattern>) -> NameFilter {
        NameFilter {
            extensions: extensions
                .iter()
                .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
                .collect(),
            ignore,
        }
    }

    /// True for names of files that are not finished or not ours to touch.
    pub(crate) fn is_temp_name(&self, name: &OsStr) -> bool {
        // Non-UTF-8 bytes become U+FFFD; every pattern we test is ASCII, so that is exact.
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with('~') {
            // Covers dot-files, `.syncthing.*` and `~*`.
            return true;
        }
        let lower = name.to_ascii_lowercase();
        if TEMP_SUFFIXES.iter().any(|s| lower.ends_with(s)) {
            return true;
        }
        self.ignore.iter().any(|p| p.matches(&name))
    }

    /// True when the path's extension is a video extension (any case) and its name is not
    /// a temp name.
    pub(crate) fn is_video(&self, path: &Path) -> bool {
        self.has_extension(path, |ext| self.extensions.iter().any(|e| e == ext))
    }

    /// True for `*.yaml` / `*.yml` (any case) that are not temp names.
    pub(crate) fn is_caption(&self, path: &Path) -> bool {
        self.has_extension(path, |ext| CAPTION_EXTENSIONS.contains(&ext))
    }

    fn has_extension(&self, path: &Path, accept: impl Fn(&str) -> bool) -> bool {
        let Some(name) = path.file_name() else {
            return false;
        };
        if self.is_temp_name(name) || in_temp_folder(path) || self.ignored_path(path) {
            return false;
        }
        path.extension()
            .and_then(OsStr::to_str)
            .is_some_and(|ext| accept(&ext.to_ascii_lowercase()))
    }

    fn ignored_path(&self, path: &Path) -> bool {
        !self.ignore.is_empty() && self.ignore.iter().any(|p| p.matches_path(path))
    }
}

/// True when `path` lies directly inside a folder a downloader is still filling (Safari's
/// `*.download` bundle). Only the parent is looked at, so an inbox named `x.download`
/// itself would hide its top-level files: don't name it so.
fn in_temp_folder(path: &Path) -> bool {
    path.parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|n| TEMP_FOLDER_SUFFIXES.iter().any(|s| n.ends_with(s)))
}

/// A downloader's file beside `video` that says `video` is still being downloaded
/// (`clip.mp4.aria2`, Firefox's `clip.mp4.part`), if one exists. Looks for the exact
/// lower- and upper-case spellings; a marker that cannot be checked counts as absent.
pub(crate) fn download_marker(video: &Path) -> Option<PathBuf> {
    let name = video.file_name()?;
    MARKER_SUFFIXES.iter().find_map(|suffix| {
        [suffix.to_string(), suffix.to_ascii_uppercase()]
            .into_iter()
            .map(|s| {
                let mut marker = name.to_os_string();
                marker.push(s);
                video.with_file_name(marker)
            })
            .find(|m| m.symlink_metadata().is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn filter(ignore: &[&str]) -> NameFilter {
        NameFilter::new(
            &["mp4".into(), "mov".into(), "m4v".into(), "webm".into()],
            ignore
                .iter()
                .map(|p| glob::Pattern::new(p).unwrap())
                .collect(),
        )
    }

    #[test]
    fn every_temp_pattern_is_temp() {
        let f = filter(&[]);
        for name in [
            "clip.mp4.part",
            "clip.part",
            "clip.mp4.tmp",
            "clip.mp4.crdownload",
            "clip.mp4.partial~",
            ".syncthing.clip.mp4.tmp",
            ".syncthing.clip.mp4",
            "~clip.mp4",
            "~$caption.yaml",
            ".clip.mp4",
            ".hidden",
            "CLIP.MP4.PART",
            "clip.Crdownload",
            "clip.TMP",
            "clip.mp4.filepart",
            "clip.mp4.FILEPART",
            "clip.mp4.!qB",
            "clip.mp4.!qb",
        ] {
            assert!(f.is_temp_name(OsStr::new(name)), "{name} should be temp");
            assert!(!f.is_video(Path::new(name)), "{name} must not be a video");
        }
    }

    #[test]
    fn ordinary_names_are_not_temp() {
        let f = filter(&[]);
        for name in [
            "clip.mp4",
            "clip~.mp4",
            "part.mp4",
            "a.tmp.mp4",
            "clip.partial",
            "clip.filepart.mp4",
            "clip.mp4.aria2",
            "clip.mp4.download",
        ] {
            assert!(!f.is_temp_name(OsStr::new(name)), "{name} is not temp");
        }
    }

    #[test]
    fn files_inside_a_safari_download_bundle_are_temp() {
        let f = filter(&[]);
        assert!(!f.is_video(Path::new("/in/clip.mp4.download/clip.mp4")));
        assert!(!f.is_video(Path::new("/in/clip.mp4.Download/clip.mp4")));
        assert!(!f.is_caption(Path::new("/in/clip.yaml.download/clip.yaml")));
        // Only the folder directly above counts; a `downloads` folder is no bundle.
        assert!(f.is_video(Path::new("/in/downloads/clip.mp4")));
        assert!(f.is_video(Path::new("/in/x.download/sub/clip.mp4")));
    }

    #[test]
    fn download_markers_beside_a_video() {
        let dir = tempfile::tempdir().unwrap();
        let video = dir.path().join("clip.mp4");
        std::fs::write(&video, b"").unwrap();
        assert_eq!(download_marker(&video), None);
        for marker in ["clip.mp4.aria2", "clip.mp4.part", "clip.mp4.ARIA2"] {
            let m = dir.path().join(marker);
            std::fs::write(&m, b"").unwrap();
            assert_eq!(download_marker(&video), Some(m.clone()), "{marker}");
            std::fs::remove_file(&m).unwrap();
        }
        // A marker for another name says nothing about this one.
        std::fs::write(dir.path().join("clip.aria2"), b"").unwrap();
        std::fs::write(dir.path().join("other.mp4.aria2"), b"").unwrap();
        assert_eq!(download_marker(&video), None);
    }

    #[test]
    fn ignore_globs_match_name_or_path() {
        let f = filter(&["*.bak.mp4", "*/drafts/*"]);
        assert!(f.is_temp_name(OsStr::new("x.bak.mp4")));
        assert!(!f.is_video(Path::new("/in/x.bak.mp4")));
        assert!(!f.is_video(Path::new("/in/drafts/x.mp4")));
        assert!(!f.is_caption(Path::new("/in/drafts/x.yaml")));
        assert!(f.is_video(Path::new("/in/final/x.mp4")));
    }

    #[test]
    fn video_extensions_any_case() {
        let f = filter(&[]);
        assert!(f.is_video(Path::new("/in/clip.mp4")));
        assert!(f.is_video(Path::new("/in/clip.MP4")));
        assert!(f.is_video(Path::new("/in/Clip.MoV")));
        assert!(f.is_video(Path::new("clip.webm")));
        assert!(!f.is_video(Path::new("/in/clip.mkv")));
        assert!(!f.is_video(Path::new("/in/mp4")));
        assert!(!f.is_video(Path::new("/in/clip.yaml")));
        assert!(!f.is_video(Path::new("/")));
    }

    #[test]
    fn configured_extensions_are_normalised() {
        let f = NameFilter::new(&["MKV".into(), ".avi".into()], Vec::new());
        assert!(f.is_video(Path::new("a.mkv")));
        assert!(f.is_video(Path::new("a.AVI")));
        assert!(!f.is_video(Path::new("a.mp4")));
    }

    #[test]
    fn captions() {
        let f = filter(&[]);
        assert!(f.is_caption(Path::new("/in/clip.yaml")));
        assert!(f.is_caption(Path::new("/in/clip.YML")));
        assert!(f.is_caption(Path::new("/in/clip.caption.yaml")));
        assert!(f.is_caption(Path::new("/in/caption.yaml")));
        assert!(!f.is_caption(Path::new("/in/.clip.yaml")));
        assert!(!f.is_caption(Path::new("/in/clip.yaml.tmp")));
        assert!(!f.is_caption(Path::new("/in/clip.json")));
        assert!(!f.is_caption(Path::new("/in/clip.mp4")));
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_names() {
        use std::os::unix::ffi::OsStrExt;
        let f = filter(&[]);
        let video = PathBuf::from(OsStr::from_bytes(b"/in/clip-\xff\xfe.mp4"));
        assert!(f.is_video(&video));
        assert!(!f.is_temp_name(video.file_name().unwrap()));
        let temp = OsStr::from_bytes(b"clip-\xff.mp4.part");
        assert!(f.is_temp_name(temp));
        let dot = OsStr::from_bytes(b".\xff.mp4");
        assert!(f.is_temp_name(dot));
        // A non-UTF-8 extension is never a known one.
        assert!(!f.is_video(Path::new(OsStr::from_bytes(b"/in/clip.mp\xff"))));
    }
}
