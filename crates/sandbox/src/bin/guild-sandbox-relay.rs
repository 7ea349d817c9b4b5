//! The relay as a program of its own, for this crate's tests (Guild runs it as the hidden
//! subcommand `guild __sandbox-relay`).

fn main() {
    std::process::exit(guild_sandbox::relay_main(
        std::env::args().skip(1).collect(),
    ));
}
