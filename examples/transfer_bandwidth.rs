//! Tensor transfer between two local worker processes beside raw TCP on loopback, in the same
//! run: a 1, 10 and 100 MB f32 tensor held by worker 0 and reduced on worker 1. The transfer
//! time is the `_Recv` kernel's time on worker 1 (RecvTensor: wait, stream, decode); raw TCP
//! writes the same bytes through one loopback socket. Medians of `--repeats` runs (default 7).
//!
//!     cargo build --release --bin sluice-engine
//!     cargo run --release --example transfer_bandwidth [-- --repeats N]

use clap::Parser;
use sluice::distributed::{DistributedOptions, DistributedSession, LocalCluster};
use sluice::prelude::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

/// Tensor transfer between two local worker processes (needs the built `sluice-engine`)
/// beside raw TCP on loopback: 1, 10 and 100 MB, in MB/s.
#[derive(Parser)]
#[command(
    name = "transfer_bandwidth",
    version,
    after_help = "RUST_LOG filters diagnostics (default warn)."
)]
struct Args {
    /// Runs per size; the medians are printed
    #[arg(
        long,
        value_name = "N",
        default_value_t = 7,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    repeats: u32,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seconds to push `bytes` through one loopback TCP connection.
fn raw_tcp(bytes: usize) -> std::io::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut left = bytes;
        while left > 0 {
            let n = s.read(&mut buf[..left.min(1 << 20)])?;
            if n == 0 {
                break;
            }
            left -= n;
        }
        s.write_all(b"k")?;
        Ok(())
    });
    let data = vec![7u8; bytes];
    let started = Instant::now();
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.write_all(&data)?;
    let mut ack = [0u8; 1];
    s.read_exact(&mut ack)?;
    let seconds = started.elapsed().as_secs_f64();
    reader
        .join()
        .map_err(|_| std::io::Error::other("reader failed"))??;
    Ok(seconds)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Args { repeats } = Args::parse();
    sluice::logging::init("warn");
    let cluster = LocalCluster::start(&[("worker", 2)])?;
    println!(
        "{:>8} {:>14} {:>14} {:>8}",
        "MB", "sluice MB/s", "raw TCP MB/s", "ratio"
    );
    for mb in [1usize, 10, 100] {
        let n = mb * (1 << 20) / 4;
        let g = Graph::new();
        let v = {
            let _d = g.device("/job:worker/task:0");
            g.variable("v", &[n], Initializer::Ones)
        };
        let total = {
            let _d = g.device("/job:worker/task:1");
            // The largest element: all of them arrive, or the answer is wrong.
            reduce_max(v)
        };
        let mut sess = DistributedSession::new(&g, cluster.spec(), DistributedOptions::default())?;
        sess.init_variables()?;
        sess.run(&[total], &[])?;
        let mut ours = Vec::new();
        let mut tcp = Vec::new();
        for _ in 0..repeats {
            let (values, timings) = sess.run_traced(&[total], &[])?;
            if values[0].scalar_f64() != Some(1.0) {
                return Err(format!("wrong maximum {:?}", values[0].scalar_f64()).into());
            }
            let recv = timings
                .iter()
                .find(|t| t.node.starts_with("_recv/"))
                .ok_or("no _Recv timing")?;
            ours.push(recv.micros / 1e6);
            tcp.push(raw_tcp(n * 4)?);
        }
        let (ours, tcp) = (median(ours), median(tcp));
        let rate = |s: f64| (n * 4) as f64 / s / 1e6;
        println!(
            "{mb:>8} {:>14.0} {:>14.0} {:>8.2}",
            rate(ours),
            rate(tcp),
            tcp / ours
        );
    }
    Ok(())
}
