//! word2vec on the King James Bible (Debian's `bible-kjv-text`): the example's skip-gram
//! model with sparse embedding tables learns, in one process and replicated over two worker
//! processes with the tables on two parameter servers (synchronous and asynchronous), and the
//! nearest neighbours of common words make sense.

use sluice_tests::{require, run_example};

fn have_kjv() -> bool {
    let reader = std::process::Command::new("bible")
        .arg("-f")
        .arg("Ge1:1")
        .output();
    require(
        reader.is_ok_and(|out| out.status.success()),
        "no King James Bible (Debian's bible-kjv-text, read with `bible`)",
        "apt-get install bible-kjv bible-kjv-text, as .ci/run does",
    )
}

/// Each step's printed loss, in order.
fn losses(output: &str) -> Vec<f64> {
    (output.lines())
        .filter(|l| l.starts_with("step "))
        .filter_map(|l| l.rsplit_once("loss ")?.1.trim().parse().ok())
        .collect()
}

/// The words printed as the neighbours of `word`.
fn neighbours<'a>(output: &'a str, word: &str) -> Vec<&'a str> {
    let prefix = format!("neighbours of {word}: ");
    let line = output.lines().find_map(|l| l.strip_prefix(prefix.as_str()));
    let line = line.unwrap_or_else(|| panic!("no neighbours of {word} in:\n{output}"));
    line.split(", ")
        .filter_map(|n| n.split(' ').next())
        .collect()
}

/// Pairs that any sensible embedding of this text puts near each other.
fn check_neighbours(output: &str) {
    let expect: [(&str, &[&str]); 4] = [
        (
            "seven",
            &[
                "two", "three", "four", "five", "six", "eight", "nine", "ten",
            ],
        ),
        ("silver", &["gold", "brass"]),
        ("third", &["second", "fourth", "fifth", "sixth", "seventh"]),
        ("sons", &["daughters", "brethren", "children"]),
    ];
    for (word, any_of) in expect {
        let near = neighbours(output, word);
        assert!(
            near.iter().any(|n| any_of.contains(n)),
            "neighbours of {word}: {near:?}, none of {any_of:?}\n{output}"
        );
    }
}

fn check_learns(output: &str) {
    let words: usize = (output.lines().find_map(|l| l.strip_prefix("vocabulary: ")))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert!(words >= 10_000, "a vocabulary of {words} words:\n{output}");
    let l = losses(output);
    assert!(l.len() >= 3, "{output}");
    // The first step's loss is 6 log 2 (all dot products zero); training brings it well down.
    assert!((l[0] - 6.0 * 2f64.ln()).abs() < 0.05, "{l:?}");
    assert!(
        *l.last().unwrap() < 0.7 * l[0],
        "the loss did not fall: {l:?}"
    );
    check_neighbours(output);
}

#[test]
fn word2vec_learns_the_kjv_in_one_process() {
    if !have_kjv() {
        return;
    }
    let output = run_example("word2vec", &[]).expect("word2vec");
    println!("{output}");
    check_learns(&output);
}

#[test]
fn word2vec_learns_over_two_workers_and_two_parameter_servers() {
    if !have_kjv() {
        return;
    }
    for mode in [&[][..], &["--async"][..]] {
        let mut args = vec!["--workers", "2", "--ps", "2", "--steps", "2000"];
        args.extend_from_slice(mode);
        let output = run_example("word2vec", &args).expect("word2vec replicated");
        println!("{output}");
        check_learns(&output);
    }
}
