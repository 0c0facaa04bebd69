//! Allocations per request on the cache-hit path, counted by dhat.
//!
//!     cargo run --release -p mangaassist-bench --bin alloc_profile [requests]
//!
//! Starts the service in-process (prod settings: API key, limits, budgets;
//! in-process cache; the embedded emulator for the one miss that fills the
//! cache), then asks the same question over one keep-alive connection.
//! The client writes fixed bytes and reads into a fixed buffer, so it
//! allocates nothing: the counts are the server's. Prints blocks and bytes
//! per request over the measured requests, and writes `dhat-heap.json`
//! (view it at https://nnethercote.github.io/dh_view/dh_view.html, or run
//! `scripts/alloc-sites.py dhat-heap.json REQUESTS` for the largest sources).

use std::io::{Read, Write};
use std::net::TcpStream;

use mangaassist_service::config::resolve;
use mangaassist_service::server::start;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const KEY: &str = "alloc-profile-key-0123456789";
const WARM_UP: usize = 1_000;

fn main() -> Result<(), String> {
    let requests: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let profiler = dhat::Profiler::new_heap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let config = format!(
        "{}jobs_workers = 0\n",
        mangaassist_bench::service_config("profile", KEY)
    );
    let resolved = resolve("prod", Some(&config), &[])?;
    let server = runtime.block_on(start(resolved))?;
    let addr = server.addr();

    let body = r#"{"action":"sendMessage","data":{"message":"おすすめの漫画を教えてください"}}"#;
    let request = format!(
        "POST /v1/chat HTTP/1.1\r\nHost: localhost\r\nX-Api-Key: {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut buffer = [0u8; 16 * 1024];
    let mut ask = |stream: &mut TcpStream| -> Result<(), String> {
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        read_one(stream, &mut buffer)
    };
    for _ in 0..WARM_UP {
        ask(&mut stream)?;
    }
    let before = dhat::HeapStats::get();
    for _ in 0..requests {
        ask(&mut stream)?;
    }
    let after = dhat::HeapStats::get();
    let per = |n: u64| n as f64 / requests as f64;
    println!(
        "cache-hit path, {requests} requests after {WARM_UP} of warm-up: \
         {:.1} allocations and {:.0} bytes per request; {} bytes live at the end",
        per(after.total_blocks - before.total_blocks),
        per(after.total_bytes - before.total_bytes),
        after.curr_bytes
    );
    drop(stream);
    runtime.block_on(server.shutdown());
    drop(profiler);
    Ok(())
}

/// Reads one response (headers and a Content-Length body) into `buffer`,
/// allocating nothing; refuses anything but a 200.
fn read_one(stream: &mut TcpStream, buffer: &mut [u8]) -> Result<(), String> {
    let mut filled = 0;
    loop {
        let n = stream
            .read(&mut buffer[filled..])
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        filled += n;
        let Some(end) = buffer[..filled].windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = std::str::from_utf8(&buffer[..end]).map_err(|e| e.to_string())?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(format!("not a 200: {head}"));
        }
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .ok_or("no Content-Length")?;
        while filled < end + 4 + length {
            let n = stream
                .read(&mut buffer[filled..])
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the server closed the connection mid-body".into());
            }
            filled += n;
        }
        return Ok(());
    }
}
