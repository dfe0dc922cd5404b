//! CSV: any text, with the label column, header flag and scale taken from the first bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use staticgrad_runner::data::{CsvFormat, parse_csv};

fuzz_target!(|data: &[u8]| {
    let (fmt, rest) = match data {
        [a, b, rest @ ..] => (
            CsvFormat {
                label_col: (*a % 8) as usize,
                header: b & 1 == 1,
                scale: [255.0, 1.0, 1e-30, 0.0, -1.0, f32::NAN][(b >> 1) as usize % 6],
            },
            rest,
        ),
        _ => (CsvFormat::default(), data),
    };
    let text = String::from_utf8_lossy(rest);
    if let Ok(ds) = parse_csv(&text, &fmt) {
        assert_eq!(ds.x.len(), ds.y.len() * ds.features);
        assert!(ds.x.iter().all(|v| v.is_finite()), "non-finite feature accepted");
    }
});
