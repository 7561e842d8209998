//! A process killed with SIGKILL while it writes a checkpoint leaves the previous one whole
//! and loadable (checkpoints are written to a temporary file, synced, then renamed).

use sluice::checkpoint;
use sluice::prelude::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn torn_write_in(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
    })
}

#[test]
fn a_kill_during_a_checkpoint_write_leaves_the_previous_one_loadable() {
    let dir = std::env::temp_dir().join(format!("sluice-ckpt-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut kills_mid_write = 0;
    let mut newest_step = 0;
    for round in 0..3 {
        let mut writer = Command::new(env!("CARGO_BIN_EXE_checkpoint_writer"))
            .arg(&dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("starts the checkpoint writer");
        let stdout = writer.stdout.take().expect("the writer's stdout");
        let mut lines = BufReader::new(stdout).lines();
        // Let it finish a couple of checkpoints, then catch it writing the next one.
        for _ in 0..2 {
            let line = lines.next().expect("a line").expect("readable");
            assert!(line.starts_with("saved "), "{line}");
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while !torn_write_in(&dir) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
        let caught = torn_write_in(&dir);
        writer.kill().expect("SIGKILL");
        let _ = writer.wait();
        kills_mid_write += usize::from(caught);

        let newest = checkpoint::latest(&dir)
            .expect("the folder reads")
            .expect("a checkpoint survives");
        // Each writer went on from where the last one was killed.
        assert!(
            newest.step >= newest_step + 2,
            "round {round}: {} after {newest_step}",
            newest.step
        );
        newest_step = newest.step;
        let g = Graph::new();
        let v = g.variable("v", &[8 << 20], Initializer::Zeros);
        let mut sess = Session::new(&g);
        sess.init_variables().unwrap();
        let back = checkpoint::restore(&mut sess, &g, &newest.path)
            .unwrap_or_else(|e| panic!("round {round}: checkpoint {} loads: {e}", newest.step));
        assert_eq!(back.restored, 1);
        let values = sess.variable(v).unwrap().to_vec::<f32>().unwrap();
        assert!(
            values.iter().all(|&x| x == newest.step as f32),
            "round {round}: checkpoint {} holds its own step in every element",
            newest.step
        );
    }
    assert!(
        kills_mid_write > 0,
        "no kill landed in the middle of a write"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
