//! MNIST 14×14, 196-32-10 ReLU, softmax cross-entropy: variant `SGD_B1` of `staticgrad_demos::mnist`.
#![no_std]
#![no_main]

include!("../mnist.rs");
mnist_firmware!(staticgrad_demos::mnist::SGD_B1);
