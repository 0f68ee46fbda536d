//! `rewind status`: probes every service once and reads its deployed version.

use serde::Serialize;

use crate::cli::args::StatusArgs;
use crate::config::{Config, ServiceSpec};
use crate::engine::health::{self, HealthState, ProbeOutcome, Sample};
use crate::engine::versions::{self, VersionInfo};

/// The JSON shape of `rewind status --json`.
#[derive(Serialize)]
struct StatusJson {
    config: String,
    services: Vec<ServiceStatus>,
}

#[derive(Serialize)]
struct ServiceStatus {
    name: String,
    health: HealthJson,
    version: Option<VersionJson>,
    /// Error text, when the version could not be read.
    version_error: Option<String>,
}

#[derive(Serialize)]
struct HealthJson {
    state: HealthState,
    status: Option<u16>,
    latency_ms: u64,
    error: Option<String>,
}

#[derive(Serialize)]
struct VersionJson {
    commit: String,
    short: String,
    label: String,
    describe: Option<String>,
    branch: Option<String>,
    dirty: Vec<String>,
}

/// Prints one line per service, or the JSON object.
pub async fn run(config: &Config, args: &StatusArgs) -> color_eyre::Result<i32> {
    let client = health::client();
    let tasks: Vec<_> = config
        .services
        .iter()
        .map(|spec| {
            let spec = spec.clone();
            let client = client.clone();
            tokio::spawn(async move { status_of(&spec, &client).await })
        })
        .collect();
    let mut services = Vec::with_capacity(tasks.len());
    for task in tasks {
        services.push(task.await?);
    }

    if args.json {
        let json = StatusJson {
            config: config.path.display().to_string(),
            services,
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(super::EXIT_OK);
    }

    println!(
        "{:<16} {:<10} {:>8}  {:<12} {:<8}  DETAIL",
        "SERVICE", "HEALTH", "LATENCY", "VERSION", "COMMIT"
    );
    for service in &services {
        // A `*` after the version marks uncommitted changes in the tree.
        let (label, short) = service.version.as_ref().map_or(("?".to_owned(), "?"), |v| {
            let dirty = if v.dirty.is_empty() { "" } else { "*" };
            (format!("{}{dirty}", v.label), v.short.as_str())
        });
        let latency = match service.health.status {
            Some(_) => format!("{}ms", service.health.latency_ms),
            None => "—".to_owned(),
        };
        let detail = service
            .health
            .error
            .clone()
            .or_else(|| service.version_error.clone())
            .unwrap_or_default();
        println!(
            "{:<16} {:<10} {:>8}  {:<12} {:<8}  {}",
            service.name,
            service.health.state.as_str(),
            latency,
            label,
            short,
            detail
        );
    }
    Ok(super::EXIT_OK)
}

async fn status_of(spec: &ServiceSpec, client: &health::Client) -> ServiceStatus {
    let dir = spec.deploy_dir.clone();
    let branch = spec.branch.clone();
    let version = tokio::task::spawn_blocking(move || versions::read(&dir, branch.as_deref(), 50));
    let sample = health::probe(client, &spec.health).await;

    let (version, version_error) = match version.await {
        Ok(Ok(info)) => (Some(version_json(info)), None),
        Ok(Err(error)) => (None, Some(error.to_string())),
        Err(join_error) => (None, Some(join_error.to_string())),
    };
    ServiceStatus {
        name: spec.name.clone(),
        health: health_json(&sample),
        version,
        version_error,
    }
}

/// Derives a state from one probe: a single sample is all `status` takes.
fn health_json(sample: &Sample) -> HealthJson {
    let state = match sample.outcome {
        ProbeOutcome::Passed => HealthState::Healthy,
        ProbeOutcome::Refused | ProbeOutcome::TimedOut => HealthState::Down,
        ProbeOutcome::BadStatus | ProbeOutcome::Failed => HealthState::Unhealthy,
    };
    HealthJson {
        state,
        status: sample.status,
        latency_ms: sample.latency.as_millis() as u64,
        error: sample.error.clone(),
    }
}

fn version_json(info: VersionInfo) -> VersionJson {
    VersionJson {
        label: info.label(),
        commit: info.commit,
        short: info.short,
        describe: info.describe,
        branch: info.branch,
        dirty: info.dirty,
    }
}
