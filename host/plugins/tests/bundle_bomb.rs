//! Zip bombs against `weft plugin install`: refused with the entry and the cap named, before
//! the inflated size is ever allocated. One test per file (this binary) so that the peak-memory
//! reading is not disturbed by other tests running in parallel threads.

mod common;

use common::*;
use weft_plugins::limits::MAX_COMPONENT_BYTES;
use weft_plugins::{install_path, InstallOptions, PluginError};
use weft_store::Store;

#[test]
fn zero_bombs_are_refused_without_inflating_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("home")).unwrap();

    // The reproduction: ~2 MB of 255 MiB zero-filled entries, listed by the manifest.
    let names: Vec<String> = (0..8).map(|i| format!("bomb{i}.wasm")).collect();
    let digest = "0".repeat(64);
    let listed: Vec<(&str, &str)> = names
        .iter()
        .map(|n| (n.as_str(), digest.as_str()))
        .collect();
    let bomb = dir.path().join("bomb.zip");
    zero_bomb(&bomb, &manifest(&listed), &names, 255 * MIB);
    let on_disk = std::fs::metadata(&bomb).unwrap().len();
    assert!(on_disk < 4 * MIB, "the bomb is small on disk: {on_disk}");

    reset_peak_rss();
    let before = peak_rss();
    let e = install_path(&store, &bomb, &InstallOptions::default()).unwrap_err();
    let grown = peak_rss().saturating_sub(before);
    assert!(
        matches!(&e, PluginError::TooLarge { entry, size, limit, .. }
            if entry == "bomb0.wasm" && *size == 255 * MIB && *limit == MAX_COMPONENT_BYTES),
        "{e}"
    );
    let text = e.to_string();
    assert!(
        text.contains("bomb0.wasm") && text.contains(&MAX_COMPONENT_BYTES.to_string()),
        "{text}"
    );
    assert!(grown < 32 * MIB, "refusing the bomb took {grown} bytes");

    // The same bomb with headers that lie: each entry declares 1 MiB and inflates to 255 MiB.
    for n in &names {
        lie_about_size(&bomb, n, MIB as u32);
    }
    reset_peak_rss();
    let before = peak_rss();
    let e = install_path(&store, &bomb, &InstallOptions::default()).unwrap_err();
    let grown = peak_rss().saturating_sub(before);
    assert!(
        matches!(&e, PluginError::SizeMismatch { entry, declared, .. }
            if entry == "bomb0.wasm" && *declared == MIB),
        "{e}"
    );
    assert!(
        grown < 32 * MIB,
        "refusing the lying bomb took {grown} bytes"
    );

    // Entries the manifest does not list are refused without being inflated at all.
    let unlisted = dir.path().join("unlisted.zip");
    zero_bomb(&unlisted, &manifest(&[]), &names[..1], 255 * MIB);
    lie_about_size(&unlisted, &names[0], 10);
    let e = install_path(&store, &unlisted, &InstallOptions::default()).unwrap_err();
    assert!(
        matches!(&e, PluginError::UnsafeEntry { entry, reason, .. }
            if entry == "bomb0.wasm" && reason.contains("not listed")),
        "{e}"
    );

    // Entries each under the per-entry cap that add up past the bundle's cap.
    let names: Vec<String> = (0..3).map(|i| format!("part{i}.wasm")).collect();
    let listed: Vec<(&str, &str)> = names
        .iter()
        .map(|n| (n.as_str(), digest.as_str()))
        .collect();
    let total = dir.path().join("total.zip");
    zero_bomb(&total, &manifest(&listed), &names, 100 * MIB);
    reset_peak_rss();
    let before = peak_rss();
    let e = install_path(&store, &total, &InstallOptions::default()).unwrap_err();
    let grown = peak_rss().saturating_sub(before);
    assert!(
        matches!(&e, PluginError::BundleTooLarge { entry, .. } if entry == "part2.wasm"),
        "{e}"
    );
    assert!(e.to_string().contains("whole bundle"), "{e}");
    assert!(grown < 32 * MIB, "refusing took {grown} bytes");

    assert!(store.registry().list().unwrap().is_empty());
}
