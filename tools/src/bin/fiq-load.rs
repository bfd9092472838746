//! `fiq-load`: a load generator for `fiq-index serve`: N clients on keep-alive connections send
//! `POST /query` for a while; prints requests/s and latency percentiles.
//!
//!   fiq-load --addr 127.0.0.1:8080 --clients 8 --seconds 30 --kind composed
//!
//! Text queries cycle through a fixed list of modifications; composed queries pair them with
//! reference keys taken from the server's own catalog (`GET /items`). Std only: one thread per client,
//! HTTP/1.1 written by hand, so that the client costs little beside the server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;

const TEXTS: [&str; 12] = [
    "is red and sleeveless",
    "is blue with long sleeves",
    "is shorter and black",
    "has a floral print",
    "is white and more casual",
    "is green and has no pattern",
    "is darker and longer",
    "has stripes and is yellow",
    "is pink with short sleeves",
    "is grey and more formal",
    "has polka dots",
    "is purple and tighter",
];

/// Drive `POST /query` of a running fiq server with concurrent clients.
#[derive(Debug, Parser)]
struct Args {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Concurrent clients (one keep-alive connection each).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// How long to send, after the warm-up.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Warm-up, not measured.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// `text`: modification texts alone; `composed`: a reference key plus a text.
    #[arg(long, value_parser = ["text", "composed"], default_value = "text")]
    kind: String,
    /// Results per query.
    #[arg(short, default_value_t = 10)]
    k: usize,
    /// Print the result as one JSON object too.
    #[arg(long)]
    json: bool,
}

/// One keep-alive connection.
struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    addr: SocketAddr,
}

impl Connection {
    fn open(addr: SocketAddr) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Connection {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            addr,
        })
    }

    /// Sends one request and reads its response: (status, body).
    fn send(&mut self, method: &str, path: &str, body: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.writer.write_all(&request)?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("not an HTTP status line: {line:?}"))?;
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse()?;
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok((status, body))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let keys: Vec<String> = if args.kind == "composed" {
        let (status, body) = Connection::open(args.addr)?.send("GET", "/items?limit=500", b"")?;
        if status != 200 {
            bail!("GET /items answered {status}");
        }
        let page: serde_json::Value = serde_json::from_slice(&body)?;
        page["items"]
            .as_array()
            .context("no items")?
            .iter()
            .filter_map(|item| item["key"].as_str().map(str::to_owned))
            .collect()
    } else {
        Vec::new()
    };
    if args.kind == "composed" && keys.is_empty() {
        bail!("the server's catalog is empty");
    }
    let warmup = Duration::from_secs_f64(args.warmup);
    let measured = Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let results: Vec<anyhow::Result<(Vec<Duration>, usize)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.clients)
            .map(|client| {
                let keys = &keys;
                let args = &args;
                scope.spawn(move || -> anyhow::Result<(Vec<Duration>, usize)> {
                    let mut connection = Connection::open(args.addr)?;
                    let mut latencies = Vec::new();
                    let mut errors = 0;
                    let mut n = client * 7919;
                    loop {
                        let now = started.elapsed();
                        if now >= warmup + measured {
                            break;
                        }
                        let text = TEXTS[n % TEXTS.len()];
                        let body = if keys.is_empty() {
                            serde_json::json!({"text": text, "k": args.k})
                        } else {
                            let key = &keys[(n / TEXTS.len()) % keys.len()];
                            serde_json::json!({"key": key, "text": text, "k": args.k})
                        };
                        n += 1;
                        let sent = Instant::now();
                        let (status, _) =
                            connection.send("POST", "/query", body.to_string().as_bytes())?;
                        let took = sent.elapsed();
                        if now >= warmup {
                            if status == 200 {
                                latencies.push(took);
                            } else {
                                errors += 1;
                            }
                        }
                    }
                    Ok((latencies, errors))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut latencies = Vec::new();
    let mut errors = 0;
    for result in results {
        let (l, e) = result?;
        latencies.extend(l);
        errors += e;
    }
    latencies.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let rps = latencies.len() as f64 / measured.as_secs_f64();
    println!(
        "{} {} queries, {} clients, {:.1} s: {:.1} requests/s, latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} errors",
        latencies.len(),
        args.kind,
        args.clients,
        measured.as_secs_f64(),
        rps,
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 90.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies.last().copied().unwrap_or_default()),
        errors
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "kind": args.kind,
                "clients": args.clients,
                "seconds": measured.as_secs_f64(),
                "requests": latencies.len(),
                "errors": errors,
                "requests_per_second": rps,
                "p50_ms": ms(percentile(&latencies, 50.0)),
                "p90_ms": ms(percentile(&latencies, 90.0)),
                "p99_ms": ms(percentile(&latencies, 99.0)),
                "max_ms": ms(latencies.last().copied().unwrap_or_default()),
            })
        );
    }
    Ok(())
}
