//! The deployment files, checked for structure (no container engine runs here): the compose
//! stack, its `.env.example`, and the Dockerfile.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

fn repository_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A service with its `<<` merge keys applied (compose applies them; YAML 1.2 parsers
/// leave them as keys).
fn service(compose: &Yaml, name: &str) -> yaml_rust2::yaml::Hash {
    let Yaml::Hash(own) = &compose["services"][name] else {
        panic!("no service `{name}`");
    };
    let mut merged = match own.get(&Yaml::String("<<".into())) {
        Some(Yaml::Hash(base)) => base.clone(),
        _ => Default::default(),
    };
    for (key, value) in own {
        if key.as_str() != Some("<<") {
            merged.insert(key.clone(), value.clone());
        }
    }
    merged
}

fn get<'a>(service: &'a yaml_rust2::yaml::Hash, key: &str) -> &'a Yaml {
    service
        .get(&Yaml::String(key.into()))
        .unwrap_or(&Yaml::BadValue)
}

fn strings(value: &Yaml) -> Vec<String> {
    value
        .as_vec()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn depends_on(service: &yaml_rust2::yaml::Hash, on: &str) -> Option<String> {
    get(service, "depends_on")[on]["condition"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn the_compose_stack_has_its_services_in_order() {
    let compose = YamlLoader::load_from_str(&repository_file("docker-compose.yml"))
        .expect("docker-compose.yml is YAML")
        .remove(0);

    let postgres = service(&compose, "postgres");
    let check = strings(&get(&postgres, "healthcheck")["test"]).join(" ");
    assert!(check.contains("pg_isready"), "{check}");
    let volumes = strings(get(&postgres, "volumes"));
    assert!(
        volumes
            .iter()
            .any(|v| v.ends_with(":/var/lib/postgresql/data")),
        "{volumes:?}"
    );
    assert!(
        !compose["volumes"]["pgdata"].is_badvalue(),
        "a named volume"
    );

    let migrate = service(&compose, "migrate");
    assert_eq!(strings(get(&migrate, "command")), ["migrate"]);
    assert_eq!(
        depends_on(&migrate, "postgres").as_deref(),
        Some("service_healthy")
    );

    let api = service(&compose, "api");
    assert_eq!(strings(get(&api, "command")), ["serve", "--workers", "0"]);
    assert_eq!(
        depends_on(&api, "migrate").as_deref(),
        Some("service_completed_successfully")
    );
    assert!(
        strings(get(&api, "ports"))
            .iter()
            .any(|p| p.ends_with(":8080"))
    );

    let worker = service(&compose, "worker");
    assert_eq!(strings(get(&worker, "command")), ["worker"]);
    // The sandbox's namespaces need the default seccomp and AppArmor profiles lifted.
    assert_eq!(
        strings(get(&worker, "security_opt")),
        ["seccomp=unconfined", "apparmor=unconfined"]
    );
    assert_eq!(
        depends_on(&worker, "migrate").as_deref(),
        Some("service_completed_successfully")
    );
    // `--scale worker=4` needs no fixed name and no host port.
    assert!(get(&worker, "container_name").is_badvalue());
    assert!(get(&worker, "ports").is_badvalue());

    for (name, guild) in [("migrate", &migrate), ("api", &api), ("worker", &worker)] {
        assert_eq!(get(guild, "image").as_str(), Some("guild:latest"), "{name}");
        assert_eq!(get(guild, "build").as_str(), Some("."), "{name}");
        let url = get(guild, "environment")["DATABASE_URL"]
            .as_str()
            .unwrap_or_default();
        assert!(url.contains("@postgres:5432/"), "{name}: {url}");
        assert_eq!(
            get(guild, "env_file")[0]["path"].as_str(),
            Some(".env"),
            "{name} reads .env"
        );
    }
}

#[test]
fn every_setting_of_env_example_is_in_the_configuration_reference() {
    let reference = repository_file("docs/configuration.md");
    let example = repository_file(".env.example");
    // Set (`NAME=value`) or shown unset (`# NAME=`).
    let names: Vec<&str> = example
        .lines()
        .map(|l| l.trim_start_matches("# "))
        .filter_map(|l| l.split_once('=').map(|(name, _)| name.trim()))
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        assert!(
            reference.contains(&format!("`{name}`")),
            "{name} is in .env.example but not in docs/configuration.md"
        );
    }
}

#[test]
fn the_dockerfile_builds_with_cargo_chef_and_runs_unprivileged_with_a_health_check() {
    let dockerfile = repository_file("Dockerfile");
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(stages >= 3, "multi-stage: {stages}");
    for needed in [
        "cargo chef prepare",
        "cargo chef cook --release",
        "SQLX_OFFLINE=true",
        "HEALTHCHECK",
        "CMD [\"guild\", \"healthcheck\"]",
        "ENTRYPOINT [\"guild\"]",
        // What verification runs generated projects with.
        "bubblewrap",
        "python3-venv",
        "postgresql-15",
        "/usr/local/bin/node",
        "GUILD_SANDBOX_DIR",
    ] {
        assert!(dockerfile.contains(needed), "the Dockerfile lacks {needed}");
    }
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert_ne!(user.trim(), "root");
    assert!(repository_file(".dockerignore").contains("target"));
}

/// The settings `.env.example` sets, as `(name, value)`.
fn example_settings() -> Vec<(String, String)> {
    repository_file(".env.example")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

#[test]
fn guild_accepts_the_settings_of_env_example() {
    let settings = example_settings();
    for (name, value) in &settings {
        // An empty value is an error to the command line, not "unset".
        assert!(
            !value.is_empty(),
            "{name} is set to nothing: comment it out instead"
        );
    }
    // With exactly these settings, the command line parses, and `run` reaches its own
    // check of the description (exit 1), not an argument error (exit 2).
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_guild"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(settings)
        .args(["run", " "])
        .output()
        .expect("guild runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the description is empty"), "{stderr}");
}
