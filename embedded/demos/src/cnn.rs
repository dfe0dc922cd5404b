//! MNIST at 14×14 with a small CNN — the anchor network of issue 17: convolution 8×3×3
//! (stride 1, padding 1) → ReLU → max-pool 2×2 → flatten (8·7·7 = 392) → dense 10, softmax
//! cross-entropy — trained on the same flash tables as [`crate::mnist`], by the same routine
//! ([`crate::mnist::train`]); only the model and the variants differ.

use crate::data::PIXELS;
use crate::mnist::{self, MnistConfig, Net};
use staticgrad::model::{Layer, Model};
use staticgrad::optim::Optimizer;

/// The layers: 8 filters 3×3 over the padded image, ReLU, 2×2 max pooling, dense 10.
pub const LAYERS: [Layer; 4] =
    [Layer::conv2d(8, 3, 1, 1), Layer::relu(), Layer::max_pool2d(2, 2), Layer::dense(10)];
/// The model: a `1 × 14 × 14` image, He-normal weights, softmax cross-entropy.
pub const SPEC: Model<'static> = Model::image(1, 14, 14, &LAYERS);
const _: () = assert!(SPEC.validate().is_ok() && SPEC.inputs() == PIXELS && SPEC.outputs() == 10);

/// Batch 1, SGD, gradient buffer.
pub const SGD_B1: MnistConfig = MnistConfig {
    name: "cnn-sgd-b1",
    net: Net::Cnn,
    lr: 0.05,
    lr_decay: 0.5,
    epochs: 3,
    measure: (500, 20),
    min_accuracy_permille: 900,
    ram_budget: 64 * 1024,
    ..mnist::SGD_B1
};
/// Batch 1, SGD, fused update: same bits as [`SGD_B1`].
pub const SGD_B1_FUSED: MnistConfig =
    MnistConfig { name: "cnn-sgd-b1-fused", fused: true, ram_budget: 48 * 1024, ..SGD_B1 };
/// Batch 1, Adam (the book's), fused update: the fused update saves the 16 KB gradient buffer.
pub const ADAM_B1_FUSED: MnistConfig = MnistConfig {
    name: "cnn-adam-b1-fused",
    optimizer: Optimizer::adam(),
    lr: 0.002,
    ram_budget: 80 * 1024,
    ..SGD_B1_FUSED
};
/// Every variant, in the order the firmware and the host test run them.
pub const ALL: [MnistConfig; 3] = [SGD_B1, SGD_B1_FUSED, ADAM_B1_FUSED];
