//! The `td-pz-exporter` binary: parses the command line and hands over to the library, or, for
//! `demo` and `simulate`, to the simulator (the `td-pz-sim` crate).

mod demo;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use td_pz_exporter::app::{App, ConfigSource};
use td_pz_exporter::cli::{listen_addr, Cli, Command};
use td_pz_exporter::config::Config;
use td_pz_exporter::run::{bind, serve_until_signal, Serving};
use td_pz_exporter::shard::Shard;
use td_pz_exporter::web::security::WebSecurity;
use td_pz_exporter::{logging, poller_cmd, probe_cmd};
use td_pz_sim::{Scenario, SimConfig, Simulator};
use tokio::signal::unix::{signal, SignalKind};

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

/// Every failure to start ends here: the message on stderr, exit 1.
async fn run(cli: Cli) -> ExitCode {
    match dispatch(&cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: &Cli) -> Result<ExitCode, String> {
    if cli.config_check {
        return Ok(match Config::load(&cli.config_file) {
            Ok(c) => {
                let probes: usize = c.services.iter().map(|s| s.probes.len()).sum();
                println!(
                    "{}: OK ({} service(s), {} probe(s), {} parent segment(s) with discovery)",
                    cli.config_file.display(),
                    c.services.len(),
                    probes,
                    c.parent_segments.iter().filter(|p| p.discover).count()
                );
                for note in c.unpublished() {
                    println!("note: {note}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("{e}");
                ExitCode::FAILURE
            }
        });
    }
    match &cli.command {
        None => {
            let source = ConfigSource::File(cli.config_file.clone());
            let (app, s) = start(cli, source, shard(cli)?).await?;
            serve(app, &s).await
        }
        Some(Command::Demo { sim_listen }) => {
            let sim = demo::start_simulator(sim_listen)
                .await
                .map_err(|e| format!("cannot start the simulator on {sim_listen}: {e}"))?;
            let cfg = demo::config(&sim.url()).map_err(|e| e.to_string())?;
            let (app, s) = start(cli, ConfigSource::Embedded(Box::new(cfg)), None).await?;
            let shown = s.listen.replace("0.0.0.0", "localhost");
            println!("td-pz-exporter demo: a simulated TD with 2 services and 4 personas");
            println!("  status page:  http://{shown}/");
            println!("  metrics:      http://{shown}{}", s.telemetry_path);
            println!(
                "  simulator:    {u}  (faults: POST {u}/_sim/scenario, stats: GET {u}/_sim/stats)",
                u = sim.url()
            );
            println!("Probes run every 5 s; press Ctrl-C to stop.");
            serve(app, &s).await
        }
        Some(Command::Simulate {
            listen,
            scenario,
            api_key,
            p13n_token,
            record,
        }) => {
            let cfg = SimConfig {
                api_key: api_key.clone(),
                p13n_token: p13n_token.clone(),
                scenario: Scenario::default(),
                record: record.clone(),
            };
            simulate(listen, scenario.as_deref(), cfg).await
        }
        Some(Command::Probe {
            service,
            probe,
            poller,
            output,
        }) => {
            let cfg = Config::load(&cli.config_file).map_err(|e| e.to_string())?;
            let (text, passed) = match (probe, poller) {
                (Some(p), _) => probe_cmd::run(&cfg, service, p, *output).await?,
                (None, Some(k)) => poller_cmd::run(&cfg, service, *k, *output).await?,
                (None, None) => {
                    return Err("probe needs --probe=NAME or --poller=metrics|logs".into())
                }
            };
            println!("{text}");
            Ok(if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Loads the web configuration and applies the first configuration: ready to serve.
async fn start(
    cli: &Cli,
    source: ConfigSource,
    shard: Option<Shard>,
) -> Result<(Arc<App>, Serving), String> {
    let s = serving(cli)?;
    let app = App::new(source, shard, cli.history_limit);
    app.history.set_max_records(cli.history_max_records);
    app.reload().await.map_err(|e| e.to_string())?;
    Ok((app, s))
}

async fn serve(app: Arc<App>, s: &Serving) -> Result<ExitCode, String> {
    let listener = bind(&s.listen).await.map_err(|e| {
        tracing::error!(address = %s.listen, error = %e, "cannot listen");
        format!("cannot listen on {}: {e}", s.listen)
    })?;
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(address = %addr, version = env!("CARGO_PKG_VERSION"), jobs = app.job_count(), "serving");
    serve_until_signal(app, listener, s).await;
    Ok(ExitCode::SUCCESS)
}

async fn simulate(
    listen: &str,
    scenario: Option<&std::path::Path>,
    cfg: SimConfig,
) -> Result<ExitCode, String> {
    let scenario = match scenario {
        None => Scenario::default(),
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| e.to_string())
            .and_then(|t| Scenario::parse(&t, &p.display().to_string()))
            .map_err(|e| format!("cannot read the scenario {}: {e}", p.display()))?,
    };
    let sim = Simulator::start(listen, SimConfig { scenario, ..cfg })
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    println!(
        "TD simulator on {} (stats: GET /_sim/stats, faults: POST /_sim/scenario)",
        sim.url()
    );
    if let Ok(mut term) = signal(SignalKind::terminate()) {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    sim.stop();
    Ok(ExitCode::SUCCESS)
}
