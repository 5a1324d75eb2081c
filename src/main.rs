//! The `clusterdns` command: CoreDNS's flags, so that the stock kube-system Deployment's
//! `-conf /etc/coredns/Corefile` works unchanged, plus `clusterdns check FILE`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use clusterdns::cluster::source::Origin;
use clusterdns::config::{self, LoadOptions};
use clusterdns::plugin::registry;
use clusterdns::{app, cluster, nodelocal, observe};

#[derive(Parser, Debug)]
#[command(
    name = "clusterdns",
    disable_version_flag = true,
    about = "Cluster DNS for Kubernetes: reads a CoreDNS Corefile and answers as CoreDNS does",
    long_about = "Cluster DNS for Kubernetes: reads a CoreDNS Corefile and answers as CoreDNS does.\n\n\
CoreDNS's single-dash flags are accepted too: -conf FILE, -dns.port N, -version, -plugins, -quiet.\n\n\
Signals: SIGTERM and SIGINT stop the server (after the health plugin's lameduck time, answering \
all the while); SIGUSR1 reloads the Corefile.\n\n\
Examples:\n  clusterdns -conf /etc/coredns/Corefile\n  clusterdns --conf deploy/local/Corefile\n  clusterdns check Corefile"
)]
struct Cli {
    /// The Corefile to serve (default: ./Corefile).
    #[arg(long = "conf", value_name = "FILE")]
    conf: Option<PathBuf>,

    /// The port for server block keys that name none (default 53).
    #[arg(long = "dns.port", value_name = "PORT")]
    dns_port: Option<u16>,

    /// Print the version and exit.
    #[arg(long)]
    version: bool,

    /// List the directives this build supports and exit.
    #[arg(long)]
    plugins: bool,

    /// Do not print the startup banner.
    #[arg(long)]
    quiet: bool,

    /// UDP queries answered per second from one source address, on ports whose Corefile blocks
    /// set no `ratelimit`; the rest are dropped before any work is done. 0 (the default, as in
    /// CoreDNS): no limit.
    #[arg(long = "udp-per-source-qps", value_name = "N", default_value_t = 0)]
    udp_per_source_qps: u32,

    /// TCP and TLS connections one listener keeps open; at the bound the longest-idle one is
    /// closed to make room for a new one. Capped by the file descriptor limit.
    #[arg(long = "tcp-connections", value_name = "N", default_value_t = 16_384)]
    tcp_connections: usize,

    /// TCP connections one source address may keep open on a listener; at the bound that
    /// source's longest-idle one is closed to make room.
    #[arg(
        long = "tcp-connections-per-source",
        value_name = "N",
        default_value_t = 1024
    )]
    tcp_connections_per_source: usize,

    /// How log lines are written: `text` as CoreDNS writes them, or `json` (one object a line).
    #[arg(long = "log-format", value_enum, default_value = "text")]
    log_format: LogFormatArg,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a Corefile (and the objects files it names); print every error as
    /// FILE:LINE:COL: message and exit non-zero if there is any.
    Check {
        /// The Corefile to check (default ./Corefile, as -conf).
        #[arg(default_value = "Corefile")]
        file: PathBuf,
        /// The port for keys that name none, as with -dns.port.
        #[arg(long = "dns.port", value_name = "PORT")]
        dns_port: Option<u16>,
    },
}

/// Go's flag package takes `-conf` and `--conf` alike; clap wants two dashes.
fn normalize_args(args: impl Iterator<Item = String>) -> Vec<String> {
    const LONG: &[&str] = &["conf", "dns.port", "version", "plugins", "quiet"];
    args.map(|a| {
        let body = a.strip_prefix('-').filter(|b| !b.starts_with('-'));
        match body {
            Some(b) if LONG.contains(&b.split('=').next().unwrap_or_default()) => format!("-{a}"),
            _ => a,
        }
    })
    .collect()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if nodelocal::args::is_node_local(&args) {
        return node_local(&args[1..]);
    }
    let cli = Cli::parse_from(normalize_args(args.into_iter()));
    if cli.version {
        println!("{}", clusterdns::version_line());
        println!("{}/{}, rust", std::env::consts::OS, std::env::consts::ARCH);
        println!("Corefile support: CoreDNS-{}", clusterdns::COREDNS_RELEASE);
        return ExitCode::SUCCESS;
    }
    if cli.plugins {
        println!("Server types:\n  dns\n\nPlugins:");
        for p in registry::SUPPORTED {
            println!("  dns.{p}");
        }
        return ExitCode::SUCCESS;
    }
    observe::init_logging(match cli.log_format {
        LogFormatArg::Text => observe::LogFormat::Text,
        LogFormatArg::Json => observe::LogFormat::Json,
    });
    if let Some(Command::Check { file, dns_port }) = &cli.command {
        return check(file, dns_port.or(cli.dns_port));
    }
    let conf = cli
        .conf
        .clone()
        .unwrap_or_else(|| PathBuf::from("Corefile"));
    let opts = app::StartOptions {
        bind: None,
        path: Some(conf),
        load: LoadOptions {
            default_port: cli.dns_port.unwrap_or(config::DEFAULT_PORT),
        },
        limits: clusterdns::server::listen::Limits {
            udp_per_source_qps: cli.udp_per_source_qps,
            max_tcp_connections: cli.tcp_connections,
            max_tcp_per_source: cli.tcp_connections_per_source,
            ..Default::default()
        },
        metrics: None,
    };
    raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let app = match app::App::start_file(opts).await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("{e:#}");
                return ExitCode::FAILURE;
            }
        };
        if !cli.quiet {
            for l in app.listeners() {
                for z in &l.zones {
                    println!("{}:{}", z, l.udp.port());
                }
            }
            println!("{}", clusterdns::version_line());
            println!("{}/{}", std::env::consts::OS, std::env::consts::ARCH);
        }
        let poller = tokio::spawn(app.clone().reload_loop());
        if let Err(e) = serve_signals(&app).await {
            eprintln!("cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
        poller.abort();
        tracing::info!("shutting down");
        app.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// The node-local role: started with node-cache's command line (it names `-localip`), as
/// NodeLocal DNSCache's DaemonSet starts node-cache.
fn node_local(args: &[String]) -> ExitCode {
    let params = match nodelocal::Params::parse(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("Error parsing flags - {e}, Exiting");
            return ExitCode::from(2);
        }
    };
    let json = args.iter().any(|a| a.ends_with("log-format=json"))
        || args
            .windows(2)
            .any(|w| w[0].ends_with("log-format") && w[1] == "json");
    observe::init_logging(if json {
        observe::LogFormat::Json
    } else {
        observe::LogFormat::Text
    });
    raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let quiet = params.quiet;
        let node = match nodelocal::NodeLocal::start(params, Default::default()).await {
            Ok(n) => n,
            Err(e) => {
                eprintln!("{e:#}");
                return ExitCode::FAILURE;
            }
        };
        if !quiet {
            for l in node.app().listeners() {
                for z in &l.zones {
                    println!("{}:{}", z, l.udp.port());
                }
            }
            println!("{}", clusterdns::version_line());
        }
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int), Ok(mut usr1)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::user_defined1()),
        ) else {
            eprintln!("cannot handle signals");
            return ExitCode::FAILURE;
        };
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = usr1.recv() => node.reload().await,
            }
        }
        tracing::info!("shutting down");
        node.stop().await;
        ExitCode::SUCCESS
    })
}

/// Reloads on SIGUSR1; returns on SIGTERM or SIGINT.
async fn serve_signals(app: &app::App) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = usr1.recv() => {
                let _ = app.reload(true).await;
            }
        }
    }
}

/// `clusterdns check [FILE]`.
fn check(file: &Path, dns_port: Option<u16>) -> ExitCode {
    let opts = LoadOptions {
        default_port: dns_port.unwrap_or(config::DEFAULT_PORT),
    };
    let config = match config::load(file, &opts) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for server in &config.servers {
        for plugin in &server.plugins {
            if let Some(spec) = registry::cluster_source(plugin) {
                match &spec.key.origin {
                    Origin::Objects(path) => {
                        if let Err(e) = cluster::source::file::load(path, &spec.key.filters) {
                            eprintln!("{}", spec.objects_error(&e));
                            failed = true;
                        }
                    }
                    Origin::Api(api) => {
                        if let Err(e) = cluster::source::api::check(api) {
                            eprintln!("{e}");
                            failed = true;
                        }
                    }
                }
            }
        }
    }
    if failed {
        return ExitCode::FAILURE;
    }
    println!(
        "{}: OK ({} server blocks)",
        file.display(),
        config.servers.len()
    );
    ExitCode::SUCCESS
}

/// jemalloc rather than glibc's allocator: a relist builds and drops a cluster's worth of
/// small objects between the long-lived answers, and glibc kept about 18 MiB of that
/// fragmented free memory resident at 10,000 Services (`cargo bench --bench live`), where
/// jemalloc's size classes and page decay give it back.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// One arena (the per-thread caches keep the query path off its lock; a cluster DNS pod has
/// few cores), and freed pages returned within a second. `_RJEM_MALLOC_CONF` overrides it.
#[cfg(feature = "jemalloc")]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 47] = b"narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// Raises the soft limit on open files to the hard one, as Go's runtime does for CoreDNS:
/// every TCP connection a client keeps open holds one.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write only the struct they are given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
