//! The runner's checkpoint format: any bytes give an error or a checkpoint that re-encodes to a
//! file that parses to the same sizes. Each input is tried as it is and with its trailing CRC-32
//! recomputed, so mutations reach the checks behind the checksum.
#![no_main]
use libfuzzer_sys::fuzz_target;
use staticgrad::weights::crc32;
use staticgrad_runner::checkpoint::Checkpoint;

fn check(data: &[u8]) {
    if let Ok(ck) = Checkpoint::from_bytes(data) {
        let again = Checkpoint::from_bytes(&ck.to_bytes()).unwrap();
        assert_eq!(again.params.len(), ck.params.len());
        assert_eq!(again.state.len(), ck.state.len());
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if data.len() >= 4 {
        let mut fixed = data.to_vec();
        let body = data.len() - 4;
        let crc = crc32(&fixed[..body]);
        fixed[body..].copy_from_slice(&crc.to_le_bytes());
        check(&fixed);
    }
});
