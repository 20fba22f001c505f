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
    /// Call one of the local stack's simulated numbers from this terminal: play a WAV
    /// file as the caller and write the agent's side to another.
    Call {
        /// The number to call (default: the demo agent's).
        #[arg(long, default_value = "+12025550123")]
        to: String,
        /// The caller id to call from.
        #[arg(long)]
        from: Option<String>,
        /// What the caller says: a 16-bit PCM WAV file.
        #[arg(long)]
        play: std::path::PathBuf,
        /// Where to write what the agent says (8 kHz mono WAV).
        #[arg(long, default_value = "agent.wav")]
        record: std::path::PathBuf,
        /// The running stack (`parley dev`).
        #[arg(long, env = "PARLEY_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Hang up once the agent has been quiet this many seconds after the caller.
        #[arg(long, default_value_t = 4)]
        quiet_secs: u64,
        /// Hang up after this many seconds whatever happens.
        #[arg(long, default_value_t = 300)]
        limit_secs: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (data_dir, listen, public_url) = match Cli::parse().command {
        Command::Dev {
            data_dir,
            listen,
            public_url,
        } => (data_dir, listen, public_url),
        Command::Call {
            to,
            from,
            play,
            record,
            url,
            quiet_secs,
            limit_secs,
        } => {
            let call = parley::softphone::Call {
                base_url: url,
                to,
                from,
                play,
                record: record.clone(),
                quiet: std::time::Duration::from_secs(quiet_secs),
                limit: std::time::Duration::from_secs(limit_secs),
            };
            let report = parley::softphone::call(&call).await?;
            println!(
                "call {}: {:.1} s of the agent written to {} ({})",
                report.call_sid.as_deref().unwrap_or("not answered"),
                report.agent_seconds,
                record.display(),
                if report.ended_by_agent {
                    "the agent hung up"
                } else {
                    "you hung up"
                }
            );
            for event in &report.events {
                if let (Some(speaker), Some(text)) =
                    (event["speaker"].as_str(), event["text"].as_str())
                {
                    println!("  {speaker}: {text}");
                }
            }
            return Ok(());
        }
    };
    // Flags win over the environment; everything else comes from it as on AWS.
    let mut config = Config::from_lookup(|name| match name {
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
    // Blob keys are `recordings/<tenant>/<call>.wav` and `transcripts/<tenant>/<call>.json`.
    println!(
        "  calls:    recordings in {}, transcripts in {}",
        data_dir.join("blobs/objects/recordings").display(),
        data_dir.join("blobs/objects/transcripts").display()
    );
    println!(
        "  talk:     {}/call in a browser, or parley call --play <wav>",
        config.public_url
    );

    // Without PARLEY_ADMIN_KEY, one is made and kept in the data directory.
    let (admin_key, made) = parley::demo::admin_key(data_dir, config.admin_key.as_ref())?;
    config.admin_key = Some(admin_key.clone());
    match (made, std::env::var_os("PARLEY_ADMIN_KEY").is_some()) {
        (_, true) => println!("  admin:    the key in PARLEY_ADMIN_KEY"),
        (true, false) => println!(
            "  admin:    {} (new; kept in the data dir)",
            admin_key.expose()
        ),
        (false, false) => println!("  admin:    {} (from the data dir)", admin_key.expose()),
    }
    println!("  twilio:   {}/webhooks/twilio/voice", config.public_url);
    let stack = parley::Stack::new(ports, &config)
        .await
        .context("starting the stack")?;
    let api = parley_api::router(stack.api.clone());
    // The demo is a convenience: without it the stack still serves.
    match parley::demo::ensure(api, data_dir, &admin_key).await {
        Ok((demo, made)) => {
            println!(
                "  demo:     tenant {} ({}), agent {} on {} (simulated carrier)",
                demo.tenant_id,
                if made { "new" } else { "kept" },
                demo.agent_id,
                demo.number
            );
            println!("            API key {}", demo.api_key);
            println!(
                "            try: curl -H 'Authorization: Bearer {}' {}/v1/agents",
                demo.api_key, config.public_url
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "the demo tenant was not set up");
            println!("  demo:     not set up ({e})");
        }
    }
    parley::serve(listener, stack, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("stopping");
    })
    .await?;
    Ok(())
}
