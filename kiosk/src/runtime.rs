//! Finding the ONNX Runtime library and the models after set-up, with a documented search order.
