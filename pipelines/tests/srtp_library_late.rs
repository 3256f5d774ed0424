//! A process that loaded the system's libsrtp2 first (the `srtp` plugin already in use) keeps
//! it: loading the OpenSSL build then would map a second copy nothing binds to, so it is
//! refused with a clear error. Its own test binary: it must load the plugin first.

use std::path::Path;

use lamina_pipelines::srtp_library::{
    mapped_paths, use_library, SrtpLibraryError, DEFAULT_PATH, SONAME,
};

#[test]
fn the_build_is_refused_once_another_libsrtp2_is_loaded() {
    let path = Path::new(DEFAULT_PATH);
    assert!(
        path.exists(),
        "{DEFAULT_PATH} is missing: scripts/setup.sh builds it (scripts/srtp.sh)"
    );
    gst::init().unwrap();
    let _enc = gst::ElementFactory::make("srtpenc").build().unwrap();
    let system = mapped_paths();
    assert_eq!(
        system.len(),
        1,
        "the srtp plugin maps one {SONAME}: {system:?}"
    );
    assert_ne!(system[0], path);
    assert_eq!(
        use_library(Some(path)),
        Err(SrtpLibraryError::AlreadyLoaded { path: path.into() })
    );
    assert_eq!(mapped_paths(), system, "no second copy mapped");
}
