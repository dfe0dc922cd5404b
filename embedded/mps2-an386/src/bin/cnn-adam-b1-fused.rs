//! MNIST 14×14, CNN conv 8×3×3 (padding 1), ReLU, max-pool 2×2, dense 10, softmax cross-entropy: variant `ADAM_B1_FUSED` of `staticgrad_demos::cnn`.
#![no_std]
#![no_main]

include!("../mnist.rs");
mnist_firmware!(staticgrad_demos::cnn::ADAM_B1_FUSED);
