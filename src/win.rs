//! The few Windows calls stable std does not offer, as thin checked wrappers over
//! windows-sys: which file a name is (volume serial, file id, change time), a lock that
//! leaves its file readable, a move that never replaces, whether a drive is a network
//! drive, whether a process runs, a file or folder made its owner's alone, and a child
//! process that ends with this one. Callers keep the meaning; docs/platforms.md says
//! what each is for.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;
use std::path::Path;

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_LOCK_VIOLATION, HANDLE, STILL_ACTIVE,
};
use windows_sys::Win32::Storage::FileSystem as fs;
use windows_sys::Win32::System::IO::{OVERLAPPED, OVERLAPPED_0, OVERLAPPED_0_0};
use windows_sys::Win32::System::Threading::{
    GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
};

/// Which file a handle is and when it last changed in any way (data, size, attributes,
/// name): the Windows counterpart of device, inode and ctime.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct FileStamp {
    pub(crate) volume: u64,
    pub(crate) file: u128,
    /// `ChangeTime`, in 100 ns units since 1601.
    pub(crate) changed: i64,
}

/// The stamp of whatever has the name `path`; a link or junction is opened as itself,
/// never followed. Opens for attributes only, which no other process's share mode refuses,
/// so a writer holding the file is not disturbed.
pub(crate) fn stamp_at(path: &Path) -> io::Result<FileStamp> {
    let file = OpenOptions::new()
        .access_mode(fs::FILE_READ_ATTRIBUTES)
        .share_mode(fs::FILE_SHARE_READ | fs::FILE_SHARE_WRITE | fs::FILE_SHARE_DELETE)
        .custom_flags(fs::FILE_FLAG_BACKUP_SEMANTICS | fs::FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)?;
    stamp_of(&file)
}

/// The stamp of an open file.
pub(crate) fn stamp_of(file: &File) -> io::Result<FileStamp> {
    let (volume, id) = id_of(file)?;
    let mut basic = fs::FILE_BASIC_INFO::default();
    // SAFETY: `basic` is a writable FILE_BASIC_INFO, the struct FileBasicInfo names, of
    // the size passed; the handle is open for as long as `file` lives.
    let ok = unsafe {
        fs::GetFileInformationByHandleEx(
            handle(file),
            fs::FileBasicInfo,
            (&raw mut basic).cast(),
            size_of::<fs::FILE_BASIC_INFO>() as u32,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(FileStamp {
        volume,
        file: id,
        changed: basic.ChangeTime,
    })
}

/// The 128-bit id (ReFS needs all of it); where the file system has none, the 64-bit
/// file index. The same file system always answers the same way, so stamps compare.
fn id_of(file: &File) -> io::Result<(u64, u128)> {
    let mut info = fs::FILE_ID_INFO::default();
    // SAFETY: as in `stamp_of`, with FILE_ID_INFO for FileIdInfo.
    let ok = unsafe {
        fs::GetFileInformationByHandleEx(
            handle(file),
            fs::FileIdInfo,
            (&raw mut info).cast(),
            size_of::<fs::FILE_ID_INFO>() as u32,
        )
    };
    if ok != 0 {
        let id = u128::from_le_bytes(info.FileId.Identifier);
        return Ok((info.VolumeSerialNumber, id));
    }
    let mut old = fs::BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: `old` is a writable BY_HANDLE_FILE_INFORMATION; the handle is open.
    if unsafe { fs::GetFileInformationByHandle(handle(file), &raw mut old) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let index = (u128::from(old.nFileIndexHigh) << 32) | u128::from(old.nFileIndexLow);
    Ok((u64::from(old.dwVolumeSerialNumber), index))
}

/// The byte a dropcast lock covers: far past the end of any lock file (a locked range may
/// lie beyond the end). Windows enforces locks on reads too, so a lock over the file's
/// text would keep everyone else from reading who holds it. 2^62 stays within a signed
/// 64-bit offset, which a Samba server maps to POSIX locks.
const LOCK_OFFSET: u64 = 1 << 62;

/// Takes the lock byte of `file`, exclusive or shared, without waiting: `Ok(false)` when
/// another handle holds it. Released by [`unlock`], by closing the file, or by the OS
/// when the process ends.
pub(crate) fn try_lock(file: &File, exclusive: bool) -> io::Result<bool> {
    let mut flags = fs::LOCKFILE_FAIL_IMMEDIATELY;
    if exclusive {
        flags |= fs::LOCKFILE_EXCLUSIVE_LOCK;
    }
    let mut at = overlapped_at(LOCK_OFFSET);
    // SAFETY: the handle is open and synchronous (std never opens overlapped), so the
    // call completes before it returns and `at` outlives it.
    if unsafe { fs::LockFileEx(handle(file), flags, 0, 1, 0, &raw mut at) } != 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(code) if code == ERROR_LOCK_VIOLATION as i32 => Ok(false),
        _ => Err(err),
    }
}

/// Gives the lock byte back at once (closing the handle may release it only later).
pub(crate) fn unlock(file: &File) -> io::Result<()> {
    let mut at = overlapped_at(LOCK_OFFSET);
    // SAFETY: as in `try_lock`.
    if unsafe { fs::UnlockFileEx(handle(file), 0, 1, 0, &raw mut at) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn overlapped_at(offset: u64) -> OVERLAPPED {
    OVERLAPPED {
        Anonymous: OVERLAPPED_0 {
            Anonymous: OVERLAPPED_0_0 {
                Offset: offset as u32,
                OffsetHigh: (offset >> 32) as u32,
            },
        },
        ..OVERLAPPED::default()
    }
}

/// Renames `from` to `to` on one volume, failing with `AlreadyExists` when `to` exists
/// (`MoveFileExW` without `MOVEFILE_REPLACE_EXISTING`; std's `rename` replaces) and with
/// `CrossesDevices` across volumes (no copy is allowed).
pub(crate) fn move_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    let (from, to) = (wide_verbatim(from)?, wide_verbatim(to)?);
    // SAFETY: both are NUL-terminated UTF-16 strings that outlive the call.
    let ok = unsafe { fs::MoveFileExW(from.as_ptr(), to.as_ptr(), fs::MOVEFILE_WRITE_THROUGH) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the drive whose root is `root` (`Z:\`) is a network drive.
pub(crate) fn is_network_drive(root: &Path) -> bool {
    let Ok(root) = wide(root) else {
        return false;
    };
    // SAFETY: a NUL-terminated UTF-16 string that outlives the call.
    let kind = unsafe { fs::GetDriveTypeW(root.as_ptr()) };
    kind == windows_sys::Win32::System::WindowsProgramming::DRIVE_REMOTE
}

/// Whether process `pid` runs on this machine. A process of another user (access
/// denied) runs; an answer that cannot be had counts as running, the safe side.
pub(crate) fn process_alive(pid: u32) -> bool {
    // SAFETY: plain calls; the handle is closed before returning.
    unsafe {
        let process: HANDLE = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if process.is_null() {
            let err = io::Error::last_os_error().raw_os_error();
            return err == Some(ERROR_ACCESS_DENIED as i32);
        }
        let mut code = 0u32;
        let ok = GetExitCodeProcess(process, &raw mut code);
        CloseHandle(process);
        ok == 0 || code == STILL_ACTIVE as u32
    }
}

/// Only the owner (whoever owns it, `OW`) and the system (`SY`: backups, the indexer)
/// may open it; nothing inherited from above. Inherited by whatever is made inside.
const PRIVATE_SDDL: &str = "D:P(A;OICI;FA;;;OW)(A;OICI;FA;;;SY)";

/// Makes the file or folder at `path` its owner's alone: the Windows counterpart of
/// `chmod 700`/`600`. A folder's files and folders get the same access (a folder's DACL
/// set here reaches what is already in it too).
pub(crate) fn make_private(path: &Path) -> io::Result<()> {
    use windows_sys::Win32::Foundation::LocalFree;
    use windows_sys::Win32::Security::Authorization::{
        ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1, SE_FILE_OBJECT,
        SetNamedSecurityInfoW,
    };
    use windows_sys::Win32::Security::{
        ACL, DACL_SECURITY_INFORMATION, GetSecurityDescriptorDacl,
        PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR,
    };
    let name = wide(path)?;
    let sddl: Vec<u16> = PRIVATE_SDDL.encode_utf16().chain([0]).collect();
    let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: NUL-terminated strings that outlive the calls; the descriptor the first call
    // allocates is read by the second and third and freed once, at the end.
    unsafe {
        let made = ConvertStringSecurityDescriptorToSecurityDescriptorW(
            sddl.as_ptr(),
            SDDL_REVISION_1,
            &raw mut descriptor,
            std::ptr::null_mut(),
        );
        if made == 0 {
            return Err(io::Error::last_os_error());
        }
        let (mut present, mut defaulted) = (0, 0);
        let mut dacl: *mut ACL = std::ptr::null_mut();
        let result = if GetSecurityDescriptorDacl(
            descriptor,
            &raw mut present,
            &raw mut dacl,
            &raw mut defaulted,
        ) == 0
        {
            Err(io::Error::last_os_error())
        } else {
            match SetNamedSecurityInfoW(
                name.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                dacl,
                std::ptr::null(),
            ) {
                0 => Ok(()),
                code => Err(io::Error::from_raw_os_error(code as i32)),
            }
        };
        LocalFree(descriptor);
        result.or_else(|e| no_access_lists(path, e))
    }
}

/// FAT and exFAT (USB drives, SD cards) keep no access lists: there nothing can be made
/// private, and refusing to start would help no one: a warning says so. Other errors stay
/// errors.
fn no_access_lists(path: &Path, e: io::Error) -> io::Result<()> {
    use windows_sys::Win32::Foundation::{ERROR_INVALID_FUNCTION, ERROR_NOT_SUPPORTED};
    let code = e.raw_os_error();
    if code != Some(ERROR_NOT_SUPPORTED as i32) && code != Some(ERROR_INVALID_FUNCTION as i32) {
        return Err(e);
    }
    tracing::warn!(
        path = %path.display(),
        "this drive keeps no access lists (FAT or exFAT): other users of this computer can read the secrets here; keep the state folder on an NTFS drive"
    );
    Ok(())
}

/// Ties the process `child` to this one: when this process ends, however it ends, the
/// system ends `child` too (a job object with `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`, whose
/// one handle this process keeps open until it ends). The Windows counterpart of what
/// `browser::profile::reclaim` does after the fact on Linux.
pub(crate) fn end_with_this_process(child: std::os::windows::io::RawHandle) -> io::Result<()> {
    use std::sync::OnceLock;
    use windows_sys::Win32::System::JobObjects::{
        AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
        JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
        SetInformationJobObject,
    };
    // The job's handle, as an address (a HANDLE is not `Send`); never closed.
    static JOB: OnceLock<Result<usize, i32>> = OnceLock::new();
    let job = JOB.get_or_init(|| {
        // SAFETY: plain calls; `limits` outlives the one that reads it.
        unsafe {
            let job = CreateJobObjectW(std::ptr::null(), std::ptr::null());
            if job.is_null() {
                return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
            }
            let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
            limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
            let set = SetInformationJobObject(
                job,
                JobObjectExtendedLimitInformation,
                (&raw const limits).cast(),
                size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            );
            if set == 0 {
                let err = io::Error::last_os_error().raw_os_error().unwrap_or(0);
                CloseHandle(job);
                return Err(err);
            }
            Ok(job as usize)
        }
    });
    let job = (*job).map_err(io::Error::from_raw_os_error)?;
    // SAFETY: the job handle lives as long as this process; `child` is the caller's.
    if unsafe { AssignProcessToJobObject(job as HANDLE, child as HANDLE) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn handle(file: &File) -> HANDLE {
    file.as_raw_handle()
}

/// NUL-terminated UTF-16 of `path` made absolute and `\\?\`-prefixed, so names past 260
/// characters work as they do through std. A NUL inside would silently cut the name
/// short, so it is refused.
fn wide_verbatim(path: &Path) -> io::Result<Vec<u16>> {
    const SLASH: u16 = b'\\' as u16;
    let absolute: Vec<u16> = std::path::absolute(path)?
        .as_os_str()
        .encode_wide()
        .collect();
    let mut out: Vec<u16> = match absolute.as_slice() {
        // `\\?\…` or `\\.\…` already.
        [SLASH, SLASH, q, SLASH, ..] if *q == u16::from(b'?') || *q == u16::from(b'.') => absolute,
        // `\\server\share\…` → `\\?\UNC\server\share\…`.
        [SLASH, SLASH, rest @ ..] => r"\\?\UNC\"
            .encode_utf16()
            .chain(rest.iter().copied())
            .collect(),
        _ => r"\\?\".encode_utf16().chain(absolute).collect(),
    };
    nul_terminated(&mut out)?;
    Ok(out)
}

/// NUL-terminated UTF-16 of `path` as it is.
fn wide(path: &Path) -> io::Result<Vec<u16>> {
    let mut out: Vec<u16> = path.as_os_str().encode_wide().collect();
    nul_terminated(&mut out)?;
    Ok(out)
}

fn nul_terminated(text: &mut Vec<u16>) -> io::Result<()> {
    if text.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a file name cannot hold a NUL character",
        ));
    }
    text.push(0);
    Ok(())
}
