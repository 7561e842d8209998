//! Workers started with `--token-file` (and no token in their environment) carry that token
//! on their own calls to each other: a model split over two of them trains. One test in its
//! own process, since the client reads its token from the environment.

use sluice::distributed::{DistributedOptions, DistributedSession, LocalCluster};
use sluice::prelude::*;
use sluice::service::auth::{TOKEN_ENV, TOKEN_FILE_ENV};

#[test]
fn workers_given_a_token_file_send_it_to_each_other() {
    let dir = std::env::temp_dir().join(format!("sluice-peer-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, "peer-s3cret\n").unwrap();
    // The workers inherit no token from this process: only the file names it.
    std::env::remove_var(TOKEN_ENV);
    std::env::remove_var(TOKEN_FILE_ENV);
    let cluster = LocalCluster::start_with(
        &[("worker", 2)],
        &["--token-file", token_file.to_str().unwrap()],
    )
    .unwrap();

    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[-1, 4]);
    let h = {
        let _d = g.device("/job:worker/task:0");
        let w = g.variable(
            "w0",
            &[4, 3],
            Initializer::Constant(Tensor::full(&[4, 3], 0.5f32)),
        );
        relu(matmul(x, w))
    };
    let y = {
        let _d = g.device("/job:worker/task:1");
        let w = g.variable(
            "w1",
            &[3, 1],
            Initializer::Constant(Tensor::full(&[3, 1], 2.0f32)),
        );
        reduce_sum(matmul(h, w))
    };
    let feed = || vec![(x, Tensor::new(&[2, 4], vec![1.0f32; 8]).unwrap())];

    // Without the token, the client is refused.
    let refused = DistributedSession::new(&g, cluster.spec(), DistributedOptions::default())
        .and_then(|mut d| {
            d.init_variables()?;
            d.run(&[y], &feed())
        })
        .unwrap_err()
        .to_string();
    assert!(refused.contains("token"), "{refused}");

    // With it, the activations cross from worker 0 to worker 1 on the workers' own call.
    std::env::set_var(TOKEN_ENV, "peer-s3cret");
    let mut dist =
        DistributedSession::new(&g, cluster.spec(), DistributedOptions::default()).unwrap();
    dist.init_variables().unwrap();
    let out = dist.run(&[y], &feed()).unwrap();
    // Each of 2 rows: h = 3 x (4 x 0.5) = [2, 2, 2]; y = sum over rows of 2 x 2 x 3.
    assert_eq!(out[0].scalar_f64(), Some(24.0));
    assert!(dist.last_step_transfers().transfers >= 1);
    std::env::remove_var(TOKEN_ENV);
    let _ = std::fs::remove_dir_all(&dir);
}
