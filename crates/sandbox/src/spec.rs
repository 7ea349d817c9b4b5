//! What to run ([`CommandSpec`]) and the `bwrap` command line that runs it.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::config::Limits;
use crate::host::{INSIDE_ID, SystemView};
use crate::scratch::ScratchDirs;
use crate::{CACHE_DIR, HOME_DIR, PROJECT_DIR, RUN_DIR};

/// Where the relay program is mounted inside.
pub(crate) const RELAY_PATH: &str = "/run/relay";

/// The network a command has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Network {
    /// Only its own loopback interface (a network namespace of its own).
    #[default]
    None,
    /// The host's network, to fetch packages: for install steps only. It is the whole host
    /// network, the host's loopback services included (see the crate documentation).
    Registries,
}

/// A command to run in a scratch directory.
///
/// ```
/// use guild_sandbox::{CommandSpec, Network};
/// let install = CommandSpec {
///     network: Network::Registries,
///     ..CommandSpec::new("npm ci")
/// };
/// assert_eq!(install.cwd, "");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// Run with `/bin/sh -c`.
    pub command: String,
    /// Working directory relative to the scratch directory (`""` for its root); it must exist
    /// and may not climb with `..`.
    pub cwd: String,
    /// Environment on top of the sandbox's base (see the crate documentation); a name given
    /// here replaces the base's value.
    pub env: Vec<(String, String)>,
    pub network: Network,
    /// Limits of this command instead of the sandbox's.
    pub limits: Option<Limits>,
    /// Strings replaced with `[redacted]` in the output kept (secrets passed in `env`, say).
    pub redact: Vec<String>,
}

impl CommandSpec {
    /// `command` in the scratch directory's root, with no network and the sandbox's limits.
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            cwd: String::new(),
            env: Vec::new(),
            network: Network::None,
            limits: None,
            redact: Vec::new(),
        }
    }

    /// The working directory inside, or why `cwd` is refused.
    pub(crate) fn cwd_inside(&self) -> Result<String, String> {
        let cwd = Path::new(&self.cwd);
        let mut inside = PathBuf::from(PROJECT_DIR);
        for component in cwd.components() {
            match component {
                Component::Normal(part) => inside.push(part),
                Component::CurDir => {}
                _ => {
                    return Err(format!(
                        "the working directory {:?} leaves the scratch directory",
                        self.cwd
                    ));
                }
            }
        }
        inside
            .into_os_string()
            .into_string()
            .map_err(|_| format!("the working directory {:?} is not UTF-8", self.cwd))
    }

    pub(crate) fn check_env(&self) -> Result<(), String> {
        for (name, value) in &self.env {
            if name.is_empty() || name.contains(['=', '\0']) || value.contains('\0') {
                return Err(format!("invalid environment variable {name:?}"));
            }
        }
        Ok(())
    }
}

/// The environment every command starts from.
pub(crate) fn base_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("HOME", HOME_DIR),
        ("USER", "sandbox"),
        ("LOGNAME", "sandbox"),
        ("LANG", "C.UTF-8"),
        ("TMPDIR", "/tmp"),
        ("CI", "true"),
        ("NO_COLOR", "1"),
        ("npm_config_cache", "/cache/npm"),
        ("npm_config_update_notifier", "false"),
        ("npm_config_fund", "false"),
        ("npm_config_audit", "false"),
        ("PIP_CACHE_DIR", "/cache/pip"),
        ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
        ("PIP_NO_INPUT", "1"),
        ("PYTHONUNBUFFERED", "1"),
    ]
}

/// The host paths and programs every command's command line refers to.
#[derive(Debug)]
pub(crate) struct Layout {
    pub(crate) system: SystemView,
    /// Holds the `passwd` and `group` shown inside.
    pub(crate) etc: PathBuf,
    pub(crate) cache: PathBuf,
    /// `prlimit`, at a path the sandbox shows.
    pub(crate) prlimit: Option<PathBuf>,
    /// The relay program and its leading arguments.
    pub(crate) relay: Option<(PathBuf, Vec<String>)>,
}

/// `bwrap`'s arguments to run `program` (an argv, run under `prlimit`) for `spec` in `dirs`.
pub(crate) fn bwrap_args(
    layout: &Layout,
    dirs: &ScratchDirs,
    spec: &CommandSpec,
    limits: &Limits,
    cwd: &str,
    program: Vec<OsString>,
) -> Vec<OsString> {
    let mut args = Args::default();
    args.push(["--unshare-all", "--unshare-user", "--disable-userns"]);
    if spec.network == Network::Registries {
        args.push(["--share-net"]);
    }
    let id = INSIDE_ID.to_string();
    args.push([
        "--die-with-parent",
        "--new-session",
        "--uid",
        &id,
        "--gid",
        &id,
    ]);
    args.push(["--hostname", "sandbox", "--clearenv"]);
    for (name, value) in base_env() {
        args.push(["--setenv", name, value]);
    }
    for (name, value) in &spec.env {
        args.push(["--setenv", name, value]);
    }
    args.0.extend(layout.system.args().iter().cloned());
    for file in ["passwd", "group"] {
        args.path("--ro-bind", &layout.etc.join(file), &format!("/etc/{file}"));
    }
    let tmp_bytes = limits.tmp_bytes.to_string();
    args.push(["--proc", "/proc", "--dev", "/dev"]);
    // /dev's own tmpfs is made read-only; /dev/shm and /tmp are sized: no unbounded memory.
    args.push([
        "--size",
        &tmp_bytes,
        "--tmpfs",
        "/dev/shm",
        "--remount-ro",
        "/dev",
    ]);
    args.push(["--size", &tmp_bytes, "--tmpfs", "/tmp"]);
    args.path("--bind", &dirs.project, PROJECT_DIR);
    args.path("--bind", &dirs.home, HOME_DIR);
    args.path("--bind", &layout.cache, CACHE_DIR);
    args.path("--ro-bind", &dirs.run, RUN_DIR);
    if let Some((relay, _)) = &layout.relay {
        args.path("--ro-bind", relay, RELAY_PATH);
    }
    args.push(["--chdir", cwd, "--remount-ro", "/", "--"]);
    args.0.extend(prlimit_args(layout, limits));
    args.0.extend(program);
    args.0
}

fn prlimit_args(layout: &Layout, limits: &Limits) -> Vec<OsString> {
    let prlimit = layout.prlimit.clone().unwrap_or_else(|| "prlimit".into());
    let cpu = limits.cpu.as_secs() + u64::from(limits.cpu.subsec_nanos() > 0);
    let cpu = cpu.max(1);
    let both = |name: &str, value: u64| format!("--{name}={value}:{value}");
    vec![
        prlimit.into_os_string(),
        both("data", limits.memory_bytes).into(),
        // SIGXCPU at the limit, SIGKILL 5 s later for a process that ignores it.
        format!("--cpu={cpu}:{}", cpu + 5).into(),
        both("nproc", u64::from(limits.processes)).into(),
        both("fsize", limits.file_size_bytes).into(),
        both("core", 0).into(),
        "--".into(),
    ]
}

/// The shell that runs a command.
pub(crate) fn shell(command: &str) -> Vec<OsString> {
    vec!["/bin/sh".into(), "-c".into(), command.into()]
}

#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn push<const N: usize>(&mut self, items: [&str; N]) {
        self.0.extend(items.iter().map(OsString::from));
    }

    fn path(&mut self, flag: &str, host: &Path, inside: &str) {
        self.0
            .extend([flag.into(), host.as_os_str().to_owned(), inside.into()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cwd_stays_inside_the_scratch_directory() {
        let spec = |cwd: &str| CommandSpec {
            cwd: cwd.into(),
            ..CommandSpec::new("true")
        };
        assert_eq!(spec("").cwd_inside().unwrap(), "/project");
        assert_eq!(spec("./web/app").cwd_inside().unwrap(), "/project/web/app");
        assert!(spec("../x").cwd_inside().is_err());
        assert!(spec("web/../../x").cwd_inside().is_err());
        assert!(spec("/etc").cwd_inside().is_err());
    }

    #[test]
    fn env_names_are_checked() {
        let spec = |name: &str, value: &str| CommandSpec {
            env: vec![(name.into(), value.into())],
            ..CommandSpec::new("true")
        };
        assert!(spec("A_B", "x=y").check_env().is_ok());
        assert!(spec("", "x").check_env().is_err());
        assert!(spec("A=B", "x").check_env().is_err());
        assert!(spec("A", "x\0").check_env().is_err());
    }

    #[test]
    fn cpu_time_is_rounded_up_to_whole_seconds() {
        let layout = Layout {
            system: SystemView::of_host(),
            etc: "/x".into(),
            cache: "/c".into(),
            prlimit: Some("/usr/bin/prlimit".into()),
            relay: None,
        };
        let limits = Limits {
            cpu: std::time::Duration::from_millis(1500),
            ..Limits::default()
        };
        let args = prlimit_args(&layout, &limits);
        assert!(args.contains(&OsString::from("--cpu=2:7")), "{args:?}");
    }
}
