//! How fast a fuzz body runs without libFuzzer's instrumentation: replays every file in
//! a corpus folder through a target's body and prints executions per second.
//! `cargo run --release -p authsync-fuzz-bodies --example exec_rate -- sequence fuzz/corpus/sequence`
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_default();
    let folder = args.next().unwrap_or_default();
    let body: fn(&[u8]) = match target.as_str() {
        "sequence" => authsync_fuzz_bodies::sequence,
        "response" => authsync_fuzz_bodies::response,
        "token" => authsync_fuzz_bodies::token,
        "journal" => authsync_fuzz_bodies::journal,
        "script" => authsync_fuzz_bodies::script,
        other => {
            eprintln!("unknown target {other:?}");
            std::process::exit(2);
        }
    };
    let inputs: Vec<Vec<u8>> = std::fs::read_dir(&folder)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| std::fs::read(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    let start = Instant::now();
    let mut runs = 0u64;
    while start.elapsed().as_secs_f64() < 3.0 {
        for input in &inputs {
            body(input);
            runs += 1;
        }
    }
    let rate = runs as f64 / start.elapsed().as_secs_f64();
    println!(
        "{target}: {} inputs, {rate:.0} executions/s without instrumentation",
        inputs.len()
    );
}
