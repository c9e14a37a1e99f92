//! The `td-pz-exporter` binary: parses the command line and hands over to the library.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use td_pz_exporter::app::{App, ConfigSource};
use td_pz_exporter::cli::{listen_addr, Cli, Command};
use td_pz_exporter::config::Config;
use td_pz_exporter::run::{bind, serve_until_signal, Serving};
use td_pz_exporter::shard::Shard;
use td_pz_exporter::sim::{Scenario, SimConfig, Simulator};
use td_pz_exporter::web::security::WebSecurity;
use td_pz_exporter::{demo, logging, probe_cmd};

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_level, cli.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(cli))
}

fn shard(cli: &Cli) -> Result<Option<Shard>, String> {
    if let Some(s) = &cli.shard {
        return s
            .parse()
            .map(Some)
            .map_err(|e: td_pz_exporter::shard::ShardError| e.to_string());
    }
    match (std::env::var("SHARD_INDEX"), std::env::var("SHARD_COUNT")) {
        (Ok(i), Ok(n)) => Shard::from_env(&i, &n).map(Some).map_err(|e| e.to_string()),
        _ => Ok(None),
    }
}

fn serving(cli: &Cli) -> Result<Serving, String> {
    let security = match &cli.web_config_file {
        None => WebSecurity::none(),
        Some(p) => WebSecurity::load(p).map_err(|e| e.to_string())?,
    };
    Ok(Serving {
        listen: listen_addr(&cli.listen_address),
        security: Arc::new(security),
        telemetry_path: cli.telemetry_path.clone(),
        runbook_url: cli.runbook_url.clone(),
        shutdown_grace: cli.shutdown_grace,
    })
}

async fn run(cli: Cli) -> ExitCode {
    if cli.config_check {
        return match Config::load(&cli.config_file) {
            Ok(c) => {
                let probes: usize = c.services.iter().map(|s| s.probes.len()).sum();
                println!(
                    "{}: OK ({} service(s), {} probe(s), {} parent segment(s) with discovery)",
                    cli.config_file.display(),
                    c.services.len(),
                    probes,
                    c.parent_segments.iter().filter(|p| p.discover).count()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    match &cli.command {
        None => daemon(&cli).await,
        Some(Command::Demo { sim_listen }) => run_demo(&cli, sim_listen).await,
        Some(Command::Simulate {
            listen,
            scenario,
            api_key,
            p13n_token,
        }) => simulate(listen, scenario.as_deref(), api_key, p13n_token.clone()).await,
        Some(Command::Probe {
            service,
            probe,
            output,
        }) => {
            let cfg = match Config::load(&cli.config_file) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            match probe_cmd::run(&cfg, service, probe, *output).await {
                Ok((text, passed)) => {
                    println!("{text}");
                    if passed {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn daemon(cli: &Cli) -> ExitCode {
    let shard = match shard(cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let s = match serving(cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let app = App::new(
        ConfigSource::File(cli.config_file.clone()),
        shard,
        cli.history_limit,
    );
    if let Err(e) = app.reload().await {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    serve(app, &s).await
}

async fn serve(app: Arc<App>, s: &Serving) -> ExitCode {
    let listener = match bind(&s.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(address = %s.listen, error = %e, "cannot listen");
            eprintln!("cannot listen on {}: {e}", s.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(address = %addr, version = env!("CARGO_PKG_VERSION"), jobs = app.job_count(), "serving");
    serve_until_signal(app, listener, s).await;
    ExitCode::SUCCESS
}

async fn run_demo(cli: &Cli, sim_listen: &str) -> ExitCode {
    let sim = match demo::start_simulator(sim_listen).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot start the simulator on {sim_listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cfg = match demo::config(&sim.url()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let s = match serving(cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let app = App::new(
        ConfigSource::Embedded(Box::new(cfg)),
        None,
        cli.history_limit,
    );
    if let Err(e) = app.reload().await {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    let shown = s.listen.replace("0.0.0.0", "localhost");
    println!("td-pz-exporter demo: a simulated TD with 2 services and 4 personas");
    println!("  status page:  http://{shown}/");
    println!("  metrics:      http://{shown}{}", s.telemetry_path);
    println!(
        "  simulator:    {}  (faults: POST {}/_sim/scenario, stats: GET {}/_sim/stats)",
        sim.url(),
        sim.url(),
        sim.url()
    );
    println!("Probes run every 5 s; press Ctrl-C to stop.");
    serve(app, &s).await
}

async fn simulate(
    listen: &str,
    scenario: Option<&std::path::Path>,
    api_key: &str,
    p13n_token: Option<String>,
) -> ExitCode {
    let scenario = match scenario {
        None => Scenario::default(),
        Some(p) => match std::fs::read_to_string(p)
            .map_err(|e| e.to_string())
            .and_then(|t| Scenario::parse(&t, &p.display().to_string()))
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cannot read the scenario {}: {e}", p.display());
                return ExitCode::FAILURE;
            }
        },
    };
    let sim = match Simulator::start(
        listen,
        SimConfig {
            api_key: api_key.to_string(),
            p13n_token,
            scenario,
        },
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "TD simulator on {} (stats: GET /_sim/stats, faults: POST /_sim/scenario)",
        sim.url()
    );
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    sim.stop();
    ExitCode::SUCCESS
}
