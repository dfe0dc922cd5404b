//! MNIST 14×14, 196-32-10 ReLU, softmax cross-entropy: variant `ADAM_B1` of `staticgrad_demos::mnist`.
#![no_std]
#![no_main]

include!("../mnist.rs");
mnist_firmware!(staticgrad_demos::mnist::ADAM_B1);
