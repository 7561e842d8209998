//! The Kubernetes manifests of examples/kubernetes against the API's schemas (PyPI's
//! `kubernetes-validate`, which bundles them), strictly: an unknown field fails, as the
//! mutated copy checked beside them shows.

use sluice_tests::python_with;
use std::path::Path;
use std::process::Command;

/// Validates `file`; the tool's output and whether every resource passed.
fn validate(python: &std::ffi::OsStr, file: &Path) -> (String, bool) {
    let out = Command::new(python)
        .args(["-m", "kubernetes_validate", "--strict"])
        .arg(file)
        .output()
        .expect("kubernetes-validate runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (text, out.status.success())
}

#[test]
fn kubernetes_manifests_match_the_api_schemas() {
    let Some(python) = python_with("kubernetes_validate") else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kubernetes");
    let mut manifests: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/kubernetes")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    manifests.sort();
    assert!(!manifests.is_empty());
    for manifest in &manifests {
        let (text, ok) = validate(&python, manifest);
        assert!(ok, "{}:\n{text}", manifest.display());
        let resources = text.matches("passed for resource").count();
        assert!(resources >= 1, "{text}");
        println!("{}: {resources} resources valid", manifest.display());

        // A field the API does not have is refused: the check can fail.
        let source = std::fs::read_to_string(manifest).expect("the manifest");
        let broken = source.replacen("restartPolicy:", "restartPolicyy:", 1);
        assert_ne!(
            broken,
            source,
            "{} has no restartPolicy to break",
            manifest.display()
        );
        let copy = tempfile::NamedTempFile::with_suffix(".yaml").expect("a temporary file");
        std::fs::write(copy.path(), broken).expect("the broken copy");
        let (text, ok) = validate(&python, copy.path());
        assert!(!ok && text.contains("restartPolicyy"), "{text}");
    }
}
