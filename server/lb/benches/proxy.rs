//! Load balancer benchmark: prints figures, asserts nothing.
//!
//! On loopback, `wrk` (closed loop, keep-alive) measures requests per second and p50/p99
//! latency of `GET /` in three scenarios, in one run and against the same upstreams:
//! - **direct**: straight to one of the three upstreams (the ceiling of the setup);
//! - **nginx**: nginx with one worker, an `upstream` block over the three upstreams, round
//!   robin, `keepalive 64` and HTTP/1.1 to the upstreams;
//! - **flotilla**: `flotilla_lb::LoadBalancer` with one HTTP frontend, round robin over the
//!   same three upstreams, on a tokio runtime with one worker thread (the fair match for
//!   nginx's single worker process; `BENCH_FLOTILLA_RUNTIME=current` uses a current-thread
//!   runtime instead).
//!
//! The upstreams are one process with three listeners (a minimal hyper HTTP/1.1 keep-alive
//! server answering a fixed 128-byte body). Every part is a separate process — this binary
//! re-executes itself as `upstream` and `flotilla` — pinned with `taskset`. Layout: the load
//! generator on CPU 0 and the proxy on CPU 1; the upstreams on CPU 2 when the machine has
//! three or more CPUs, otherwise beside the proxy on CPU 1, so that the proxy's CPU cost shows
//! in the throughput and wrk has a core of its own. Both proxies get exactly the same layout.
//!
//! Each scenario gets a short warm-up, then `BENCH_ROUNDS` measured rounds interleaved across
//! scenarios (median of each figure is printed). Besides wrk's figures, each row shows the
//! CPU time its server process (the upstreams for direct, else the proxy) spent per request,
//! which other load on a shared machine disturbs far less than throughput and p99 — on such
//! a machine compare that column first. The run fails if any request failed (socket errors
//! or non-2xx/3xx responses).
//!
//! Run: `make bench-lb` or `bash scripts/bench-lb.sh` (installs nginx and wrk when missing),
//! or `cargo bench -p flotilla-lb --bench proxy` when both are on `PATH`.
//! Knobs: `BENCH_DURATION` (seconds per round, default 10), `BENCH_CONNECTIONS` (default 64),
//! `BENCH_ROUNDS` (default 3), `BENCH_WARMUP` (seconds, default 2), and `BENCH_CPU_LOAD`,
//! `BENCH_CPU_PROXY`, `BENCH_CPU_UPSTREAMS` to override the layout.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Size of the upstreams' response body.
const BODY: &[u8] = &[b'x'; 128];

fn main() -> ExitCode {
    // `cargo bench` passes `--bench` (and any filter); only our own modes are words.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let result = match args.first().map(String::as_str) {
        Some("upstream") => upstream::run(),
        Some("flotilla") => flotilla::run(&args[1..]),
        _ => orchestrate(),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("bench proxy: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn orchestrate() -> anyhow::Result<ExitCode> {
    let Some(tools) = Tools::find() else {
        eprintln!(
            "bench proxy: needs `nginx` and `wrk` on PATH; `make bench-lb` \
             (scripts/bench-lb.sh) installs them"
        );
        return Ok(ExitCode::FAILURE);
    };
    let knobs = Knobs::from_env()?;
    let layout = Layout::from_env()?;
    let mut children = Children::new()?;

    println!(
        "layout: wrk on CPU {}, proxy on CPU {}, upstreams on CPU {}; \
         {} connections, {} s × {} rounds, {} s warm-up; flotilla runtime: {}",
        layout.load,
        layout.proxy,
        layout.upstreams,
        knobs.connections,
        knobs.duration,
        knobs.rounds,
        knobs.warmup,
        flotilla::runtime_name(),
    );
    // Anything else running on these CPUs skews the figures (most visibly the p99s).
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let load: Vec<&str> = load.split_whitespace().take(3).collect();
        println!("load average before the run: {}", load.join(" "));
    }

    let (mut child, stdout) = children.spawn_self(layout.upstreams, &["upstream"])?;
    let upstreams = read_ready(stdout, &mut child)?;
    let upstreams_pid = child.id();
    children.push(child);
    if upstreams.len() != 3 {
        bail!("the upstream process announced {upstreams:?}, expected three addresses");
    }

    let nginx_addr = free_port()?;
    let conf = nginx_conf(children.dir(), nginx_addr, &upstreams);
    let conf_path = children.dir().join("nginx.conf");
    std::fs::write(&conf_path, conf).context("writing nginx.conf")?;
    let nginx = Command::new("taskset")
        .arg("-c")
        .arg(layout.proxy.to_string())
        .arg(&tools.nginx)
        .arg("-p")
        .arg(children.dir())
        .arg("-e")
        .arg(children.dir().join("error.log"))
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .spawn()
        .context("starting nginx")?;
    let nginx_pid = nginx.id();
    children.push(nginx);

    let mut args = vec!["flotilla".to_owned(), "127.0.0.1:0".to_owned()];
    args.extend(upstreams.iter().map(SocketAddr::to_string));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (mut child, stdout) = children.spawn_self(layout.proxy, &args)?;
    let flotilla_addr = *read_ready(stdout, &mut child)?
        .first()
        .context("the flotilla process announced no address")?;
    let flotilla_pid = child.id();
    children.push(child);

    // The process whose CPU time is charged to each scenario (`taskset` execs, so a
    // child's pid is the program's; nginx runs without a master process).
    let scenarios = [
        ("direct", upstreams[0], upstreams_pid),
        ("nginx", nginx_addr, nginx_pid),
        ("flotilla", flotilla_addr, flotilla_pid),
    ];
    for (name, addr, _) in scenarios {
        wait_serving(addr, &children.dir().join("error.log"))
            .with_context(|| format!("{name} at {addr} does not answer GET / with 200"))?;
    }

    let mut results: Vec<Vec<WrkResult>> = vec![Vec::new(); scenarios.len()];
    for (name, addr, _) in scenarios {
        wrk(&tools, &layout, addr, knobs.connections, knobs.warmup)
            .with_context(|| format!("warming up {name}"))?;
    }
    for round in 1..=knobs.rounds {
        for (i, (name, addr, pid)) in scenarios.iter().enumerate() {
            let cpu_before = cpu_ns(*pid)?;
            let mut result = wrk(&tools, &layout, *addr, knobs.connections, knobs.duration)
                .with_context(|| format!("measuring {name}"))?;
            let cpu = cpu_ns(*pid)? - cpu_before;
            result.cpu_us_per_request = cpu as f64 / 1e3 / result.requests.max(1) as f64;
            eprintln!(
                "round {round}/{}: {name:<8} {:>8.0} req/s  p50 {:>9}  p99 {:>9}  \
                 CPU {:>5.1} µs/req  errors {}",
                knobs.rounds,
                result.rps,
                micros(result.p50_us),
                micros(result.p99_us),
                result.cpu_us_per_request,
                result.errors
            );
            results[i].push(result);
        }
    }

    let mut table = String::new();
    writeln!(
        table,
        "\n{:<10} {:>10} {:>10} {:>10} {:>13} {:>7}",
        "scenario", "req/s", "p50", "p99", "CPU µs/req", "errors"
    )?;
    let mut medians = Vec::new();
    let mut errors = 0;
    for ((name, _, _), rounds) in scenarios.iter().zip(&results) {
        let m = WrkResult::median(rounds);
        writeln!(
            table,
            "{name:<10} {:>10.0} {:>10} {:>10} {:>13.1} {:>7}",
            m.rps,
            micros(m.p50_us),
            micros(m.p99_us),
            m.cpu_us_per_request,
            m.errors
        )?;
        errors += m.errors;
        medians.push(m);
    }
    let (nginx, flotilla) = (&medians[1], &medians[2]);
    writeln!(
        table,
        "\nflotilla / nginx: throughput {:.2}× (aim ≥ 1), p99 {:.2}× (aim ≤ 1), p50 {:.2}×, \
         CPU per request {:.2}×",
        flotilla.rps / nginx.rps,
        flotilla.p99_us / nginx.p99_us,
        flotilla.p50_us / nginx.p50_us,
        flotilla.cpu_us_per_request / nginx.cpu_us_per_request,
    )?;
    print!("{table}");

    if errors > 0 {
        eprintln!("bench proxy: {errors} failed requests (socket errors or non-2xx/3xx)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The external programs the orchestrator drives.
struct Tools {
    nginx: PathBuf,
    wrk: PathBuf,
}

impl Tools {
    fn find() -> Option<Tools> {
        // Debian installs nginx in /usr/sbin, which a non-root PATH may lack.
        let nginx = which("nginx").or_else(|| {
            let sbin = PathBuf::from("/usr/sbin/nginx");
            sbin.is_file().then_some(sbin)
        })?;
        Some(Tools {
            nginx,
            wrk: which("wrk")?,
        })
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

struct Knobs {
    duration: u64,
    connections: u64,
    rounds: usize,
    warmup: u64,
}

impl Knobs {
    fn from_env() -> anyhow::Result<Knobs> {
        let knobs = Knobs {
            duration: env_or("BENCH_DURATION", 10)?,
            connections: env_or("BENCH_CONNECTIONS", 64)?,
            rounds: env_or("BENCH_ROUNDS", 3)?,
            warmup: env_or("BENCH_WARMUP", 2)?,
        };
        if knobs.duration == 0 || knobs.connections == 0 || knobs.rounds == 0 {
            bail!("BENCH_DURATION, BENCH_CONNECTIONS and BENCH_ROUNDS must be at least 1");
        }
        Ok(knobs)
    }
}

/// Which CPU each part is pinned to.
struct Layout {
    load: usize,
    proxy: usize,
    upstreams: usize,
}

impl Layout {
    fn from_env() -> anyhow::Result<Layout> {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        if cpus < 2 {
            bail!("needs at least two CPUs (the load generator and the proxy on different ones)");
        }
        Ok(Layout {
            load: env_or("BENCH_CPU_LOAD", 0)?,
            proxy: env_or("BENCH_CPU_PROXY", 1)?,
            upstreams: env_or("BENCH_CPU_UPSTREAMS", if cpus >= 3 { 2 } else { 1 })?,
        })
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={value:?} is not a valid number")),
        Err(_) => Ok(default),
    }
}

/// Owns the child processes and the scratch directory; kills and reaps every child and
/// removes the directory when dropped, also while unwinding from a panic.
struct Children {
    dir: PathBuf,
    children: Vec<Child>,
}

impl Children {
    fn new() -> anyhow::Result<Children> {
        let dir = std::env::temp_dir().join(format!("flotilla-bench-proxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Children {
            dir,
            children: Vec::new(),
        })
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn push(&mut self, child: Child) {
        self.children.push(child);
    }

    /// Starts this binary in another mode on `cpu`; the caller reads its ready line and then
    /// hands the child over with `push`.
    fn spawn_self(&mut self, cpu: usize, args: &[&str]) -> anyhow::Result<(Child, ChildStdout)> {
        let exe = std::env::current_exe().context("locating the bench binary")?;
        let mut child = Command::new("taskset")
            .arg("-c")
            .arg(cpu.to_string())
            .arg(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting `{}`", args.join(" ")))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        Ok((child, stdout))
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads the `ready ADDR…` line a child prints once it listens; kills it on failure.
fn read_ready(stdout: ChildStdout, child: &mut Child) -> anyhow::Result<Vec<SocketAddr>> {
    let mut line = String::new();
    let read = BufReader::new(stdout).read_line(&mut line);
    let parsed = read.ok().and_then(|_| {
        let mut words = line.split_whitespace();
        (words.next() == Some("ready"))
            .then(|| words.map(str::parse).collect::<Result<Vec<_>, _>>().ok())
            .flatten()
    });
    match parsed {
        Some(addrs) => Ok(addrs),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("child process did not become ready (said {line:?})")
        }
    }
}

/// CPU time so far of every thread of process `pid`, from `/proc/PID/task/*/schedstat`
/// (its first field is the time spent running, in nanoseconds).
fn cpu_ns(pid: u32) -> anyhow::Result<u64> {
    let tasks = format!("/proc/{pid}/task");
    let mut total = 0;
    for task in std::fs::read_dir(&tasks).with_context(|| format!("reading {tasks}"))? {
        // A thread may exit between listing and reading.
        let Ok(stat) = std::fs::read_to_string(task?.path().join("schedstat")) else {
            continue;
        };
        total += stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .with_context(|| format!("unexpected schedstat {stat:?} under {tasks}"))?;
    }
    Ok(total)
}

/// A loopback port that was free a moment ago (for nginx, which cannot report one).
fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

/// Polls `GET /` until it answers 200, for up to ten seconds.
fn wait_serving(addr: SocketAddr, nginx_log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match get_status(addr) {
            Ok(200) => return Ok(()),
            result if Instant::now() >= deadline => {
                let log = std::fs::read_to_string(nginx_log).unwrap_or_default();
                bail!("last attempt: {result:?}; nginx error log:\n{log}");
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn get_status(addr: SocketAddr) -> anyhow::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP/1.1 response: {response:?}"))?;
    Ok(status)
}

/// nginx matched to the Flotilla frontend: one worker, round robin over the three
/// upstreams with a keep-alive pool, no access log, and no per-connection request cap on
/// either side (Flotilla has none; nginx's default of 1,000 would add reconnects).
fn nginx_conf(dir: &Path, listen: SocketAddr, upstreams: &[SocketAddr]) -> String {
    let dir = dir.display();
    let servers: String = upstreams
        .iter()
        .map(|addr| format!("        server {addr};\n"))
        .collect();
    format!(
        "worker_processes 1;
master_process off;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    upstream pool {{
{servers}        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://pool;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
    }}
}}
"
    )
}

/// The figures of one wrk run.
#[derive(Clone, Debug)]
struct WrkResult {
    requests: u64,
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
    /// CPU time (user + system, all threads) of the scenario's server process per request;
    /// filled in by the caller. Less sensitive than throughput to whatever else shares the
    /// CPUs.
    cpu_us_per_request: f64,
}

impl WrkResult {
    /// The median of each figure across rounds, and the sum of the errors.
    fn median(rounds: &[WrkResult]) -> WrkResult {
        let median = |f: fn(&WrkResult) -> f64| {
            let mut values: Vec<f64> = rounds.iter().map(f).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        WrkResult {
            requests: rounds.iter().map(|r| r.requests).sum(),
            rps: median(|r| r.rps),
            p50_us: median(|r| r.p50_us),
            p99_us: median(|r| r.p99_us),
            errors: rounds.iter().map(|r| r.errors).sum(),
            cpu_us_per_request: median(|r| r.cpu_us_per_request),
        }
    }

    /// Parses `wrk --latency` output.
    fn parse(output: &str) -> anyhow::Result<WrkResult> {
        let mut requests = None;
        let mut rps = None;
        let mut p50 = None;
        let mut p99 = None;
        let mut errors = 0;
        for line in output.lines().map(str::trim) {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["Requests/sec:", value] => rps = value.parse().ok(),
                [n, "requests", "in", ..] => requests = n.parse().ok(),
                ["50%", value] => p50 = Some(parse_duration_us(value)?),
                ["99%", value] => p99 = Some(parse_duration_us(value)?),
                ["Non-2xx", "or", "3xx", "responses:", n] => errors += n.parse::<u64>()?,
                ["Socket", "errors:", rest @ ..] => {
                    // "connect 0, read 0, write 0, timeout 0"
                    for pair in rest.chunks(2) {
                        if let [_, n] = pair {
                            errors += n.trim_end_matches(',').parse::<u64>()?;
                        }
                    }
                }
                _ => {}
            }
        }
        match (requests, rps, p50, p99) {
            (Some(requests), Some(rps), Some(p50_us), Some(p99_us)) => Ok(WrkResult {
                requests,
                rps,
                p50_us,
                p99_us,
                errors,
                cpu_us_per_request: 0.0,
            }),
            _ => bail!("could not read wrk's figures from:\n{output}"),
        }
    }
}

/// wrk prints durations as `812.00us`, `1.23ms` or `2.00s`.
fn parse_duration_us(value: &str) -> anyhow::Result<f64> {
    let (number, scale) = if let Some(n) = value.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1e6)
    } else {
        bail!("unknown duration {value:?} in wrk output");
    };
    Ok(number.parse::<f64>()? * scale)
}

fn micros(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

/// Runs wrk (one thread, pinned) against `addr` for `seconds`.
fn wrk(
    tools: &Tools,
    layout: &Layout,
    addr: SocketAddr,
    connections: u64,
    seconds: u64,
) -> anyhow::Result<WrkResult> {
    let output = Command::new("taskset")
        .arg("-c")
        .arg(layout.load.to_string())
        .arg(&tools.wrk)
        .args(["-t1", "--latency", "--timeout", "5s"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg(format!("http://{addr}/"))
        .stdin(Stdio::null())
        .output()
        .context("running wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}):\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    WrkResult::parse(&stdout)
}

/// Announces `ready ADDR…` on stdout, which the orchestrator waits for.
fn announce(addrs: &[SocketAddr]) -> anyhow::Result<()> {
    let line: Vec<String> = addrs.iter().map(SocketAddr::to_string).collect();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready {}", line.join(" "))?;
    stdout.flush()?;
    Ok(())
}

mod upstream {
    //! Three minimal HTTP/1.1 keep-alive servers on one current-thread runtime.

    use std::convert::Infallible;
    use std::process::ExitCode;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    pub fn run() -> anyhow::Result<ExitCode> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let mut listeners = Vec::new();
            for _ in 0..3 {
                listeners.push(TcpListener::bind("127.0.0.1:0").await?);
            }
            let addrs = listeners
                .iter()
                .map(TcpListener::local_addr)
                .collect::<Result<Vec<_>, _>>()?;
            let mut tasks = tokio::task::JoinSet::new();
            for listener in listeners {
                tasks.spawn(serve(listener));
            }
            super::announce(&addrs)?;
            // Runs until the orchestrator kills the process.
            while let Some(result) = tasks.join_next().await {
                result??;
            }
            Ok(ExitCode::SUCCESS)
        })
    }

    async fn serve(listener: TcpListener) -> anyhow::Result<()> {
        let body = Bytes::from_static(super::BODY);
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let body = body.clone();
            // Connections live until the peer closes; the process is killed at the end.
            tokio::spawn(async move {
                let service = service_fn(move |_request: Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move {
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header("content-type", "text/plain")
                                .body(Full::new(body))
                                .expect("a valid response"),
                        )
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}

mod flotilla {
    //! The Flotilla L7 frontend under test, in a process of its own.

    use std::net::SocketAddr;
    use std::process::ExitCode;

    use anyhow::Context;
    use flotilla_lb::{FrontendConfig, LoadBalancer, Member};

    /// `current` for a current-thread runtime; anything else is a one-worker multi-thread
    /// runtime, as the LB runs inside the server's multi-thread runtime.
    fn current_thread() -> bool {
        std::env::var("BENCH_FLOTILLA_RUNTIME").is_ok_and(|v| v == "current")
    }

    pub fn runtime_name() -> &'static str {
        if current_thread() {
            "current-thread"
        } else {
            "multi-thread, 1 worker"
        }
    }

    pub fn run(args: &[String]) -> anyhow::Result<ExitCode> {
        let [listen, upstreams @ ..] = args else {
            anyhow::bail!("usage: proxy flotilla LISTEN UPSTREAM…");
        };
        let listen: SocketAddr = listen.parse().context("LISTEN")?;
        let upstreams = upstreams
            .iter()
            .map(|a| a.parse::<SocketAddr>())
            .collect::<Result<Vec<_>, _>>()
            .context("UPSTREAM")?;
        let runtime = if current_thread() {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(1);
            builder
        }
        .enable_all()
        .build()?;
        runtime.block_on(serve(listen, upstreams))
    }

    async fn serve(listen: SocketAddr, upstreams: Vec<SocketAddr>) -> anyhow::Result<ExitCode> {
        let lb = LoadBalancer::new();
        lb.set_pool(
            "bench",
            upstreams
                .iter()
                .enumerate()
                .map(|(i, addr)| Member::new(format!("upstream-{i}"), *addr))
                .collect(),
        );
        lb.upsert_frontend(FrontendConfig::http("bench", "web", listen))
            .await
            .context("starting the frontend")?;
        let addr = lb
            .local_addr("bench", "web")
            .context("the frontend has no address")?;
        super::announce(&[addr])?;
        // Serves until the orchestrator kills the process.
        std::future::pending().await
    }
}
