//! Models from elsewhere: an MLP in PyTorch's safetensors layout, in and out.
//!
//! **Layout.** An `nn.Sequential` of `Linear` layers with an activation between each pair saves
//! `0.weight`, `0.bias`, `2.weight`, `2.bias`, … (the activations hold no tensors). A `Linear`
//! weight is `[out, in]`; ours is `[in, out]` (`x · W`), so both directions transpose. Values are
//! little-endian; [`import`] reads `F32`, and `F64`, `F16` and `BF16` converted to `f32` (exact for
//! the 16-bit types, rounded to nearest for `F64`); any other dtype is refused by name.
//!
//! **Which tensor is which layer.** With explicit `names` (`--names fc1,fc2,out`), dense layer `l`
//! reads `<names[l]>.weight` and `<names[l]>.bias`, and other tensors are ignored. Otherwise every
//! tensor must be `<stem>.weight` or `<stem>.bias`, every stem must end in a number (`0`, `net.2`,
//! `fc1`, `layer10`), and the stems in increasing order of that number are the dense layers in
//! order — a safetensors file keeps no order of its own (writers sort tensors by dtype and name).
//! Two stems with the same number (`enc.1`, `dec.1`) are ambiguous: give `--names`.
//!
//! Batch norm is not part of this layout here: a model with batch norm is refused by [`export`],
//! and [`import`] builds a model without it.

use crate::Error;
use crate::model::ModelSpec;
use ::safetensors::tensor::{Dtype, SafeTensors, TensorView};
use staticgrad::{ParamEntry, Params};
use std::collections::HashMap;

/// The parameter values of `spec` (the core's `Params` layout, as `model.bin` stores them) read
/// from the safetensors bytes of `file`. `spec` must have no batch norm. Every error is one line
/// naming `file` and, where there is one, the tensor.
pub fn import(
    bytes: &[u8],
    spec: &ModelSpec,
    names: Option<&[String]>,
    file: &str,
) -> Result<Vec<f32>, Error> {
    if spec.batchnorm {
        return Err(Error::input(format!("{file}: import builds models without batch norm")));
    }
    layer_string_refused(spec, file)?;
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::input(format!("{file}: not a readable safetensors file: {e}")))?;
    let dense = spec.widths.len().saturating_sub(1);
    let stems = match names {
        Some(n) => n.to_vec(),
        None => stems_in_order(&st, file)?,
    };
    if stems.len() != dense {
        let listed = if stems.is_empty() { "none".to_string() } else { stems.join(", ") };
        return Err(Error::input(format!(
            "{file}: {} Linear layers ({listed}), --layers {} has {dense}",
            stems.len(),
            crate::config::join(&spec.widths)
        )));
    }
    let model = spec.model();
    let mut values = vec![0.0f32; model.param_len()];
    let mut grads = vec![0.0f32; model.param_len()];
    let mut table = vec![ParamEntry::EMPTY; model.param_tensors()];
    let mut params = Params::new(&mut values, &mut grads, &mut table);
    model.alloc(&mut params).map_err(Error::failed)?;
    for (l, stem) in stems.iter().enumerate() {
        let (n_in, n_out) = (spec.widths[l], spec.widths[l + 1]);
        let w = read(&st, &format!("{stem}.weight"), &[n_out, n_in], file)?;
        let b = read(&st, &format!("{stem}.bias"), &[n_out], file)?;
        let (Some(wid), Some(bid)) = (model.weight(l), model.bias(l)) else {
            return Err(Error::failed(format!("the model has no dense layer {l}")));
        };
        let dst = params.value_mut(wid).map_err(Error::failed)?;
        // [out, in] row-major to [in, out] row-major.
        for (o, row) in w.chunks_exact(n_in).enumerate() {
            for (i, &v) in row.iter().enumerate() {
                dst[i * n_out + o] = v;
            }
        }
        params.value_mut(bid).map_err(Error::failed)?.copy_from_slice(&b);
    }
    Ok(params.values().to_vec())
}

/// The PyTorch layout here is an `nn.Sequential` of `Linear`s given by `--layers` widths; a model
/// from a layer string (convolutions, per-layer activations) is refused by name, not guessed at.
fn layer_string_refused(spec: &ModelSpec, file: &str) -> Result<(), Error> {
    match &spec.net {
        Some(_) => Err(Error::input(format!(
            "{file}: the model {} is a layer string; safetensors import and export take MLPs given by --layers widths",
            spec.desc_string()
        ))),
        None => Ok(()),
    }
}

/// The safetensors bytes of `params` (a model of `spec`, in the core's layout) as PyTorch's
/// `nn.Sequential(Linear, activation, Linear, …)` saves them: `0.weight` `[out, in]`, `0.bias`,
/// `2.weight`, …, `F32`, with `format: pt` in the metadata (as `safetensors.torch.save_file` writes).
pub fn export(spec: &ModelSpec, params: &[f32], from: &str) -> Result<Vec<u8>, Error> {
    if spec.batchnorm {
        return Err(Error::input(format!(
            "{from}: the model {} has batch norm, which the safetensors export does not hold (train with --no-batchnorm)",
            spec.desc_string()
        )));
    }
    layer_string_refused(spec, from)?;
    let model = spec.model();
    if params.len() != model.param_len() {
        return Err(Error::input(format!(
            "{from}: {} parameters, the model {} needs {}",
            params.len(),
            spec.desc_string(),
            model.param_len()
        )));
    }
    let mut values = params.to_vec();
    let mut grads = vec![0.0f32; model.param_len()];
    let mut table = vec![ParamEntry::EMPTY; model.param_tensors()];
    let mut p = Params::new(&mut values, &mut grads, &mut table);
    model.alloc(&mut p).map_err(Error::failed)?;
    // `alloc` lays the tensors out without touching values: `params` is read in place.
    p.values_mut().copy_from_slice(params);
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for l in 0..spec.widths.len().saturating_sub(1) {
        let (n_in, n_out) = (spec.widths[l], spec.widths[l + 1]);
        let (Some(wid), Some(bid)) = (model.weight(l), model.bias(l)) else {
            return Err(Error::failed(format!("the model has no dense layer {l}")));
        };
        let w = p.value(wid).map_err(Error::failed)?;
        // [in, out] row-major to [out, in] row-major.
        let mut wt = Vec::with_capacity(w.len() * 4);
        for o in 0..n_out {
            for i in 0..n_in {
                wt.extend_from_slice(&w[i * n_out + o].to_le_bytes());
            }
        }
        let bb: Vec<u8> = p.value(bid).map_err(Error::failed)?.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((format!("{}.weight", 2 * l), vec![n_out, n_in], wt));
        tensors.push((format!("{}.bias", 2 * l), vec![n_out], bb));
    }
    let views = tensors
        .iter()
        .map(|(n, shape, data)| TensorView::new(Dtype::F32, shape.clone(), data).map(|v| (n.as_str(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::failed(format!("safetensors: {e}")))?;
    // One key: the crate writes the metadata map in its hash order, so more would make the
    // bytes of two exports of the same weights differ.
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    ::safetensors::serialize(views, Some(meta)).map_err(|e| Error::failed(format!("safetensors: {e}")))
}

/// Bytes [`export`] holds for `params` floats in `tensors` tensors, at most (for the memory
/// budget): a copy of the values, a gradient buffer as long, the transposed tensors and the output
/// (4 floats' worth per parameter), and a generous header line per tensor.
pub fn export_len(params: usize, tensors: usize) -> Option<u64> {
    (params as u64).checked_mul(16)?.checked_add((tensors as u64).checked_mul(256)?)?.checked_add(4096)
}

/// The stems of the file's tensors in order of their trailing number (see the module docs).
fn stems_in_order(st: &SafeTensors<'_>, file: &str) -> Result<Vec<String>, Error> {
    let mut names = st.names();
    names.sort();
    let mut stems: Vec<(u64, String)> = Vec::new();
    for name in names {
        let stem = name.strip_suffix(".weight").or_else(|| name.strip_suffix(".bias")).ok_or_else(|| {
            Error::input(format!(
                "{file}: tensor {name}: not a Linear weight or bias (<name>.weight, <name>.bias); --names picks the layers"
            ))
        })?;
        let digits = stem.len() - stem.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let number = stem[stem.len() - digits..].parse::<u64>().map_err(|_| {
            Error::input(format!(
                "{file}: tensor {name}: its layer name does not end in a number to order it by; --names gives the order"
            ))
        })?;
        match stems.iter().find(|(n, _)| *n == number) {
            Some((_, s)) if s == stem => {}
            Some((_, s)) => {
                return Err(Error::input(format!(
                    "{file}: tensor {name}: layers {s} and {stem} have the same number; --names gives the order"
                )));
            }
            None => stems.push((number, stem.to_string())),
        }
    }
    stems.sort();
    Ok(stems.into_iter().map(|(_, s)| s).collect())
}

/// Tensor `name` of the file as `f32`s, checked: present, of `shape`, a float dtype, finite.
fn read(st: &SafeTensors<'_>, name: &str, shape: &[usize], file: &str) -> Result<Vec<f32>, Error> {
    let t = st.tensor(name).map_err(|_| Error::input(format!("{file}: tensor {name}: missing")))?;
    if t.shape() != shape {
        return Err(Error::input(format!(
            "{file}: tensor {name}: shape {:?}, the layers need {shape:?} ([out, in] for a weight)",
            t.shape()
        )));
    }
    let d = t.data();
    let v: Vec<f32> = match t.dtype() {
        Dtype::F32 => d.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F64 => d
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        Dtype::F16 => d.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect(),
        Dtype::BF16 => d
            .chunks_exact(2)
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
            .collect(),
        other => {
            return Err(Error::input(format!(
                "{file}: tensor {name}: dtype {other:?}; import reads F32, F64, F16 and BF16"
            )));
        }
    };
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::input(format!("{file}: tensor {name}: value {i} is {} (not finite)", v[i])));
    }
    Ok(v)
}

/// IEEE half precision to single, exactly (every `f16` is an `f32`).
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        // Subnormal: man × 2^-24, exact in f32.
        (0, m) => {
            let v = m as f32 * f32::from_bits(0x3380_0000);
            return if sign == 0 { v } else { -v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7fc0_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use staticgrad::Activation;

    fn spec(widths: &[usize]) -> ModelSpec {
        ModelSpec {
            widths: widths.to_vec(),
            activation: Activation::Relu,
            batchnorm: false,
            dropout: 0.0,
            init: staticgrad::Init::HeNormal,
            net: None,
            frozen: None,
        }
    }

    fn file(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
        let views: Vec<_> =
            tensors.iter().map(|(n, d, s, b)| (*n, TensorView::new(*d, s.clone(), b).unwrap())).collect();
        ::safetensors::serialize(views, None).unwrap()
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn transposes_and_orders_fc_style_names_by_number() {
        // fc10 comes after fc2: numeric order, not the names' text order.
        let b = file(&[
            ("fc2.weight", Dtype::F32, vec![1, 2], f32s(&[5.0, 6.0])),
            ("fc2.bias", Dtype::F32, vec![1], f32s(&[7.0])),
            ("fc10.weight", Dtype::F32, vec![1, 1], f32s(&[8.0])),
            ("fc10.bias", Dtype::F32, vec![1], f32s(&[9.0])),
            ("fc1.weight", Dtype::F32, vec![2, 3], f32s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])),
            ("fc1.bias", Dtype::F32, vec![2], f32s(&[-1.0, -2.0])),
        ]);
        let v = import(&b, &spec(&[3, 2, 1, 1]), None, "m").unwrap();
        // W0 [in=3, out=2] = transpose of [[1,2,3],[4,5,6]].
        assert_eq!(v, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0, -1.0, -2.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        let back = export(&spec(&[3, 2, 1, 1]), &v, "m").unwrap();
        assert_eq!(import(&back, &spec(&[3, 2, 1, 1]), None, "m").unwrap(), v);
        let st = SafeTensors::deserialize(&back).unwrap();
        assert_eq!(st.tensor("0.weight").unwrap().data(), f32s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        assert_eq!(st.tensor("4.bias").unwrap().data(), f32s(&[9.0]));
        // Explicit names pick layers and ignore the rest.
        let names = ["fc1".to_string(), "fc2".to_string(), "fc10".to_string()];
        assert_eq!(import(&b, &spec(&[3, 2, 1, 1]), Some(&names), "m").unwrap(), v);
        let e = import(&b, &spec(&[3, 2, 1]), None, "m").unwrap_err();
        assert_eq!(e.message(), "m: 3 Linear layers (fc1, fc2, fc10), --layers 3,2,1 has 2");
    }

    #[test]
    fn converts_16_and_64_bit_floats_and_refuses_others_by_name() {
        let u16s = |v: &[u16]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let f64s = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let mut t = vec![
            ("0.weight", Dtype::F16, vec![4, 1], u16s(&[0x3c00, 0xc000, 0x8001, 0x7bff])),
            ("0.bias", Dtype::BF16, vec![4], u16s(&[0x3f80, 0xc040, 0x3f80, 0xc040])),
            ("2.weight", Dtype::F64, vec![1, 4], f64s(&[0.1, -3.0, 0.5, 1e300])),
            ("2.bias", Dtype::F64, vec![1], f64s(&[0.25])),
        ];
        let e = import(&file(&t), &spec(&[1, 4, 1]), None, "m").unwrap_err();
        assert_eq!(e.message(), "m: tensor 2.weight: value 3 is inf (not finite)");
        t[2].3 = f64s(&[0.1, -3.0, 0.5, 2.0]);
        let v = import(&file(&t), &spec(&[1, 4, 1]), None, "m").unwrap();
        let sub = -(2f32.powi(-24));
        assert_eq!(v, [1.0, -2.0, sub, 65504.0, 1.0, -3.0, 1.0, -3.0, 0.1, -3.0, 0.5, 2.0, 0.25]);
        t[3] = ("2.bias", Dtype::I32, vec![1], vec![0; 4]);
        let e = import(&file(&t), &spec(&[1, 4, 1]), None, "m").unwrap_err();
        assert_eq!(e.message(), "m: tensor 2.bias: dtype I32; import reads F32, F64, F16 and BF16");
        let e = import(&file(&t[..3]), &spec(&[1, 4, 1]), None, "m").unwrap_err();
        assert_eq!(e.message(), "m: tensor 2.bias: missing");
        let e = import(&file(&t), &spec(&[1, 3, 1]), None, "m").unwrap_err();
        assert_eq!(
            e.message(),
            "m: tensor 0.weight: shape [4, 1], the layers need [3, 1] ([out, in] for a weight)"
        );
    }
}
