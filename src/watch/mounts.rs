//! Knowing when native file events cannot work: an inbox on a network or FUSE mount (NFS,
//! SMB, sshfs, rclone, …) gets inotify events only for changes made by this machine, so
//! files written by other machines would go unseen until the next rescan. Design.md §1.1:
//! `watch.mode: auto` polls such an inbox. Linux reads `/proc/self/mountinfo`; macOS asks
//! `statfs` for the file system's type name (`smbfs`, `nfs`, `afpfs`, `webdav`, `macfuse`,
//! …); Windows takes a UNC path (`\\server\share`) or a drive `GetDriveTypeW` calls
//! `DRIVE_REMOTE` (a mapped network drive) as remote. Elsewhere [`remote_fs`] has no
//! opinion.

// The mountinfo reader is used on Linux alone; its tests run everywhere.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::fmt;
use std::path::{Path, PathBuf};

/// One line of `/proc/self/mountinfo`, unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    /// Where it is mounted (relative to this process's root).
    pub(crate) mount_point: PathBuf,
    /// Which folder of the source file system appears there (`/` unless a bind mount or
    /// a subvolume).
    pub root: PathBuf,
    /// File system type, with the FUSE subtype when there is one (`nfs4`, `fuse.sshfs`).
    pub(crate) fs_type: String,
    /// The mount source (`server:/export`, `//server/share`, `/dev/sda1`, …).
    pub source: String,
}

impl Mount {
    /// `Some` when native events on this mount miss changes made elsewhere.
    pub fn remote(&self) -> Option<RemoteFs> {
        is_remote_type(&self.fs_type).then(|| RemoteFs {
            fs_type: self.fs_type.clone(),
            mount_point: self.mount_point.clone(),
        })
    }
}

/// A mount on which native file events cannot be trusted to see every change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RemoteFs {
    pub(crate) fs_type: String,
    pub(crate) mount_point: PathBuf,
}

impl fmt::Display for RemoteFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} mount at {}",
            self.fs_type,
            self.mount_point.display()
        )
    }
}

/// The remote (or otherwise event-blind) mount that holds `path`, if any.
///
/// `None` when the path is on a local file system, when it cannot be resolved, when the
/// mount table cannot be read, and on systems other than Linux.
pub(crate) fn remote_fs(path: &Path) -> Option<RemoteFs> {
    #[cfg(target_os = "linux")]
    {
        let path = match path.canonicalize() {
            Ok(path) => path,
            Err(e) => {
                tracing::debug!(path = %path.display(), reason = %e, "cannot resolve path to find its mount");
                return None;
            }
        };
        let text = match std::fs::read("/proc/self/mountinfo") {
            Ok(text) => text,
            Err(e) => {
                tracing::debug!(reason = %e, "cannot read /proc/self/mountinfo");
                return None;
            }
        };
        let mounts = parse_mountinfo_bytes(&text);
        find_mount(&mounts, &path)?.remote()
    }
    #[cfg(target_vendor = "apple")]
    {
        apple::remote_fs(path)
    }
    #[cfg(windows)]
    {
        windows::remote_fs(path)
    }
    #[cfg(not(any(target_os = "linux", target_vendor = "apple", windows)))]
    {
        let _ = path;
        None
    }
}

#[cfg(target_vendor = "apple")]
mod apple {
    use super::{RemoteFs, is_remote_type};
    use std::path::Path;

    /// `statfs` names the file system holding `path` and where it is mounted.
    pub(super) fn remote_fs(path: &Path) -> Option<RemoteFs> {
        let fs = match rustix::fs::statfs(path) {
            Ok(fs) => fs,
            Err(e) => {
                tracing::debug!(path = %path.display(), reason = %e, "cannot statfs the path to find its mount");
                return None;
            }
        };
        let fs_type = String::from_utf8_lossy(&c_chars(&fs.f_fstypename)).into_owned();
        is_remote_type(&fs_type).then(|| RemoteFs {
            fs_type,
            mount_point: super::bytes_to_path(c_chars(&fs.f_mntonname)),
        })
    }

    /// A NUL-terminated C string in a fixed array, as bytes.
    fn c_chars(field: &[std::ffi::c_char]) -> Vec<u8> {
        field
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect()
    }
}

#[cfg(windows)]
mod windows {
    use super::RemoteFs;
    use std::path::{Component, Path, PathBuf, Prefix};

    /// A UNC path is a network share; a drive letter is remote when Windows says it is
    /// (a mapped network drive). Links are resolved first where they can be.
    pub(super) fn remote_fs(path: &Path) -> Option<RemoteFs> {
        let path = path
            .canonicalize()
            .or_else(|_| std::path::absolute(path))
            .ok()?;
        let Some(Component::Prefix(prefix)) = path.components().next() else {
            return None;
        };
        match prefix.kind() {
            Prefix::UNC(server, share) | Prefix::VerbatimUNC(server, share) => {
                let mut point = std::ffi::OsString::from(r"\\");
                point.push(server);
                point.push(r"\");
                point.push(share);
                Some(RemoteFs {
                    fs_type: "network share".into(),
                    mount_point: PathBuf::from(point),
                })
            }
            Prefix::Disk(letter) | Prefix::VerbatimDisk(letter) => {
                let root = PathBuf::from(format!(r"{}:\", char::from(letter)));
                crate::win::is_network_drive(&root).then(|| RemoteFs {
                    fs_type: "network drive".into(),
                    mount_point: root,
                })
            }
            _ => None,
        }
    }
}

/// The mount that holds `path` (absolute, already canonicalized): the one with the
/// longest mount point containing it; of mounts stacked on the same point, the last
/// listed (the one on top).
pub(crate) fn find_mount<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.mount_point))
        // max_by_key keeps the last of equal keys: the mount on top.
        .max_by_key(|m| m.mount_point.components().count())
}

/// Whether inotify on a file system of this type misses changes made elsewhere.
///
/// Remote: NFS, SMB/CIFS, AFS, Ceph, GlusterFS, Lustre, 9p (incl. WSL2's `/mnt/c`),
/// WSL1's drvfs, VM shared folders (vboxsf, vmhgfs, prl_fs), virtiofs, and every FUSE
/// file system (`fuse`, `fuse.*`: sshfs, rclone, s3fs, gvfs, …), except `fuseblk`, which
/// is a local block device (ntfs-3g, exfat) whose writes all go through this kernel.
///
/// virtiofs counts as remote: a guest sees no events for changes the host makes, and
/// polling is merely slower where native events would have worked.
///
/// macOS names its own (`statfs`'s `f_fstypename`): `smbfs`, `nfs`, `afpfs`, `webdav`,
/// and `macfuse`/`osxfuse` for FUSE.
pub(crate) fn is_remote_type(fs_type: &str) -> bool {
    const REMOTE: &[&str] = &[
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "smb2",
        "ncpfs",
        "9p",
        "afs",
        "coda",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "beegfs",
        "davfs",
        "vboxsf",
        "vmhgfs",
        "prl_fs",
        "drvfs",
        "virtiofs",
        "fuse",
        "afpfs",
        "webdav",
        "macfuse",
        "osxfuse",
    ];
    if fs_type == "fuseblk" {
        return false;
    }
    REMOTE.contains(&fs_type) || fs_type.starts_with("fuse.")
}

/// Parses the text of `/proc/<pid>/mountinfo` (proc(5)). Lines that do not have the
/// expected shape are skipped.
///
/// Each line: `id parent major:minor root mount-point options [optional…] - type source
/// super-options`, where paths escape space, tab, newline and backslash as `\ooo` octal.
#[cfg(test)]
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    parse_mountinfo_bytes(text.as_bytes())
}

/// [`parse_mountinfo`] over raw bytes: mount points need not be UTF-8.
fn parse_mountinfo_bytes(text: &[u8]) -> Vec<Mount> {
    text.split(|&b| b == b'\n').filter_map(parse_line).collect()
}

fn parse_line(line: &[u8]) -> Option<Mount> {
    let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    // Six fixed fields, then optional fields up to a lone "-", then type and source.
    let (fixed, rest) = fields.split_at_checked(6)?;
    let separator = rest.iter().position(|f| *f == b"-")?;
    let after = &rest[separator + 1..];
    let fs_type = after.first().filter(|t| !t.is_empty())?;
    let source = after.get(1)?;
    let root = fixed[3];
    let mount_point = fixed[4];
    if !mount_point.starts_with(b"/") || !root.starts_with(b"/") {
        return None;
    }
    Some(Mount {
        mount_point: bytes_to_path(unescape(mount_point)),
        root: bytes_to_path(unescape(root)),
        fs_type: String::from_utf8_lossy(&unescape(fs_type)).into_owned(),
        source: String::from_utf8_lossy(&unescape(source)).into_owned(),
    })
}

/// Undoes the kernel's `\ooo` octal escapes; anything else is kept as it is.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\'
            && let Some(&[a, b, c]) = field.get(i + 1..i + 4)
            && let Some(byte) = octal_byte(a, b, c)
        {
            out.push(byte);
            i += 4;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    out
}

fn octal_byte(a: u8, b: u8, c: u8) -> Option<u8> {
    let digit = |d: u8| (b'0'..=b'7').contains(&d).then(|| u32::from(d - b'0'));
    let value = digit(a)? * 64 + digit(b)? * 8 + digit(c)?;
    u8::try_from(value).ok()
}

#[cfg(unix)]
fn bytes_to_path(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

#[cfg(not(unix))]
fn bytes_to_path(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workstation: ext4 root, NFS NAS, sshfs, a CIFS share with a space in its name, a
    /// local disk mounted inside the NAS mount, a bind mount of an NFS folder, a USB
    /// stick through ntfs-3g, and a stacked mount.
    const HOST: &str = "\
22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
27 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
28 27 0:23 / /tmp rw,nosuid,nodev shared:14 - tmpfs tmpfs rw,size=16384k
210 27 0:52 / /mnt/nas rw,relatime shared:110 - nfs4 192.168.1.10:/volume1/video rw,vers=4.1,rsize=131072,wsize=131072,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=192.168.1.20,local_lock=none,addr=192.168.1.10
211 210 259:3 / /mnt/nas/cache rw,relatime shared:111 - ext4 /dev/nvme0n1p3 rw
312 27 0:60 / /home/ana/remote rw,nosuid,nodev,relatime shared:150 - fuse.sshfs ana@edit-box:/srv/export rw,user_id=1000,group_id=1000
400 27 0:70 / /mnt/Shared\\040Videos rw,relatime shared:200 - cifs //fileserver/Shared\\040Videos rw,vers=3.1.1,cache=strict,username=ana,uid=1000,noforceuid,gid=1000,noforcegid,addr=10.0.0.5,file_mode=0755,dir_mode=0755,soft,nounix,serverino,mapposix,rsize=4194304,wsize=4194304,bsize=1048576,echo_interval=60,actimeo=1,closetimeo=1
500 27 0:52 /volume1/video/inbox /srv/dropcast/inbox rw,relatime shared:110 - nfs4 192.168.1.10:/volume1/video rw,vers=4.1
600 27 8:17 / /media/ana/USB\\040STICK rw,nosuid,nodev,relatime shared:300 - fuseblk /dev/sdb1 rw,user_id=0,group_id=0,default_permissions,allow_other,blksize=4096
700 27 0:80 / /srv/stack rw,relatime shared:400 - ext4 /dev/sdc1 rw
701 700 0:81 / /srv/stack rw,relatime shared:401 - fuse.rclone gdrive: rw,user_id=1000,group_id=1000
";

    /// A Docker container: overlay root, a named volume, an NFS volume, and the usual
    /// bind-mounted resolv.conf.
    const DOCKER: &str = "\
1090 1001 0:312 / / rw,relatime master:522 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/ABC:/var/lib/docker/overlay2/l/DEF,upperdir=/var/lib/docker/overlay2/xyz/diff,workdir=/var/lib/docker/overlay2/xyz/work
1091 1090 0:315 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1092 1090 0:316 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
1101 1090 8:1 /var/lib/docker/volumes/inbox/_data /inbox rw,relatime - ext4 /dev/sda1 rw
1102 1090 0:52 / /nas rw,relatime - nfs4 nas.local:/export/videos rw,vers=4.2
1103 1090 8:1 /var/lib/docker/containers/abc/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/sda1 rw
";

    fn remote_at(mounts: &[Mount], path: &str) -> Option<RemoteFs> {
        find_mount(mounts, Path::new(path))?.remote()
    }

    fn fs_at(mounts: &[Mount], path: &str) -> String {
        find_mount(mounts, Path::new(path))
            .map(|m| m.fs_type.clone())
            .unwrap_or_default()
    }

    #[test]
    fn parses_every_field_of_a_line() {
        let mounts = parse_mountinfo(HOST);
        assert_eq!(mounts.len(), 11);
        let nfs = &mounts[3];
        assert_eq!(nfs.mount_point, Path::new("/mnt/nas"));
        assert_eq!(nfs.root, Path::new("/"));
        assert_eq!(nfs.fs_type, "nfs4");
        assert_eq!(nfs.source, "192.168.1.10:/volume1/video");
        let bind = &mounts[7];
        assert_eq!(bind.root, Path::new("/volume1/video/inbox"));
        assert_eq!(bind.mount_point, Path::new("/srv/dropcast/inbox"));
    }

    #[test]
    fn optional_fields_may_be_absent_or_many() {
        let text = "\
36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
37 35 98:0 / /a rw - xfs /dev/sda rw
38 35 98:0 / /b rw shared:1 master:2 propagate_from:3 unbindable - nfs srv:/x rw
";
        let got: Vec<(String, String)> = parse_mountinfo(text)
            .into_iter()
            .map(|m| (m.mount_point.display().to_string(), m.fs_type))
            .collect();
        assert_eq!(
            got,
            [
                ("/mnt2".to_string(), "ext3".to_string()),
                ("/a".to_string(), "xfs".to_string()),
                ("/b".to_string(), "nfs".to_string()),
            ]
        );
    }

    #[test]
    fn octal_escapes_are_undone() {
        let text = "40 27 0:70 / /mnt/a\\040b\\011c\\012d\\134e rw - cifs //s/a\\040b rw\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].mount_point, Path::new("/mnt/a b\tc\nd\\e"));
        assert_eq!(mounts[0].source, "//s/a b");
        // Not an escape: kept as written.
        assert_eq!(unescape(b"a\\x\\08\\7"), b"a\\x\\08\\7");
        assert_eq!(unescape(b"\\777"), b"\\777", "over 255 is not a byte");
    }

    #[cfg(unix)]
    #[test]
    fn mount_points_need_not_be_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let mounts = parse_mountinfo_bytes(b"40 27 0:70 / /mnt/caf\xe9 rw - nfs s:/x rw\n");
        assert_eq!(
            mounts[0].mount_point.as_os_str().as_bytes(),
            b"/mnt/caf\xe9"
        );
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let text = "\
garbage
1 2 3:4 / /no-separator rw shared:1 ext4 /dev/sda rw
1 2 3:4 / /no-type rw -
1 2 3:4 / relative rw - ext4 /dev/sda rw
1 2 3:4 / /ok rw - nfs srv:/x rw

";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].mount_point, Path::new("/ok"));
        assert!(parse_mountinfo("").is_empty());
    }

    #[test]
    fn longest_mount_point_wins() {
        let mounts = parse_mountinfo(HOST);
        assert_eq!(fs_at(&mounts, "/home/ana/inbox"), "ext4");
        assert_eq!(fs_at(&mounts, "/tmp/inbox"), "tmpfs");
        assert_eq!(
            remote_at(&mounts, "/mnt/nas/inbox/clip.mp4"),
            Some(RemoteFs {
                fs_type: "nfs4".into(),
                mount_point: PathBuf::from("/mnt/nas"),
            })
        );
        assert_eq!(
            remote_at(&mounts, "/mnt/nas").map(|r| r.fs_type),
            Some("nfs4".into())
        );
        // A local disk mounted inside the NAS mount is local.
        assert_eq!(remote_at(&mounts, "/mnt/nas/cache/inbox"), None);
        assert_eq!(fs_at(&mounts, "/mnt/nas/cache/inbox"), "ext4");
        // Whole components only: /mnt/nasty is not under /mnt/nas.
        assert_eq!(remote_at(&mounts, "/mnt/nasty/inbox"), None);
    }

    #[test]
    fn network_and_fuse_mounts_are_remote() {
        let mounts = parse_mountinfo(HOST);
        let remote = |p| remote_at(&mounts, p).map(|r| r.to_string());
        assert_eq!(
            remote("/home/ana/remote/exports"),
            Some("fuse.sshfs mount at /home/ana/remote".into())
        );
        assert_eq!(
            remote("/mnt/Shared Videos/inbox"),
            Some("cifs mount at /mnt/Shared Videos".into())
        );
        // A bind mount of an NFS folder is NFS wherever it appears.
        assert_eq!(
            remote("/srv/dropcast/inbox/a.mp4"),
            Some("nfs4 mount at /srv/dropcast/inbox".into())
        );
        // ntfs-3g on a USB stick is a local disk.
        assert_eq!(remote("/media/ana/USB STICK/inbox"), None);
        // Of two mounts on one point, the later (on top) is the one that counts.
        assert_eq!(
            remote("/srv/stack/in"),
            Some("fuse.rclone mount at /srv/stack".into())
        );
    }

    #[test]
    fn docker_container_paths() {
        let mounts = parse_mountinfo(DOCKER);
        assert_eq!(fs_at(&mounts, "/app/inbox"), "overlay");
        assert_eq!(remote_at(&mounts, "/app/inbox"), None);
        assert_eq!(remote_at(&mounts, "/inbox/job1"), None);
        assert_eq!(fs_at(&mounts, "/inbox/job1"), "ext4");
        assert_eq!(
            remote_at(&mounts, "/nas/in").map(|r| r.fs_type),
            Some("nfs4".into())
        );
    }

    #[test]
    fn remote_types() {
        for t in [
            "nfs",
            "nfs4",
            "cifs",
            "smb3",
            "smbfs",
            "9p",
            "afs",
            "ceph",
            "glusterfs",
            "davfs",
            "vboxsf",
            "virtiofs",
            "fuse",
            "fuse.sshfs",
            "fuse.rclone",
            "fuse.s3fs",
            "fuse.glusterfs",
            // macOS's own names (statfs f_fstypename).
            "afpfs",
            "webdav",
            "macfuse",
            "osxfuse",
        ] {
            assert!(is_remote_type(t), "{t} should be remote");
        }
        for t in [
            "ext4", "xfs", "btrfs", "zfs", "overlay", "tmpfs", "fuseblk", "vfat", "exfat", "ntfs3",
            "apfs", "nfsd", "fusectl", "hfs", "msdos",
        ] {
            assert!(!is_remote_type(t), "{t} should be local");
        }
    }

    #[test]
    fn unresolvable_path_has_no_remote_fs() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(remote_fs(&dir.path().join("missing")), None);
    }

    /// On this machine: the real mount table parses and agrees with [`remote_fs`].
    #[cfg(target_os = "linux")]
    #[test]
    fn real_mount_table_agrees_with_remote_fs() {
        let text = std::fs::read("/proc/self/mountinfo").unwrap();
        let mounts = parse_mountinfo_bytes(&text);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().canonicalize().unwrap();
        let mount = find_mount(&mounts, &path).expect("some mount holds the temp dir");
        assert!(path.starts_with(&mount.mount_point));
        assert!(find_mount(&mounts, Path::new("/")).is_some());
        assert_eq!(remote_fs(dir.path()), mount.remote());
    }
}
