//! Every file of the public FLAC decoder testbench (subset) converts, sample-exact.

use std::path::Path;

use crate::util::*;

#[test]
fn every_testbench_file_converts_with_the_right_length() {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/flac-testbench/subset");
    let why = format!(
        "it is not at {} (it sits beside the repo in CI)",
        bench.display()
    );
    if !require(bench.is_dir(), "the FLAC testbench", &why) {
        return;
    }
    let env = Env::empty();
    let out = Run::bare()
        .args(["convert", "--json", "--library"])
        .arg(&bench)
        .arg("--staging")
        .arg(&env.staging)
        .output();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["failed"], serde_json::json!([]), "{}", stderr(&out));
    let flacs: Vec<String> = files(&bench)
        .into_iter()
        .filter(|f| f.ends_with(".flac"))
        .collect();
    assert_eq!(json["converted"].as_u64(), Some(flacs.len() as u64));
    let mut wrong = Vec::new();
    for flac in &flacs {
        let (frames, rate, _) = decoded(&bench.join(flac));
        let (got, out_rate, channels) = decoded(&env.staged(&flac.replace(".flac", ".mp3")));
        let want =
            (u128::from(frames) * u128::from(out_rate) + u128::from(rate) / 2) / u128::from(rate);
        if u128::from(got) != want || ![44_100, 48_000].contains(&out_rate) || channels > 2 {
            wrong.push(format!("{flac}: {frames} frames at {rate} Hz became {got} at {out_rate} Hz ({channels} ch), want {want}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
