//! Logging: `RUST_LOG` filters, `GUILD_LOG_FORMAT=json|pretty` picks the format; logs go
//! to stderr so stdout stays for results.

use tracing_subscriber::EnvFilter;

pub fn init(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let json = std::env::var("GUILD_LOG_FORMAT").is_ok_and(|format| format == "json");
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
