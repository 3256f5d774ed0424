//! Sets `COMMIT_ID` and `BUILD_REL_DATE` for the plugin's version and release date
//! (`gst::plugin_define!` in `src/lib.rs`).

fn main() {
    gst_plugin_version_helper::info()
}
