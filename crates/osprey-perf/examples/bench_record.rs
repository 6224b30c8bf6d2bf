//! Prints what one `Op::record` costs, single-threaded and with two threads
//! recording into the same op:
//!
//! ```text
//! cargo run --release -p osprey-perf --example bench_record [-- ITERATIONS]
//! ```

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 20_000_000,
    };
    let report = osprey_perf::bench_record(iterations);
    println!("iterations per thread: {iterations}");
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
