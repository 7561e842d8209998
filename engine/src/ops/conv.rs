//! Convolution and pooling over NHWC images.
