//! Weights files carry the model spec and a checksum: loading them into a different spec is an
//! error naming both specs (issue 9).

use staticgrad::weights::{self, ModelDesc, WeightsError};

#[test]
fn loading_into_a_different_spec_names_both() {
    let file_spec = ModelDesc::new(&[784, 100, 10], 0, 1, 0.0).unwrap();
    let params = vec![0.25f32; 784 * 100 + 100 + 100 * 10 + 10];
    let mut buf = vec![0u8; weights::encoded_len(3, params.len(), 200)];
    let n = weights::encode(&file_spec, &params, &[1.0; 200], &mut buf).unwrap();
    let view = weights::parse(&buf[..n]).unwrap();
    assert_eq!(view.expect(&file_spec), Ok(()));
    let wanted = ModelDesc::new(&[784, 50, 10], 2, 0, 0.5).unwrap();
    let e = view.expect(&wanted).unwrap_err();
    assert_eq!(e, WeightsError::SpecMismatch { expected: wanted, found: file_spec });
    let msg = e.to_string();
    assert!(msg.contains("784-50-10 tanh") && msg.contains("dropout 0.5"), "{msg}");
    assert!(msg.contains("784-100-10 relu batchnorm"), "{msg}");
}

#[test]
fn any_single_bit_flip_is_caught() {
    let spec = ModelDesc::new(&[3, 4, 2], 1, 0, 0.0).unwrap();
    let params: Vec<f32> = (0..26).map(|i| i as f32 * 0.1).collect();
    let mut buf = vec![0u8; weights::encoded_len(3, 26, 0)];
    weights::encode(&spec, &params, &[], &mut buf).unwrap();
    for bit in 0..buf.len() * 8 {
        let mut b = buf.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        assert!(weights::parse(&b).is_err(), "bit {bit} flipped and accepted");
    }
}
