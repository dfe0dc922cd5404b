//! Gzip IDX, two ways: the input as a gzip stream (corrupt streams, bombs, truncation), and the
//! input compressed first (so the IDX parser behind the decoder sees arbitrary headers).
#![no_main]
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;
use staticgrad_runner::data::parse_idx;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let ndim = if data.first().is_some_and(|b| b & 1 == 1) { 3 } else { 1 };
    let _ = parse_idx(GzDecoder::new(data), ndim, None);
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    if enc.write_all(data).is_ok() {
        if let Ok(gz) = enc.finish() {
            if let Ok(idx) = parse_idx(GzDecoder::new(&gz[..]), ndim, None) {
                assert_eq!(idx.data.len(), idx.dims.iter().product::<usize>());
                assert_eq!(4 + 4 * ndim as usize + idx.data.len(), data.len());
            }
        }
    }
});
