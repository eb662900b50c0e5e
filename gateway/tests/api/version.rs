//! The binaries say their version (docs/versioning.md): `gateway --version` prints the workspace's
//! version, the one CHANGELOG.md has a section for.

use std::process::Command;

#[test]
fn gateway_version_prints_the_package_version() {
    let output = Command::new(env!("CARGO_BIN_EXE_gateway")).arg("--version").output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).unwrap();
    assert_eq!(printed.trim_end(), format!("gateway {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn the_changelog_has_a_section_for_this_version() {
    let changelog = include_str!("../../../CHANGELOG.md");
    assert!(changelog.contains("\n## [Unreleased]\n"), "CHANGELOG.md keeps an Unreleased section");
    let section = format!("\n## [{}] - ", env!("CARGO_PKG_VERSION"));
    assert!(changelog.contains(&section), "CHANGELOG.md has no `{}` section", section.trim());
}
