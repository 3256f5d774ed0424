//! Which libsrtp2 the `srtpenc`/`srtpdec` elements (inside webrtcbin's DTLS-SRTP bins) use.
//!
//! Debian builds libsrtp2 on NSS: every packet goes through PK11 contexts (a new AES context per
//! packet for the counter mode, HMAC through softokn), 22 % of the server's CPU in a room of 8,
//! the largest single cost of a forwarded copy (docs/performance.md §8). `scripts/srtp.sh`
//! builds the same libsrtp2 release from Debian's source package against OpenSSL (AES-NI), as
//! libsrtp's and Janus's own documentation recommend. [`use_library`] loads that build into the
//! process before GStreamer loads the `srtp` plugin: the plugin's dependency on
//! `libsrtp2.so.1` is then satisfied by the object already loaded under that soname, so the
//! system's copy is never mapped. Same release, same ABI, same symbols; only the crypto
//! backend differs.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// The library's soname, which `libgstsrtp.so` names as its dependency.
pub const SONAME: &str = "libsrtp2.so.1";

/// Where `scripts/srtp.sh` installs the OpenSSL build.
pub const DEFAULT_PATH: &str = "/usr/local/lib/lamina/libsrtp2.so.1";

/// The `--srtp-library` value that asks for the system's libsrtp2.
pub const SYSTEM: &str = "system";

const RTLD_NOW: c_int = 2;
const RTLD_NOLOAD: c_int = 4;
const RTLD_GLOBAL: c_int = 0x100;

unsafe extern "C" {
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    fn dlerror() -> *mut c_char;
}

/// The libsrtp2 the process uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SrtpLibrary {
    /// The build at this path, loaded by [`use_library`].
    Loaded(PathBuf),
    /// The system's (no path given, or the file does not exist).
    System,
}

/// Why [`use_library`] could not load the library it was given.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SrtpLibraryError {
    /// Another libsrtp2 was loaded before (a second copy would never be used).
    #[error("a libsrtp2 is already loaded in this process; {path} would not be used")]
    AlreadyLoaded {
        /// The build that was not loaded.
        path: PathBuf,
    },
    /// `dlopen` refused the file.
    #[error("cannot load {path}: {reason}")]
    Load {
        /// The file given.
        path: PathBuf,
        /// `dlerror`'s message.
        reason: String,
    },
}

/// The build this process loaded, if any: it stays for the life of the process.
static LOADED: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Makes the process use the libsrtp2 at `path` (`None` or a missing file: the system's).
/// Call it before GStreamer loads the `srtp` plugin (before the first webrtcbin connects).
/// Once a build is loaded, every later call answers with that build.
pub fn use_library(path: Option<&Path>) -> Result<SrtpLibrary, SrtpLibraryError> {
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(path) = loaded.as_ref() {
        return Ok(SrtpLibrary::Loaded(path.clone()));
    }
    let outcome = load(path)?;
    if let SrtpLibrary::Loaded(path) = &outcome {
        *loaded = Some(path.clone());
    }
    Ok(outcome)
}

fn load(path: Option<&Path>) -> Result<SrtpLibrary, SrtpLibraryError> {
    let Some(path) = path.filter(|p| p.exists()) else {
        return Ok(SrtpLibrary::System);
    };
    let soname = CString::new(SONAME).expect("no NUL in the soname");
    // SAFETY: a NUL-terminated name; RTLD_NOLOAD only looks the name up among loaded objects.
    if !unsafe { dlopen(soname.as_ptr(), RTLD_NOW | RTLD_NOLOAD) }.is_null() {
        return Err(SrtpLibraryError::AlreadyLoaded {
            path: path.to_path_buf(),
        });
    }
    let load_error = |reason: String| SrtpLibraryError::Load {
        path: path.to_path_buf(),
        reason,
    };
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| load_error("the path contains a NUL byte".into()))?;
    // SAFETY: a NUL-terminated path. The handle is never closed: the library stays loaded for
    // the life of the process, as the plugin that binds to it does.
    let handle = unsafe { dlopen(c_path.as_ptr(), RTLD_NOW | RTLD_GLOBAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns NULL or a NUL-terminated message valid until the next dl call.
        let reason = unsafe {
            let msg = dlerror();
            if msg.is_null() {
                "unknown error".to_string()
            } else {
                CStr::from_ptr(msg).to_string_lossy().into_owned()
            }
        };
        return Err(load_error(reason));
    }
    Ok(SrtpLibrary::Loaded(path.to_path_buf()))
}

/// The files mapped into this process under the name `libsrtp2.so.1` (from `/proc/self/maps`).
pub fn mapped_paths() -> Vec<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut paths: Vec<PathBuf> = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|p| p.ends_with(SONAME))
        .map(PathBuf::from)
        .collect();
    paths.sort();
    paths.dedup();
    paths
}
