//! `sluice --device`: cells' nodes go to the device asked for, and asking for a GPU the
//! engine lacks stops the REPL with an error that lists the engine's devices.
//!
//! The GPU half runs on any GPU the engine can use, Mesa's software Vulkan device included
//! (`SLUICE_GPU_ALLOW_SOFTWARE=1`, installed by .ci/run); without one it is skipped.

use std::process::{Command, Output};

/// The script: one node outside any device scope, where it was placed, and its value.
const SCRIPT: &str = r#"
let x = graph.constant(Tensor::from_vec(vec![1.0f32, 2.0]));
let y = x * 3.0f32;
println!("placed on {:?}", graph.node(y.node()).unwrap().device);
println!("value {:?}", sess.run(&[y], &[])?[0].to_vec::<f32>()?);
"#;

fn run_script(name: &str, device: &str, software_gpu: bool) -> Output {
    let dir = std::env::temp_dir().join(format!("sluice-device-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    let script = dir.join(format!("{name}.rs"));
    std::fs::write(&script, SCRIPT).expect("write the script");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["--device", device])
        .arg(&script)
        .env_remove("SLUICE_ENGINE")
        .env(
            "SLUICE_GPU_ALLOW_SOFTWARE",
            if software_gpu { "1" } else { "0" },
        )
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("run sluice");
    let _ = std::fs::remove_file(&script);
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn device_flag_places_cells_or_says_what_the_engine_has() {
    // A GPU name the engine cannot have: the error lists its devices and the REPL stops.
    let out = run_script("missing", "/device:GPU:7", true);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("\"/device:GPU:7\" was asked for"), "{all}");
    assert!(all.contains("device:CPU:0"), "{all}");

    // The CPU: nodes carry no constraint.
    let out = run_script("cpu", "cpu", false);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("placed on \"\""), "{all}");
    assert!(all.contains("value [3.0, 6.0]"), "{all}");

    // The first GPU, where the engine has one.
    let out = run_script("gpu", "gpu", true);
    let all = text(&out);
    if !out.status.success() && all.contains("but the engine has only") {
        let ci = std::env::var_os("CI").is_some();
        assert!(!ci, "no GPU, not even the software one, under CI: {all}");
        eprintln!("skipped: the engine has no GPU (install mesa-vulkan-drivers)");
        return;
    }
    assert!(out.status.success(), "{all}");
    assert!(all.contains("placed on \"/device:GPU:0\""), "{all}");
    assert!(all.contains("value [3.0, 6.0]"), "{all}");
}
