//! `guild healthcheck`: the container's health check, with the binary itself (the image
//! has no curl).

use std::process::ExitCode;
use std::time::Duration;

use crate::cli::HealthcheckArgs;

pub async fn healthcheck(args: HealthcheckArgs) -> anyhow::Result<ExitCode> {
    guild_llm::install_crypto();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()?;
    match client.get(&args.url).send().await {
        Ok(response) if response.status().is_success() => Ok(ExitCode::SUCCESS),
        Ok(response) => {
            eprintln!("unhealthy: {} answered {}", args.url, response.status());
            Ok(ExitCode::FAILURE)
        }
        Err(error) => {
            eprintln!("unhealthy: {}: {error}", args.url);
            Ok(ExitCode::FAILURE)
        }
    }
}
