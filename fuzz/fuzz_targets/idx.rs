//! Plain IDX: any bytes, as an image file (3 dimensions) or a label file (1), with the file
//! length known (as for a file on disk) or not (as for a stream). Ok only with exactly the
//! declared bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use staticgrad_runner::data::parse_idx;

fuzz_target!(|data: &[u8]| {
    for ndim in [1u8, 3] {
        for known in [Some(data.len() as u64), None] {
            if let Ok(idx) = parse_idx(data, ndim, known) {
                assert_eq!(idx.dims.len(), ndim as usize);
                assert_eq!(idx.data.len(), idx.dims.iter().product::<usize>());
                assert_eq!(4 + 4 * ndim as usize + idx.data.len(), data.len());
            }
        }
    }
});
