//! The core's weights format (no_std, no allocation): any bytes parse to an error or to a view
//! whose floats read back and re-encode to exactly the input. Each input is tried as it is and
//! with its trailing CRC-32 recomputed, so mutations reach the checks behind the checksum.
#![no_main]
use libfuzzer_sys::fuzz_target;
use staticgrad::weights;

fn check(data: &[u8]) {
    let Ok(view) = weights::parse(data) else { return };
    let mut params = vec![0.0f32; view.param_count()];
    let mut stats = vec![0.0f32; view.stat_count()];
    view.read_params(&mut params).unwrap();
    view.read_stats(&mut stats).unwrap();
    view.expect(&view.desc()).unwrap();
    let mut out = vec![0u8; data.len()];
    let n = weights::encode(&view.desc(), &params, &stats, &mut out).unwrap();
    assert_eq!(&out[..n], data, "parse then encode must give back the same bytes");
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= 4 {
        let mut fixed = data.to_vec();
        let body = data.len() - 4;
        let crc = weights::crc32(&fixed[..body]);
        fixed[body..].copy_from_slice(&crc.to_le_bytes());
        check(&fixed);
    }
});
