//! The committed spec is the one the code describes.

#[test]
fn the_committed_spec_matches_the_code() {
    let committed = include_str!("../../../openapi/openapi.json");
    let generated = guild_api::openapi()
        .to_pretty_json()
        .expect("the spec serialises");
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
}
