//! Carrying out an [`ArchivePlan`], idempotently: whatever state a crash left the
//! files in, running the plan again finishes it, and running a finished plan changes
//! nothing.
//!
//! First every file is surveyed and nothing is touched unless the whole plan can go
//! ahead: a destination holding other bytes than ours stops it (`Taken` if the plan
//! never started, so the caller may plan again; `Raced` otherwise). Then: the receipt,
//! `archive:after_receipt`, the caption, `archive:after_caption`, the video,
//! `archive:after_video`.

use std::fs;
use std::io;
use std::path::Path;

use super::fsops::{
    move_file, parent_of, probe, read_prefix, remove_partials, same_content, sync_dir,
    write_new_file,
};
use super::{ArchiveError, ArchivePlan, Archived, Move};
use crate::failpoint;

/// What a survey found for one move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MoveState {
    /// Only the source exists: to be moved.
    Pending,
    /// Only the destination exists: moved.
    Moved,
    /// Both exist with the same bytes: a copy across file systems (or a hard link)
    /// is in place and the source was not removed yet.
    Copied,
    /// Both exist with different bytes: someone else's file has the destination name.
    Differs,
}

/// What a survey found for the receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReceiptState {
    Absent,
    Ours,
}

struct Survey {
    receipt: ReceiptState,
    moves: Vec<MoveState>,
    /// Some of this plan's work is on disk already.
    started: bool,
}

/// Runs `plan` to the end. Safe to run again after a crash at any point of an earlier
/// run of the same plan; a finished plan is left as it is. See the module docs.
pub fn execute(plan: &ArchivePlan) -> Result<Archived, ArchiveError> {
    let archived = check(plan)?;
    let survey = survey(plan)?;
    if survey.started {
        tracing::debug!(receipt = %plan.receipt.display(), "finishing an archive that was started before");
    }

    for dir in std::iter::once(&plan.receipt)
        .chain(plan.moves.iter().map(|m| &m.to))
        .map(|p| parent_of(p))
    {
        fs::create_dir_all(dir).map_err(|source| io_error("create folder", dir, source))?;
    }

    if survey.receipt == ReceiptState::Absent {
        write_receipt(plan, survey.started)?;
    }
    failpoint::hit("archive:after_receipt");

    let mut states = plan.moves.iter().zip(&survey.moves);
    let last = states.next_back();
    for (m, state) in states {
        finish_move(m, *state)?;
    }
    failpoint::hit("archive:after_caption");
    if let Some((m, state)) = last {
        finish_move(m, *state)?;
    }
    failpoint::hit("archive:after_video");

    tracing::info!(
        to = %archived.video.display(),
        receipt = %archived.receipt.display(),
        "archived"
    );
    Ok(archived)
}

/// The plan's shape: at least the video's move, absolute paths with file names.
fn check(plan: &ArchivePlan) -> Result<Archived, ArchiveError> {
    let archived = plan
        .archived()
        .ok_or(ArchiveError::BadPlan("it moves no files"))?;
    if plan.moves.len() > 2 {
        return Err(ArchiveError::BadPlan(
            "it moves more than a video and a caption",
        ));
    }
    let paths =
        std::iter::once(&plan.receipt).chain(plan.moves.iter().flat_map(|m| [&m.from, &m.to]));
    for path in paths {
        if !path.is_absolute() {
            return Err(ArchiveError::BadPlan("a path in it is not absolute"));
        }
        if path.file_name().is_none() {
            return Err(ArchiveError::NoFileName(path.clone()));
        }
    }
    Ok(archived)
}

/// Looks at every file of the plan, changing nothing; fails if the plan cannot be
/// finished without overwriting or losing something.
fn survey(plan: &ArchivePlan) -> Result<Survey, ArchiveError> {
    let ours = plan.receipt_json.as_bytes();
    // One byte more than ours, to see a longer file as different.
    let limit = ours.len() as u64 + 1;
    let (receipt, foreign_receipt) = match read_prefix(&plan.receipt, limit)
        .map_err(|source| io_error("read", &plan.receipt, source))?
    {
        None => (ReceiptState::Absent, false),
        Some(bytes) if bytes == ours => (ReceiptState::Ours, false),
        Some(_) => (ReceiptState::Absent, true),
    };

    let mut moves = Vec::with_capacity(plan.moves.len());
    for m in &plan.moves {
        let from = probe(&m.from).map_err(|source| io_error("inspect", &m.from, source))?;
        let to = probe(&m.to).map_err(|source| io_error("inspect", &m.to, source))?;
        moves.push(match (from, to) {
            (true, false) => MoveState::Pending,
            (false, true) => MoveState::Moved,
            (true, true) => {
                if same_content(&m.from, &m.to)
                    .map_err(|source| io_error("compare", &m.to, source))?
                {
                    MoveState::Copied
                } else {
                    MoveState::Differs
                }
            }
            (false, false) => {
                return Err(ArchiveError::Lost {
                    from: m.from.clone(),
                    to: m.to.clone(),
                });
            }
        });
    }

    let started = receipt == ReceiptState::Ours
        || moves
            .iter()
            .any(|s| matches!(s, MoveState::Moved | MoveState::Copied));
    let differs = moves
        .iter()
        .zip(&plan.moves)
        .find(|(state, _)| **state == MoveState::Differs)
        .map(|(_, m)| m.to.clone());
    let blocked = if foreign_receipt {
        Some(plan.receipt.clone())
    } else {
        differs
    };
    if let Some(path) = blocked {
        return Err(if started {
            ArchiveError::Raced(path)
        } else {
            ArchiveError::Taken(path)
        });
    }
    Ok(Survey {
        receipt,
        moves,
        started,
    })
}

fn write_receipt(plan: &ArchivePlan, started: bool) -> Result<(), ArchiveError> {
    let path = &plan.receipt;
    remove_partials(path).map_err(|source| io_error("clean up beside", path, source))?;
    match write_new_file(path, plan.receipt_json.as_bytes()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // Someone wrote it between the survey and now: fine only if it is ours.
            let limit = plan.receipt_json.len() as u64 + 1;
            match read_prefix(path, limit) {
                Ok(Some(bytes)) if bytes == plan.receipt_json.as_bytes() => Ok(()),
                _ if started => Err(ArchiveError::Raced(path.clone())),
                _ => Err(ArchiveError::Taken(path.clone())),
            }
        }
        Err(source) => Err(io_error("write receipt", path, source)),
    }
}

fn finish_move(m: &Move, state: MoveState) -> Result<(), ArchiveError> {
    match state {
        MoveState::Pending => {
            remove_partials(&m.to).map_err(|source| io_error("clean up beside", &m.to, source))?;
            move_file(&m.from, &m.to)
        }
        // The survey stops a plan with such a move before anything is touched.
        MoveState::Differs => Err(ArchiveError::Raced(m.to.clone())),
        MoveState::Moved => {
            remove_partials(&m.to).map_err(|source| io_error("clean up beside", &m.to, source))
        }
        MoveState::Copied => {
            // The destination was fsynced and renamed into place before the crash and
            // holds the same bytes: only the source's removal is missing.
            tracing::info!(
                from = %m.from.display(),
                to = %m.to.display(),
                "finishing an interrupted move: the copy is complete, removing the source"
            );
            match fs::remove_file(&m.from) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(io_error("remove", &m.from, source)),
            }
            let _ = sync_dir(parent_of(&m.from));
            remove_partials(&m.to).map_err(|source| io_error("clean up beside", &m.to, source))
        }
    }
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> ArchiveError {
    ArchiveError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use serde_json::json;

    use super::super::{Destination, Folders, plan};
    use super::*;

    const VIDEO: &[u8] = b"VIDEO BYTES";
    const CAPTION: &[u8] = b"text: hi\n";

    struct Fixture {
        dir: tempfile::TempDir,
        plan: ArchivePlan,
    }

    impl Fixture {
        fn root(&self) -> &Path {
            self.dir.path()
        }
        fn caption(&self) -> &Move {
            &self.plan.moves[0]
        }
        fn video(&self) -> &Move {
            &self.plan.moves[1]
        }
        /// Every file under the root with its bytes (folders are not listed).
        fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
            let mut out = BTreeMap::new();
            walk(self.root(), self.root(), &mut out);
            out
        }
        /// The files as a finished archive leaves them.
        fn finished(&self) -> BTreeMap<PathBuf, Vec<u8>> {
            let rel = |p: &Path| p.strip_prefix(self.root()).unwrap().to_path_buf();
            BTreeMap::from([
                (rel(&self.video().to), VIDEO.to_vec()),
                (rel(&self.caption().to), CAPTION.to_vec()),
                (
                    rel(&self.plan.receipt),
                    self.plan.receipt_json.clone().into_bytes(),
                ),
            ])
        }
        fn write_receipt(&self) {
            fs::create_dir_all(parent_of(&self.plan.receipt)).unwrap();
            fs::write(&self.plan.receipt, &self.plan.receipt_json).unwrap();
        }
    }

    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let folders = Folders {
            inbox: root.join("inbox"),
            done: root.join("done"),
            failed: root.join("failed"),
            duplicates: root.join("duplicates"),
        };
        fs::create_dir_all(root.join("inbox/job")).unwrap();
        let video = root.join("inbox/job/clip.mp4");
        let caption = root.join("inbox/job/clip.yaml");
        fs::write(&video, VIDEO).unwrap();
        fs::write(&caption, CAPTION).unwrap();
        let plan = plan(
            &folders,
            Destination::Done,
            &video,
            Some(&caption),
            &json!({"aweme_id": "7"}),
        )
        .unwrap();
        Fixture { dir, plan }
    }

    fn do_move(m: &Move) {
        fs::create_dir_all(parent_of(&m.to)).unwrap();
        fs::rename(&m.from, &m.to).unwrap();
    }

    fn copy_only(m: &Move) {
        fs::create_dir_all(parent_of(&m.to)).unwrap();
        fs::copy(&m.from, &m.to).unwrap();
    }

    /// A temp file as an interrupted copy by another (dead) process leaves it.
    fn partial(to: &Path, bytes: &[u8]) -> PathBuf {
        fs::create_dir_all(parent_of(to)).unwrap();
        let mut name = std::ffi::OsString::from(".dropcast-partial-");
        name.push(to.file_name().unwrap());
        name.push("-999999999");
        let path = parent_of(to).join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn plan_touches_nothing_and_is_absolute() {
        let f = fixture();
        assert!(!f.root().join("done").exists());
        assert_eq!(f.plan.dest, Destination::Done);
        assert_eq!(f.caption().to, f.root().join("done/job/clip.yaml"));
        assert_eq!(f.video().to, f.root().join("done/job/clip.mp4"));
        assert_eq!(f.plan.receipt, f.root().join("done/job/clip.receipt.json"));
        assert!(f.plan.receipt_json.ends_with("}\n"));
        assert!(
            f.plan
                .moves
                .iter()
                .all(|m| m.from.is_absolute() && m.to.is_absolute())
        );
    }

    #[test]
    fn every_crash_point_is_finished_with_each_file_once() {
        type Stage = fn(&Fixture) -> Vec<PathBuf>;
        let stages: [(&str, Stage); 9] = [
            ("nothing done yet", |_| vec![]),
            ("receipt temp file half written", |f| {
                vec![partial(&f.plan.receipt, b"{\"aw")]
            }),
            ("receipt only", |f| {
                f.write_receipt();
                vec![]
            }),
            ("receipt and caption", |f| {
                f.write_receipt();
                do_move(f.caption());
                vec![]
            }),
            ("caption copied across devices, source not removed", |f| {
                f.write_receipt();
                copy_only(f.caption());
                vec![]
            }),
            ("video temp file half copied", |f| {
                f.write_receipt();
                do_move(f.caption());
                vec![partial(&f.video().to, &VIDEO[..4])]
            }),
            ("video copied across devices, source not removed", |f| {
                f.write_receipt();
                do_move(f.caption());
                copy_only(f.video());
                vec![]
            }),
            ("video hard-linked, inbox name not removed", |f| {
                f.write_receipt();
                do_move(f.caption());
                fs::hard_link(&f.video().from, &f.video().to).unwrap();
                vec![]
            }),
            ("everything moved", |f| {
                f.write_receipt();
                do_move(f.caption());
                do_move(f.video());
                vec![]
            }),
        ];
        for (name, stage) in stages {
            let f = fixture();
            let leftovers = stage(&f);
            let out = execute(&f.plan).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(f.files(), f.finished(), "{name}");
            assert_eq!(out, f.plan.archived().unwrap(), "{name}");
            for path in leftovers {
                assert!(!path.exists(), "{name}: {} left", path.display());
            }
            // Running the finished plan again changes nothing.
            assert_eq!(execute(&f.plan).unwrap(), out, "{name}: again");
            assert_eq!(f.files(), f.finished(), "{name}: again");
        }
    }

    #[test]
    fn a_different_file_at_a_destination_stops_everything() {
        type Stage = fn(&Fixture);
        let stages: [(&str, Stage); 3] = [
            (
                "video destination holds other bytes after the caption moved",
                |f| {
                    f.write_receipt();
                    do_move(f.caption());
                    fs::write(&f.video().to, b"SOMEONE ELSE").unwrap();
                },
            ),
            ("video destination longer than ours", |f| {
                f.write_receipt();
                do_move(f.caption());
                fs::write(&f.video().to, [VIDEO, b"!"].concat()).unwrap();
            }),
            (
                "receipt replaced by another file after the caption moved",
                |f| {
                    f.write_receipt();
                    do_move(f.caption());
                    fs::write(&f.plan.receipt, "{}\n").unwrap();
                },
            ),
        ];
        for (name, stage) in stages {
            let f = fixture();
            stage(&f);
            let before = f.files();
            let err = execute(&f.plan).unwrap_err();
            assert!(matches!(err, ArchiveError::Raced(_)), "{name}: {err}");
            assert_eq!(f.files(), before, "{name}: nothing touched");
        }
    }

    #[test]
    fn names_taken_before_the_plan_started_allow_planning_again() {
        for taken in ["video", "caption", "receipt"] {
            let f = fixture();
            let path = match taken {
                "video" => f.video().to.clone(),
                "caption" => f.caption().to.clone(),
                _ => f.plan.receipt.clone(),
            };
            fs::create_dir_all(parent_of(&path)).unwrap();
            fs::write(&path, b"stray").unwrap();
            let before = f.files();
            let err = execute(&f.plan).unwrap_err();
            assert!(
                matches!(&err, ArchiveError::Taken(p) if *p == path),
                "{taken}: {err}"
            );
            assert_eq!(f.files(), before, "{taken}: nothing touched");

            // A fresh plan moves the whole bundle to the next suffix.
            let root = f.root();
            let folders = Folders {
                inbox: root.join("inbox"),
                done: root.join("done"),
                failed: root.join("failed"),
                duplicates: root.join("duplicates"),
            };
            let again = plan(
                &folders,
                Destination::Done,
                &f.video().from,
                Some(&f.caption().from),
                &json!({"aweme_id": "7"}),
            )
            .unwrap();
            let out = execute(&again).unwrap();
            assert_eq!(out.video, root.join("done/job/clip-1.mp4"), "{taken}");
            assert_eq!(fs::read(&path).unwrap(), b"stray");
        }
    }

    #[test]
    fn a_file_gone_from_both_places_is_reported_and_nothing_moves() {
        let f = fixture();
        f.write_receipt();
        fs::remove_file(&f.caption().from).unwrap();
        let before = f.files();
        let err = execute(&f.plan).unwrap_err();
        assert!(
            matches!(&err, ArchiveError::Lost { from, .. } if *from == f.caption().from),
            "{err}"
        );
        assert!(err.to_string().contains("moved or deleted by someone else"));
        assert_eq!(f.files(), before);
    }

    #[test]
    fn unusable_plans_are_refused() {
        let f = fixture();
        let mut empty = f.plan.clone();
        empty.moves.clear();
        assert!(matches!(execute(&empty), Err(ArchiveError::BadPlan(_))));
        let mut relative = f.plan.clone();
        relative.moves[1].to = PathBuf::from("done/clip.mp4");
        assert!(matches!(execute(&relative), Err(ArchiveError::BadPlan(_))));
        let mut three = f.plan.clone();
        three.moves.push(f.plan.moves[0].clone());
        assert!(matches!(execute(&three), Err(ArchiveError::BadPlan(_))));
        assert!(!f.root().join("done").exists());
    }

    #[test]
    fn a_plan_read_back_from_json_finishes_the_job() {
        let f = fixture();
        f.write_receipt();
        do_move(f.caption());
        let stored = serde_json::to_value(&f.plan).unwrap();
        assert_eq!(stored["dest"], "done");
        let back: ArchivePlan = serde_json::from_value(stored).unwrap();
        assert_eq!(back, f.plan);
        execute(&back).unwrap();
        assert_eq!(f.files(), f.finished());
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_plan_round_trips_and_executes() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let folders = Folders {
            inbox: root.join("inbox"),
            done: root.join("done"),
            failed: root.join("failed"),
            duplicates: root.join("duplicates"),
        };
        let sub = folders.inbox.join(OsStr::from_bytes(b"\xffdir"));
        fs::create_dir_all(&sub).unwrap();
        let video = sub.join(OsStr::from_bytes(b"cl\xfeip.mp4"));
        let caption = sub.join(OsStr::from_bytes(b"cl\xfeip.yaml"));
        fs::write(&video, VIDEO).unwrap();
        fs::write(&caption, CAPTION).unwrap();
        let p = plan(
            &folders,
            Destination::Failed,
            &video,
            Some(&caption),
            &json!({}),
        )
        .unwrap();
        let text = serde_json::to_string(&p).unwrap();
        let back: ArchivePlan = serde_json::from_str(&text).unwrap();
        assert_eq!(back, p);
        assert_eq!(
            back.receipt,
            folders
                .failed
                .join(OsStr::from_bytes(b"\xffdir"))
                .join(OsStr::from_bytes(b"cl\xfeip.error.json"))
        );
        // Crash after the receipt, then finish from the stored plan.
        fs::create_dir_all(parent_of(&back.receipt)).unwrap();
        fs::write(&back.receipt, &back.receipt_json).unwrap();
        let out = execute(&back).unwrap();
        assert_eq!(fs::read(&out.video).unwrap(), VIDEO);
        assert_eq!(fs::read(out.caption.unwrap()).unwrap(), CAPTION);
        assert!(!video.exists() && !caption.exists());
    }

    /// Runs a stored plan in a child process that aborts at a failpoint; only does
    /// something when started by `real_crashes_at_every_archive_failpoint`.
    #[cfg(feature = "failpoints")]
    #[test]
    #[ignore = "run as a child process by real_crashes_at_every_archive_failpoint"]
    fn crash_child() {
        let Some(path) = std::env::var_os("DROPCAST_TEST_PLAN") else {
            return;
        };
        let plan: ArchivePlan = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        execute(&plan).unwrap();
    }

    #[cfg(feature = "failpoints")]
    #[test]
    fn real_crashes_at_every_archive_failpoint() {
        let points = [
            "archive:after_receipt",
            "archive:after_caption",
            "archive:after_video",
        ];
        for (n, point) in points.into_iter().enumerate() {
            assert!(crate::failpoint::NAMES.contains(&point));
            let f = fixture();
            let stored = f.root().join("plan.json");
            fs::write(&stored, serde_json::to_vec(&f.plan).unwrap()).unwrap();
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "archive::execute::tests::crash_child",
                    "--ignored",
                ])
                .args(["--test-threads=1", "--nocapture"])
                .env("DROPCAST_TEST_PLAN", &stored)
                .env("DROPCAST_FAILPOINT", point)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(!status.success(), "{point}: the child did not crash");
            // What the crash left: the receipt, then the caption, then the video moved.
            assert!(f.plan.receipt.exists(), "{point}");
            assert_eq!(f.caption().to.exists(), n >= 1, "{point}");
            assert_eq!(f.video().to.exists(), n >= 2, "{point}");
            assert_eq!(f.video().from.exists(), n < 2, "{point}");

            execute(&f.plan).unwrap();
            fs::remove_file(&stored).unwrap();
            assert_eq!(f.files(), f.finished(), "{point}");
        }
    }
}
