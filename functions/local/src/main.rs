//! `parley`: the command line of the local stack.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use parley_shared::backend::Ports;
use parley_shared::config::{BackendConfig, Config};

#[derive(Parser)]
#[command(name = "parley", version, about = "AI phone agents: the local stack")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run all of Parley on this machine on the embedded store (no cloud, no keys).
    Dev {
        /// Where events, views, the queue and blobs are kept.
        #[arg(long, env = "PARLEY_DATA_DIR", default_value = "./.parley")]
        data_dir: String,
        /// The address every route is served on.
        #[arg(long, env = "PARLEY_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// How carriers and browsers reach this stack (default: http://<listen>).
        #[arg(long, env = "PARLEY_PUBLIC_URL")]
        public_url: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Command::Dev {
        data_dir,
        listen,
        public_url,
    } = Cli::parse().command;
    // Flags win over the environment; everything else comes from it as on AWS.
    let config = Config::from_lookup(|name| match name {
        "PARLEY_BACKEND" => Some("embedded".into()),
        "PARLEY_DATA_DIR" => Some(data_dir.clone()),
        "PARLEY_LISTEN" => Some(listen.clone()),
        "PARLEY_PUBLIC_URL" => public_url.clone(),
        other => std::env::var(other).ok(),
    })?;
    parley_shared::telemetry::init(config.log_format);

    let ports = Ports::connect(&config)
        .await
        .context("opening the data directory")?;
    let listener = parley::bind(config.listen).await?;
    let BackendConfig::Embedded { data_dir } = &config.backend else {
        anyhow::bail!("parley dev runs on the embedded backend only");
    };
    tracing::info!(
        url = %config.public_url,
        data_dir = %data_dir.display(),
        "parley dev is up; Ctrl-C stops it"
    );
    println!("Parley is running at {}", config.public_url);
    println!("  health:   {}/health", config.public_url);
    println!("  data dir: {}", data_dir.display());

    if config.admin_key.is_none() {
        println!("  admin:    none (set PARLEY_ADMIN_KEY to manage tenants)");
    }
    println!("  twilio:   {}/webhooks/twilio/voice", config.public_url);
    let stack = parley::Stack::new(ports, &config)
        .await
        .context("starting the stack")?;
    parley::serve(listener, stack, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("stopping");
    })
    .await?;
    Ok(())
}
