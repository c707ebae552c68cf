//! Pairing videos with caption files (README "Folder rules").
//!
//! For a video `X.<ext>` the caption is, in this order of precedence:
//! 1. its own caption beside it: `X.yaml`, then `X.yml`, then `X.caption.yaml` (the
//!    extensions in any case). `X.caption.yaml` is skipped when a video `X.caption.<ext>`
//!    sits in the same folder, because then it is *that* video's `X.yaml`;
//! 2. else the folder caption `caption.yaml`, then `caption.yml`, but only when the
//!    folder holds exactly one video;
//! 3. else none: the video waits for its caption.
//!
//! Two videos with the same stem (`X.mp4`, `X.mov`) and one own caption `X.yaml` are
//! ambiguous: which video did the user caption? Neither is published; both wait in the
//! inbox ([`CaptionLookup::Shared`]) until one video and its caption are renamed apart.
//! Symlinked captions are ignored like every other symlink. Both directions (video →
//! caption, caption → videos) use one rule over one directory listing, so they always
//! agree.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::names::NameFilter;

/// Where a video's caption comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaptionLookup {
    /// `X.yaml`, `X.yml` or `X.caption.yaml` beside `X.<ext>`.
    Own(PathBuf),
    /// `caption.yaml` / `caption.yml` of a folder that holds exactly this one video.
    Folder(PathBuf),
    /// No caption (yet).
    Missing,
    /// `X.yaml` fits several videos (`X.mp4`, `X.mov`): it is no one's until they are
    /// renamed apart.
    Shared(SharedCaption),
}

/// One own caption that fits several videos of the same stem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedCaption {
    pub caption: PathBuf,
    /// Every video it fits, sorted.
    pub videos: Vec<PathBuf>,
}

impl std::fmt::Display for SharedCaption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = |p: &Path| {
            p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        };
        let videos: Vec<String> = self.videos.iter().map(|v| name(v)).collect();
        let videos = match videos.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => videos.join(""),
        };
        write!(
            f,
            "{} fits {videos}; rename one video and its caption",
            name(&self.caption)
        )
    }
}

impl CaptionLookup {
    /// The caption file, if it is this video's alone (a shared caption is not: it must
    /// never move with one of its videos).
    pub fn path(&self) -> Option<&Path> {
        match self {
            CaptionLookup::Own(p) | CaptionLookup::Folder(p) => Some(p),
            CaptionLookup::Missing | CaptionLookup::Shared(_) => None,
        }
    }
}

/// Finds the caption of `video` by the rules in the module docs.
pub fn find_caption(video: &Path, filter: &NameFilter) -> io::Result<CaptionLookup> {
    let Some(name) = video.file_name() else {
        return Ok(CaptionLookup::Missing);
    };
    let dir = parent(video);
    let listing = Listing::read(dir, filter)?;
    Ok(match listing.lookup(name) {
        None => CaptionLookup::Missing,
        Some((Kind::Shared, caption)) => CaptionLookup::Shared(SharedCaption {
            caption: dir.join(caption),
            videos: listing
                .same_stem(name)
                .into_iter()
                .map(|v| dir.join(v))
                .collect(),
        }),
        Some((kind, caption)) => kind.wrap(dir.join(caption)),
    })
}

/// The folder of `path`; `""` for a bare file name (joins back to the bare name).
fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}

#[derive(Clone, Copy)]
enum Kind {
    Own,
    Folder,
    /// An own caption that also fits another video of the same stem.
    Shared,
}

impl Kind {
    fn wrap(self, path: PathBuf) -> CaptionLookup {
        match self {
            Kind::Own => CaptionLookup::Own(path),
            Kind::Folder => CaptionLookup::Folder(path),
            Kind::Shared => CaptionLookup::Missing,
        }
    }
}

/// The regular files of one folder that are videos or captions.
struct Listing {
    videos: Vec<OsString>,
    captions: Vec<OsString>,
}

impl Listing {
    fn read(dir: &Path, filter: &NameFilter) -> io::Result<Listing> {
        let read_from = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let mut listing = Listing {
            videos: Vec::new(),
            captions: Vec::new(),
        };
        for entry in fs::read_dir(read_from)? {
            let entry = entry?;
            // Not following symlinks: only regular files are input.
            if !entry.file_type()?.is_file() {
                continue;
            }
            let name = entry.file_name();
            let path = dir.join(&name);
            if filter.is_video(&path) {
                listing.videos.push(name);
            } else if filter.is_caption(&path) {
                listing.captions.push(name);
            }
        }
        listing.videos.sort();
        listing.captions.sort();
        Ok(listing)
    }

    /// The caption for the video named `video` (which must be in `self.videos` for the
    /// folder rule to count it), by the module's precedence.
    fn lookup(&self, video: &OsStr) -> Option<(Kind, &OsStr)> {
        let stem = Path::new(video).file_stem()?;
        let stem = stem.as_encoded_bytes();

        let own = |suffix: &str| {
            self.captions
                .iter()
                .find(|c| strip_prefix_ci_suffix(c, stem, suffix))
        };
        // Another video of the same stem makes an own caption ambiguous.
        let own_kind = if self.same_stem(video).len() > 1 {
            Kind::Shared
        } else {
            Kind::Own
        };
        if let Some(c) = own(".yaml").or_else(|| own(".yml")) {
            return Some((own_kind, c.as_os_str()));
        }
        if let Some(c) = own(".caption.yaml") {
            // `X.caption.yaml` is the own `X.yaml` of a video `X.caption.<ext>`, if any.
            let shadowed = self.videos.iter().any(|v| {
                Path::new(v)
                    .file_stem()
                    .is_some_and(|s| strip_prefix_ci_suffix(s, stem, ".caption"))
            });
            if !shadowed {
                return Some((own_kind, c.as_os_str()));
            }
        }

        if !(self.videos.len() == 1 && self.videos[0].as_os_str() == video) {
            return None;
        }
        let folder = |file: &str| {
            self.captions
                .iter()
                .find(|c| c.as_encoded_bytes().eq_ignore_ascii_case(file.as_bytes()))
        };
        folder("caption.yaml")
            .or_else(|| folder("caption.yml"))
            .map(|c| (Kind::Folder, c.as_os_str()))
    }
}

impl Listing {
    /// The videos of this folder whose stem is `video`'s (itself included), sorted.
    fn same_stem(&self, video: &OsStr) -> Vec<&OsStr> {
        let stem = Path::new(video).file_stem();
        self.videos
            .iter()
            .filter(|v| Path::new(v).file_stem() == stem)
            .map(OsString::as_os_str)
            .collect()
    }
}

/// `name` is exactly `stem` (byte for byte) followed by `suffix` (ASCII, any case).
fn strip_prefix_ci_suffix(name: &OsStr, stem: &[u8], suffix: &str) -> bool {
    name.as_encoded_bytes()
        .strip_prefix(stem)
        .is_some_and(|rest| rest.eq_ignore_ascii_case(suffix.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn filter() -> NameFilter {
        NameFilter::new(&["mp4".into(), "mov".into()], Vec::new())
    }

    fn dir_with(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            File::create(dir.path().join(f)).unwrap();
        }
        dir
    }

    fn lookup(dir: &Path, video: &str) -> CaptionLookup {
        find_caption(&dir.join(video), &filter()).unwrap()
    }

    #[test]
    fn own_yaml() {
        let d = dir_with(&["clip.mp4", "clip.yaml", "other.mp4"]);
        let p = d.path();
        assert_eq!(
            lookup(p, "clip.mp4"),
            CaptionLookup::Own(p.join("clip.yaml"))
        );
    }

    #[test]
    fn own_yml() {
        let d = dir_with(&["clip.mp4", "clip.yml"]);
        let p = d.path();
        assert_eq!(
            lookup(p, "clip.mp4"),
            CaptionLookup::Own(p.join("clip.yml"))
        );
    }

    #[test]
    fn own_caption_yaml() {
        let d = dir_with(&["clip.mp4", "clip.caption.yaml"]);
        let p = d.path();
        assert_eq!(
            lookup(p, "clip.mp4"),
            CaptionLookup::Own(p.join("clip.caption.yaml"))
        );
    }

    #[test]
    fn extension_case_is_ignored_but_stem_case_is_not() {
        let d = dir_with(&["clip.MP4", "clip.YAML", "Other.mp4", "other.yaml"]);
        let p = d.path();
        assert_eq!(
            lookup(p, "clip.MP4"),
            CaptionLookup::Own(p.join("clip.YAML"))
        );
        assert_eq!(lookup(p, "Other.mp4"), CaptionLookup::Missing);
    }

    #[test]
    fn precedence_yaml_then_yml_then_caption_yaml() {
        let d = dir_with(&["clip.mp4", "clip.yaml", "clip.yml", "clip.caption.yaml"]);
        let p = d.path();
        assert_eq!(
            lookup(p, "clip.mp4"),
            CaptionLookup::Own(p.join("clip.yaml"))
        );

        fs::remove_file(p.join("clip.yaml")).unwrap();
        assert_eq!(
            lookup(p, "clip.mp4"),
            CaptionLookup::Own(p.join("clip.yml"))
        );

        fs::remove_file(p.join("clip.yml")).unwrap();
        assert_eq!(
            lookup(p, "clip.mp4"),
            CaptionLookup::Own(p.join("clip.caption.yaml"))
        );
    }

    #[test]
    fn own_caption_beats_folder_caption() {
        let d = dir_with(&["clip.mp4", "clip.yaml", "caption.yaml"]);
        let p = d.path();
        assert_eq!(
            lookup(p, "clip.mp4"),
            CaptionLookup::Own(p.join("clip.yaml"))
        );
    }

    #[test]
    fn caption_yaml_of_a_video_named_x_caption() {
        // `clip.caption.yaml` is the own caption of `clip.caption.mp4`, not of `clip.mp4`.
        let d = dir_with(&["clip.mp4", "clip.caption.mp4", "clip.caption.yaml"]);
        let p = d.path();
        assert_eq!(
            lookup(p, "clip.caption.mp4"),
            CaptionLookup::Own(p.join("clip.caption.yaml"))
        );
        assert_eq!(lookup(p, "clip.mp4"), CaptionLookup::Missing);
    }

    #[test]
    fn folder_caption_with_one_video() {
        let d = dir_with(&["take7.mp4", "caption.yaml", "notes.txt"]);
        let p = d.path();
        assert_eq!(
            lookup(p, "take7.mp4"),
            CaptionLookup::Folder(p.join("caption.yaml"))
        );
    }

    #[test]
    fn folder_caption_yml_and_yaml_precedence() {
        let d = dir_with(&["take7.mp4", "caption.yml"]);
        let p = d.path();
        assert_eq!(
            lookup(p, "take7.mp4"),
            CaptionLookup::Folder(p.join("caption.yml"))
        );
        File::create(p.join("caption.yaml")).unwrap();
        assert_eq!(
            lookup(p, "take7.mp4"),
            CaptionLookup::Folder(p.join("caption.yaml"))
        );
    }

    #[test]
    fn folder_caption_with_two_videos_is_missing() {
        let d = dir_with(&["a.mp4", "b.mov", "caption.yaml"]);
        let p = d.path();
        assert_eq!(lookup(p, "a.mp4"), CaptionLookup::Missing);
        assert_eq!(lookup(p, "b.mov"), CaptionLookup::Missing);
    }

    #[test]
    fn temp_videos_do_not_count_for_the_folder_rule() {
        let d = dir_with(&["a.mp4", "b.mp4.part", ".c.mp4", "caption.yaml"]);
        let p = d.path();
        assert_eq!(
            lookup(p, "a.mp4"),
            CaptionLookup::Folder(p.join("caption.yaml"))
        );
    }

    #[test]
    fn folder_caption_is_also_own_caption_of_a_video_named_caption() {
        let d = dir_with(&["caption.mp4", "other.mp4", "caption.yaml"]);
        let p = d.path();
        assert_eq!(
            lookup(p, "caption.mp4"),
            CaptionLookup::Own(p.join("caption.yaml"))
        );
        assert_eq!(lookup(p, "other.mp4"), CaptionLookup::Missing);
    }

    // Regression (issue 9 item 14): of two videos sharing a stem and a caption, the
    // second was failed while its files stayed; the caption is now no one's.
    #[test]
    fn same_stem_videos_make_their_caption_ambiguous() {
        let d = dir_with(&["clip.mp4", "clip.mov", "clip.yaml", "other.mp4"]);
        let p = d.path();
        let shared = SharedCaption {
            caption: p.join("clip.yaml"),
            videos: vec![p.join("clip.mov"), p.join("clip.mp4")],
        };
        for video in ["clip.mp4", "clip.mov"] {
            let found = lookup(p, video);
            assert_eq!(found, CaptionLookup::Shared(shared.clone()));
            assert_eq!(
                found.path(),
                None,
                "a shared caption never moves with one video"
            );
        }
        assert_eq!(
            shared.to_string(),
            "clip.yaml fits clip.mov and clip.mp4; rename one video and its caption"
        );
        // Renaming one video (and giving it its own caption) resolves it.
        fs::rename(p.join("clip.mov"), p.join("clip-b.mov")).unwrap();
        assert_eq!(
            lookup(p, "clip.mp4"),
            CaptionLookup::Own(p.join("clip.yaml"))
        );
        assert_eq!(lookup(p, "clip-b.mov"), CaptionLookup::Missing);
    }

    #[test]
    fn missing_caption_and_temp_caption() {
        let d = dir_with(&["clip.mp4", "clip.yaml.tmp", ".clip.yaml"]);
        let p = d.path();
        assert_eq!(lookup(p, "clip.mp4"), CaptionLookup::Missing);
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_caption_is_ignored() {
        let d = dir_with(&["clip.mp4", "real.yaml"]);
        let p = d.path();
        std::os::unix::fs::symlink(p.join("real.yaml"), p.join("clip.yaml")).unwrap();
        assert_eq!(lookup(p, "clip.mp4"), CaptionLookup::Missing);
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_stems_pair_up() {
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let video = p.join(OsStr::from_bytes(b"clip-\xff.mp4"));
        let caption = p.join(OsStr::from_bytes(b"clip-\xff.caption.yaml"));
        File::create(&video).unwrap();
        File::create(&caption).unwrap();
        // A different invalid byte must not match.
        File::create(p.join(OsStr::from_bytes(b"clip-\xfe.yaml"))).unwrap();
        assert_eq!(
            find_caption(&video, &filter()).unwrap(),
            CaptionLookup::Own(caption.clone())
        );
    }

    #[test]
    fn missing_folder_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let err = find_caption(&d.path().join("gone/clip.mp4"), &filter()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
