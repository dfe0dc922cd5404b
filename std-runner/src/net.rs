//! Layer strings: a whole model on one line, `conv30x5,relu,maxpool2,dense100,relu,dense10`, for
//! `--layers` and the config's `net`, and the `--model` presets (`convnet`, the book's
//! SimpleConvNet).
//!
//! | token | layer |
//! |---|---|
//! | `in1x28x28` (first token, optional; default `in1x28x28`, MNIST) | the input image, C×H×W |
//! | `conv30x5`, `conv8x3p1`, `conv16x3s2p1`, `conv4x3x5` | convolution: filters × kernel (or kh×kw), `s` stride (1), `p` zero padding (0) |
//! | `maxpool2`, `maxpool3s2`, `avgpool2`, `avgpool2s1` | pooling: square window, `s` stride (the window) |
//! | `gap` | global average pooling |
//! | `flatten` | C, H, W to flat features (optional before a dense layer) |
//! | `dense100` | dense layer of 100 units |
//! | `relu`, `sigmoid`, `tanh` | activation |
//! | `dropout0.5` | inverted dropout |
//! | `bn` | batch norm (after a dense layer) |
//!
//! A string of plain numbers (`784,100,10`) is not a layer string: it is the MLP's widths.

use crate::Error;
use crate::model::BATCH_NORM;
use staticgrad::model::Layer;
use staticgrad::{Activation, Dropout, ImageShape};

/// The book's SimpleConvNet (ch. 7) on MNIST: conv 30×5×5 (stride 1, no padding), ReLU,
/// max-pool 2×2, dense 100, ReLU, dense 10; the book draws every weight with std 0.01.
pub const CONVNET: &str = "in1x28x28,conv30x5,relu,maxpool2,dense100,relu,dense10";

/// The `--model` presets: (name, layer string, initialisation).
pub const PRESETS: [(&str, &str, &str); 1] = [("convnet", CONVNET, "0.01")];

/// The preset named `name`, if any.
pub fn preset(name: &str) -> Option<(&'static str, &'static str, &'static str)> {
    PRESETS.iter().copied().find(|p| p.0 == name)
}

/// A parsed layer string: the input image and the layers.
#[derive(Debug, Clone, PartialEq)]
pub struct Net {
    /// The input image.
    pub image: ImageShape,
    /// The layers, in order.
    pub layers: Vec<Layer>,
    /// The string, normalised (with its input token), as stored in weights files.
    pub text: String,
}

/// True if `s` is a list of plain widths (`784,100,10`) rather than a layer string.
pub fn is_widths(s: &str) -> bool {
    s.split(',').all(|t| !t.trim().is_empty() && t.trim().bytes().all(|b| b.is_ascii_digit()))
}

/// Parses a layer string; an error is one line naming the token (`flag` names the setting).
pub fn parse(flag: &str, s: &str) -> Result<Net, Error> {
    let bad = |tok: &str, why: &str| Error::input(format!("{flag} {s}: token '{tok}': {why}"));
    let mut image = ImageShape::new(1, 28, 28);
    let mut layers = Vec::new();
    let mut text = Vec::new();
    for (i, raw) in s.split(',').enumerate() {
        let tok = raw.trim();
        if tok.is_empty() {
            return Err(bad(tok, "empty token"));
        }
        if let Some(rest) = tok.strip_prefix("in") {
            if i != 0 {
                return Err(bad(tok, "the input image must be the first token"));
            }
            let d = dims(rest)
                .filter(|d| d.len() == 3)
                .ok_or_else(|| bad(tok, "expected inCxHxW, e.g. in1x28x28"))?;
            image = ImageShape::new(d[0], d[1], d[2]);
            continue;
        }
        let layer = if let Some(rest) = tok.strip_prefix("conv") {
            let (core, stride, pad) =
                suffixes(rest).ok_or_else(|| bad(tok, "expected convNxK[sS][pP], e.g. conv8x3p1"))?;
            let d = dims(core).ok_or_else(|| bad(tok, "expected convNxK[sS][pP], e.g. conv8x3p1"))?;
            let (n, kh, kw) = match d[..] {
                [n, k] => (n, k, k),
                [n, kh, kw] => (n, kh, kw),
                _ => return Err(bad(tok, "expected convNxK or convNxKHxKW")),
            };
            Layer::conv2d_with(
                n,
                staticgrad::Conv2dConfig::new(kh, kw, stride.unwrap_or(1), pad.unwrap_or(0)),
            )
        } else if let Some(rest) = tok.strip_prefix("maxpool").or_else(|| tok.strip_prefix("avgpool")) {
            let (core, stride, pad) =
                suffixes(rest).ok_or_else(|| bad(tok, "expected maxpoolK[sS], e.g. maxpool2"))?;
            let k = number(core).ok_or_else(|| bad(tok, "expected maxpoolK[sS], e.g. maxpool2"))?;
            if pad.is_some() {
                return Err(bad(tok, "pooling has no padding"));
            }
            if tok.starts_with("max") {
                Layer::max_pool2d(k, stride.unwrap_or(k))
            } else {
                Layer::avg_pool2d(k, stride.unwrap_or(k))
            }
        } else if let Some(rest) = tok.strip_prefix("dense") {
            Layer::dense(number(rest).ok_or_else(|| bad(tok, "expected denseN, e.g. dense100"))?)
        } else if let Some(rest) = tok.strip_prefix("dropout") {
            match rest.parse::<f32>() {
                Ok(r) if (0.0..1.0).contains(&r) => Layer::dropout(Dropout::inverted(r)),
                _ => return Err(bad(tok, "expected dropoutR with 0 <= R < 1, e.g. dropout0.5")),
            }
        } else {
            match tok {
                "relu" => Layer::activation(Activation::Relu),
                "sigmoid" => Layer::activation(Activation::Sigmoid),
                "tanh" => Layer::activation(Activation::Tanh),
                "gap" => Layer::global_avg_pool2d(),
                "flatten" => Layer::flatten(),
                "bn" | "batchnorm" => Layer::batch_norm(BATCH_NORM),
                _ => {
                    return Err(bad(
                        tok,
                        "unknown; one of inCxHxW, convNxK[sS][pP], maxpoolK[sS], avgpoolK[sS], gap, flatten, \
                         denseN, relu, sigmoid, tanh, dropoutR, bn",
                    ));
                }
            }
        };
        layers.push(layer);
        text.push(tok.to_string());
    }
    if layers.is_empty() {
        return Err(Error::input(format!("{flag} {s}: no layers")));
    }
    text.insert(0, format!("in{}x{}x{}", image.channels, image.height, image.width));
    Ok(Net { image, layers, text: text.join(",") })
}

/// `AxB…` as numbers (each at least 1).
fn dims(s: &str) -> Option<Vec<usize>> {
    s.split('x').map(number).collect()
}

/// A positive decimal number.
fn number(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&n| n > 0)
}

/// Splits `core[sS][pP]` (either order) into the core and the stride and padding (padding may be
/// 0, the stride not).
fn suffixes(s: &str) -> Option<(&str, Option<usize>, Option<usize>)> {
    let end = s.find(['s', 'p']).unwrap_or(s.len());
    let (core, mut rest) = s.split_at(end);
    let (mut stride, mut pad) = (None, None);
    while let Some(c) = rest.chars().next() {
        let tail = &rest[1..];
        let n = tail.find(['s', 'p']).unwrap_or(tail.len());
        let (digits, next) = tail.split_at(n);
        match c {
            's' if stride.is_none() => stride = Some(number(digits)?),
            'p' if pad.is_none() => {
                pad = Some(if digits == "0" { 0 } else { number(digits)? });
            }
            _ => return None,
        }
        rest = next;
    }
    Some((core, stride, pad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use staticgrad::model::LayerKind;

    #[test]
    fn layer_strings_parse() {
        let n = parse("--layers", "conv30x5,relu,maxpool2,dense100,relu,dense10").unwrap();
        assert_eq!(n.image, ImageShape::new(1, 28, 28));
        assert_eq!(n.text, CONVNET);
        assert_eq!(n.layers.len(), 6);
        let n = parse("--layers", "in3x8x8,conv4x3x5s2p1,tanh,avgpool2s1,gap,flatten,dense3,dropout0.5,bn")
            .unwrap();
        assert_eq!(n.image, ImageShape::new(3, 8, 8));
        assert_eq!(
            n.layers[0].kind(),
            LayerKind::Conv2d { out_channels: 4, config: staticgrad::Conv2dConfig::new(3, 5, 2, 1) }
        );
        assert_eq!(n.layers[2], Layer::avg_pool2d(2, 1));
        assert_eq!(parse("x", "conv8x3p1s2,dense2").unwrap().layers[0], Layer::conv2d(8, 3, 2, 1));
        assert!(is_widths("784,100,10") && !is_widths("784,dense10") && !is_widths(""));
    }

    #[test]
    fn errors_name_the_token() {
        for (s, tok) in [
            ("conv30,relu", "conv30"),
            ("conv0x5,dense2", "conv0x5"),
            ("conv8x3q1", "conv8x3q1"),
            ("conv8x3s0", "conv8x3s0"),
            ("maxpool2p1", "maxpool2p1"),
            ("dense", "dense"),
            ("relu,swish", "swish"),
            ("dense10,in1x2x2", "in1x2x2"),
            ("dropout1.5", "dropout1.5"),
            ("dense10,,dense2", ""),
        ] {
            let e = parse("--layers", s).unwrap_err();
            let m = e.message();
            assert!(m.starts_with(&format!("--layers {s}: token '{tok}':")), "{s}: {m}");
            assert!(!m.contains('\n'));
        }
    }
}
